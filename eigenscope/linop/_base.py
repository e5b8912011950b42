"""The ``LinearOperator`` protocol and the base class every eigenscope operator derives from."""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType
from typing import Any, Protocol, runtime_checkable

from .. import backends
from ..backends import Array
from ._checks import DECLARED_NONSYMMETRIC, check_result, check_shape, is_real_scalar, operand_problem


@runtime_checkable
class SupportsMatmat(Protocol):
    """What the algorithms need of an operator: a shape, a dtype, a device, a namespace
    and block products. Any object with these members can be wrapped by
    :func:`eigenscope.aslinearoperator` or checked with
    :func:`eigenscope.testing.check_operator`."""

    @property
    def shape(self) -> tuple[int, int]: ...

    @property
    def dtype(self) -> Any: ...

    @property
    def device(self) -> Any: ...

    @property
    def xp(self) -> ModuleType: ...

    @property
    def symmetric(self) -> bool: ...

    def matmat(self, x: Array, /) -> Array: ...


class LinearOperator:
    """A real linear map known only through its products with vectors and blocks.

    Subclasses implement ``_matmat`` (the primitive, ``(n, b) -> (m, b)``) or
    ``_matvec`` (``(n,) -> (m,)``), whichever is natural; the other falls back to
    it. ``_rmatmat`` (``Aᵀ @ Y``) is needed only for non-symmetric operators
    that are transposed.

    The public ``matvec``/``matmat``/``rmatvec``/``rmatmat``/``@`` check that the
    operand is an array of the operator's backend, device and dtype with the right
    length, and that the result is one of the right shape, and raise
    ``TypeError``/``ValueError`` naming the operator, what was expected and what
    came otherwise: no silent broadcasting, no silent casting between backends.

    Parameters
    ----------
    shape
        ``(m, n)``.
    dtype
        float32 or float64 of backend ``xp``.
    device
        Where the operator's vectors live (as ``array_api_compat.device``).
    xp
        The Array API namespace of the operator's vectors, or the array module
        (``numpy``, ``torch``, ...) it is resolved from.
    symmetric
        Whether the operator is real symmetric (``Aᵀ = A``); the symmetric
        eigensolvers rely on it.
    nonsymmetric_reason
        For a non-symmetric operator, why, when more is known than the
        declaration (a measured asymmetry); see :attr:`nonsymmetric_reason`.
    fresh_products
        Class attribute, False by default: True declares that every product is a new
        array nothing else refers to, which an algorithm may then update in place (one
        n-length copy fewer per product). An operator that may return an array it keeps
        (a cached result, a view of its own data) must leave it False.
    """

    fresh_products: bool = False

    def __init__(
        self,
        *,
        shape: tuple[int, int],
        dtype: Any,
        device: Any,
        xp: ModuleType,
        symmetric: bool,
        nonsymmetric_reason: str | None = None,
    ) -> None:
        shape = check_shape(shape, type(self).__name__)
        if symmetric and shape[0] != shape[1]:
            raise ValueError(f"a symmetric operator must be square, got shape {shape}")
        self._shape = shape
        self._dtype = backends.check_dtype(dtype)
        self._device = device
        self._xp = backends.resolve_namespace(xp)  # ``numpy`` itself becomes its Array API namespace
        self._symmetric = bool(symmetric)
        self._nonsymmetric_reason = None if symmetric else nonsymmetric_reason

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls._matmat is LinearOperator._matmat and cls._matvec is LinearOperator._matvec:
            raise TypeError(f"{cls.__name__} must implement _matmat or _matvec")

    # ---- declared properties -------------------------------------------------
    @property
    def shape(self) -> tuple[int, int]:
        """``(m, n)``."""
        return self._shape

    @property
    def dtype(self) -> Any:
        """The dtype of the operator's vectors (a dtype of :attr:`xp`)."""
        return self._dtype

    @property
    def device(self) -> Any:
        """The device of the operator's vectors."""
        return self._device

    @property
    def xp(self) -> ModuleType:
        """The Array API namespace of the operator's vectors."""
        return self._xp

    @property
    def symmetric(self) -> bool:
        """Whether the operator is declared real symmetric."""
        return self._symmetric

    @property
    def nonsymmetric_reason(self) -> str | None:
        """Why the operator is not symmetric, with the fix; ``None`` when it is symmetric.

        A clause meant to follow "... needs a symmetric operator, but ": a measured
        asymmetry for a matrix found non-symmetric by :func:`eigenscope.aslinearoperator`,
        else the declaration ``symmetric=False``.
        """
        if self._symmetric:
            return None
        return self._nonsymmetric_reason or DECLARED_NONSYMMETRIC

    @property
    def backend(self) -> str:
        """Short backend name: ``"numpy"``, ``"torch"``, ``"jax"``, ``"cupy"``, ..."""
        return backends.backend_name(self._xp)

    # ---- implementation hooks -----------------------------------------------
    def _matvec(self, x: Array) -> Array:
        return self._matmat(x[:, None])[:, 0]

    def _matmat(self, x: Array) -> Array:
        # Fallback for operators that only know matvec: one product per column.
        columns = [self._matvec(x[:, j]) for j in range(x.shape[1])]
        if not columns:
            return self._xp.zeros((self._shape[0], 0), dtype=self._dtype, device=self._device)
        return self._xp.stack(columns, axis=1)

    def _rmatmat(self, y: Array) -> Array:
        if self._symmetric:
            return self._matmat(y)
        raise NotImplementedError(f"{type(self).__name__} does not implement the transpose product")

    # ---- checked public products --------------------------------------------
    def _check_operand(self, x: Array, ndim: int, length: int, what: str) -> None:
        # The hook behind :func:`check_operand`; subclasses that can name a cause (a model
        # that moved) extend it.
        operand_problem(self, x, ndim=ndim, length=length, what=what)

    def _check_result(self, y: Any, shape: tuple[int, ...], what: str) -> Array:
        """Return ``y`` if it is an array of the operator's backend, dtype and device of
        ``shape``; raise naming the operator, what was expected and what came otherwise.

        Reads metadata only (no reduction, no host sync), so every product can afford it;
        it stops a wrong result before arithmetic broadcasts or casts it into a plausible one.
        """
        return check_result(self, y, shape, what)

    # The checked products: every public product, the views and the lazy algebra
    # (for its parts) go through these, so a wrong result is caught at the operator
    # that produced it, whichever class that is.
    def _apply_matvec(self, x: Array) -> Array:
        return self._check_result(self._matvec(x), (self._shape[0],), "matvec")

    def _apply_matmat(self, x: Array) -> Array:
        return self._check_result(self._matmat(x), (self._shape[0], x.shape[1]), "matmat")

    def _apply_rmatmat(self, y: Array) -> Array:
        return self._check_result(self._rmatmat(y), (self._shape[1], y.shape[1]), "rmatmat")

    def matvec(self, x: Array, /) -> Array:
        """``A @ x`` for a vector ``x`` of shape ``(n,)``; returns shape ``(m,)``. One matvec."""
        self._check_operand(x, 1, self._shape[1], "matvec")
        return self._apply_matvec(x)

    def matmat(self, x: Array, /) -> Array:
        """``A @ X`` for a block ``X`` of shape ``(n, b)``; returns ``(m, b)``. Costs b matvecs
        (often less wall time than b separate products)."""
        self._check_operand(x, 2, self._shape[1], "matmat")
        return self._apply_matmat(x)

    def rmatvec(self, y: Array, /) -> Array:
        """``Aᵀ @ y`` for ``y`` of shape ``(m,)``."""
        self._check_operand(y, 1, self._shape[0], "rmatvec")
        return self._apply_rmatmat(y[:, None])[:, 0]

    def rmatmat(self, y: Array, /) -> Array:
        """``Aᵀ @ Y`` for ``Y`` of shape ``(m, b)``."""
        self._check_operand(y, 2, self._shape[0], "rmatmat")
        return self._apply_rmatmat(y)

    # ---- operator algebra (free functions in ``_algebra``, registered below) -----
    def __matmul__(self, other: Any) -> Any:
        if isinstance(other, LinearOperator):
            return _constructor("compose")(self, other)
        ndim = getattr(other, "ndim", None)
        if ndim == 1:
            return self.matvec(other)
        if ndim == 2:
            return self.matmat(other)
        raise TypeError(
            f"A @ x needs a LinearOperator or a 1-d/2-d array, got {type(other).__name__}"
            + (f" with {ndim} dimensions" if ndim is not None else "")
        )

    def __add__(self, other: Any) -> LinearOperator:
        if not isinstance(other, LinearOperator):
            return NotImplemented
        return _constructor("add")(self, other)

    def __sub__(self, other: Any) -> LinearOperator:
        if not isinstance(other, LinearOperator):
            return NotImplemented
        return _constructor("add")(self, _constructor("scale")(other, -1.0))

    def __neg__(self) -> LinearOperator:
        return _constructor("scale")(self, -1.0)

    def __mul__(self, alpha: Any) -> LinearOperator:
        if not is_real_scalar(alpha):
            if isinstance(alpha, LinearOperator) or hasattr(alpha, "ndim"):
                raise TypeError("`*` scales an operator by a real number; use `@` for products")
            return NotImplemented
        return _constructor("scale")(self, float(alpha))

    __rmul__ = __mul__

    def __truediv__(self, alpha: Any) -> LinearOperator:
        if not is_real_scalar(alpha):
            return NotImplemented
        return self * (1.0 / float(alpha))

    @property
    def T(self) -> LinearOperator:
        """The transpose ``Aᵀ`` (the operator itself when symmetric)."""
        return _constructor("transpose")(self)

    H = T

    # ---- views ---------------------------------------------------------------
    def to_scipy(self) -> Any:
        """A ``scipy.sparse.linalg.LinearOperator`` view taking and returning NumPy arrays.

        Each product copies the NumPy operand to the operator's device and the
        result back, so it suits host-side tools such as ``scipy.sparse.linalg.eigsh``.
        """
        from scipy.sparse.linalg import LinearOperator as ScipyLinearOperator

        def to_backend(a: Any) -> Array:
            return backends.from_numpy(a, xp=self._xp, dtype=self._dtype, device=self._device)

        def mv(v: Any) -> Any:
            return backends.to_numpy(self._apply_matvec(to_backend(v.reshape(-1))))

        def mm(v: Any) -> Any:
            return backends.to_numpy(self._apply_matmat(to_backend(v)))

        def rmv(v: Any) -> Any:
            return backends.to_numpy(self._apply_rmatmat(to_backend(v.reshape(-1, 1)))[:, 0])

        def rmm(v: Any) -> Any:
            return backends.to_numpy(self._apply_rmatmat(to_backend(v)))

        return ScipyLinearOperator(
            shape=self._shape,
            matvec=mv,
            matmat=mm,
            rmatvec=rmv,
            rmatmat=rmm,
            dtype=backends.dtype_name(self._dtype),
        )

    def to_dense(self) -> Array:
        """Form the matrix by multiplying the identity (n matvecs); for small operators and tests."""
        xp = self._xp
        eye = xp.eye(self._shape[1], dtype=self._dtype, device=self._device)
        return self._apply_matmat(eye)

    def __repr__(self) -> str:
        return (
            f"<{type(self).__name__} shape={self._shape} dtype={backends.dtype_name(self._dtype)} "
            f"backend={self.backend} device={self._device} symmetric={self._symmetric}>"
        )

    # ---- construction --------------------------------------------------------
    @classmethod
    def from_matvec(
        cls,
        matvec: Callable[[Array], Array],
        *,
        shape: tuple[int, int],
        dtype: Any,
        device: Any = None,
        xp: Any = None,
        matmat: Callable[[Array], Array] | None = None,
        rmatvec: Callable[[Array], Array] | None = None,
        symmetric: bool = True,
        check_finite: bool = True,
    ) -> LinearOperator:
        """An operator from a user function ``matvec(x) -> A @ x``.

        Parameters
        ----------
        matvec
            ``(n,) -> (m,)`` on arrays of the operator's backend. Each result (also
            of ``matmat`` and ``rmatvec``) is checked against the declared shape,
            backend, dtype and device, from metadata only; a mismatch raises naming
            the operator, what was expected and what came.
        shape, dtype, device
            Declared, never probed; ``m, n ≥ 1``. ``device=None`` takes the backend's
            default device.
        xp
            The array module (``numpy``, ``torch``, ``jax.numpy``, ...). ``None``
            infers it from ``dtype`` (a ``torch.dtype`` means torch), else NumPy.
        matmat
            Optional ``(n, b) -> (m, b)``; without it a block costs b calls of ``matvec``.
        rmatvec
            Optional transpose product, for non-symmetric operators.
        symmetric
            Declare the operator symmetric (the default: eigenscope's case).
        check_finite
            Raise ``FloatingPointError`` if a product returns NaN or Inf (costs one
            reduction and a host sync per product).
        """
        return _constructor("CallableOperator")(
            matvec,
            shape=shape,
            dtype=dtype,
            device=device,
            xp=xp,
            matmat=matmat,
            rmatvec=rmatvec,
            symmetric=symmetric,
            check_finite=check_finite,
        )


# The algebra's operators and the callable operator subclass LinearOperator, so this
# module cannot import them without a cycle. The modules defining them register their
# constructors here when imported (``eigenscope.linop`` imports them all), and the
# operators above call what was registered: the dependency points one way.
_CONSTRUCTORS: dict[str, Callable[..., Any]] = {}


def register_constructors(**constructors: Callable[..., Any]) -> None:
    """Make ``constructors`` (``add=...``, ``CallableOperator=...``) available to :class:`LinearOperator`."""
    _CONSTRUCTORS.update(constructors)


def _constructor(name: str) -> Callable[..., Any]:
    return _CONSTRUCTORS[name]
