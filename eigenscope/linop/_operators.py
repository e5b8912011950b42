"""Concrete operators: dense, diagonal, identity, low rank, user callables, SciPy/CuPy wrappers."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, NoReturn

import numpy as np

from .. import backends
from ..backends import Array
from ._base import LinearOperator, register_constructors
from ._checks import check_shape


class DenseOperator(LinearOperator):
    """A dense matrix of any backend; a product is one GEMM (``A @ X``).

    With ``symmetric=None`` construction reads the entries once (one reduction,
    one host sync): a NaN or Inf entry is refused, and a square matrix is declared
    symmetric when ``max|A - Aᵀ| <= 100 ε max|A|``, else non-symmetric with the
    measured asymmetry as :attr:`nonsymmetric_reason`. A declared ``symmetric``
    leaves the entries unread.
    """

    def __init__(self, a: Array, *, symmetric: bool | None = None) -> None:
        xp = backends.namespace(a)
        if a.ndim != 2:
            raise ValueError(f"a dense operator needs a 2-d array, got shape {tuple(a.shape)}")
        backends.check_dtype(a.dtype, what="dense matrix")
        shape = check_shape(tuple(a.shape), type(self).__name__)  # before reading entries: empty has no max
        reason = None
        if symmetric is None:
            square = shape[0] == shape[1]
            scale, asym = _dense_magnitudes(a, with_asymmetry=square)
            reason = _asymmetry_reason(asym, scale, backends.finfo_eps(xp, a.dtype)) if square else None
            symmetric = square and reason is None
        super().__init__(
            shape=shape,
            dtype=a.dtype,
            device=backends.device(a),
            xp=xp,
            symmetric=bool(symmetric),
            nonsymmetric_reason=reason,
        )
        self.array = a

    def _matmat(self, x: Array) -> Array:
        return self.array @ x

    def _rmatmat(self, y: Array) -> Array:
        return self.array.T @ y

    def to_dense(self) -> Array:
        """The stored matrix itself (no products)."""
        return self.array


def _dense_magnitudes(a: Array, *, with_asymmetry: bool) -> tuple[float, float]:
    """``(max|A|, max|A - Aᵀ|)`` of a dense matrix in one host transfer (the second is 0
    unless asked); raise ``ValueError`` if an entry is NaN or Inf.

    A NaN or Inf entry makes ``max|A|`` non-finite, so finiteness costs nothing extra.
    """
    xp = backends.namespace(a)
    parts = [xp.max(xp.abs(a))]
    if with_asymmetry:
        parts.append(xp.max(xp.abs(a - a.T)))
    values = backends.to_numpy(xp.stack(parts)).astype(np.float64)
    if not math.isfinite(values[0]):
        _raise_non_finite_dense(a)
    return float(values[0]), (float(values[-1]) if with_asymmetry else 0.0)


def _raise_non_finite_dense(a: Array) -> NoReturn:
    # Only reached on bad input, so the extra passes (count, first index) cost nothing in use.
    xp = backends.namespace(a)
    bad = ~xp.isfinite(a)
    count = int(backends.to_numpy(xp.count_nonzero(bad)))
    first = int(backends.to_numpy(xp.argmax(xp.reshape(xp.astype(bad, xp.int8), (-1,)))))
    _raise_non_finite(count, divmod(first, a.shape[1]))


def _raise_non_finite(count: int, first: tuple[int, int]) -> NoReturn:
    raise ValueError(
        f"the matrix has {count} non-finite {'entry' if count == 1 else 'entries'} (NaN/Inf), first at {first}; "
        "eigenscope needs a finite matrix (replace or remove those entries first)"
    )


def _asymmetry_reason(asym: float, scale: float, eps: float) -> str | None:
    """``None`` if ``max|A - Aᵀ| <= 100 ε max|A|`` (rounding), else why the matrix is not
    symmetric and how to fix it (see :attr:`LinearOperator.nonsymmetric_reason`)."""
    allowed = 100.0 * eps
    if asym <= allowed * scale:
        return None
    return (
        f"the matrix is not symmetric: max|A - Aᵀ| / max|A| = {asym / scale:.3g} "
        f"(rounding allows {allowed:.2g}); symmetrize it, e.g. (A + A.T) / 2"
    )


class DiagonalOperator(LinearOperator):
    """``diag(d)``: a product costs n multiplications."""

    def __init__(self, d: Array) -> None:
        xp = backends.namespace(d)
        if d.ndim != 1:
            raise ValueError(f"a diagonal operator needs a 1-d array, got shape {tuple(d.shape)}")
        n = d.shape[0]
        super().__init__(shape=(n, n), dtype=d.dtype, device=backends.device(d), xp=xp, symmetric=True)
        self.diagonal = d

    def _matmat(self, x: Array) -> Array:
        return self.diagonal[:, None] * x


class IdentityOperator(LinearOperator):
    """The n×n identity; returns a copy of its operand."""

    def __init__(self, n: int, *, xp: Any, dtype: Any, device: Any = None) -> None:
        xp = backends.resolve_namespace(xp)
        device = backends.default_device(xp) if device is None else device
        super().__init__(shape=(n, n), dtype=dtype, device=device, xp=xp, symmetric=True)

    def _matmat(self, x: Array) -> Array:
        return x * 1  # a new array: callers may update results in place


class LowRankOperator(LinearOperator):
    """``U diag(s) Uᵀ`` for ``U`` of shape (n, r); a product costs O(n r b).

    ``U`` need not be orthonormal; with orthonormal ``U`` the nonzero eigenvalues are ``s``.
    """

    def __init__(self, u: Array, s: Array) -> None:
        xp = backends.namespace(u, s)
        if u.ndim != 2 or s.ndim != 1 or s.shape[0] != u.shape[1]:
            raise ValueError(f"low rank needs U (n, r) and s (r,), got {tuple(u.shape)} and {tuple(s.shape)}")
        if u.dtype != s.dtype:
            raise TypeError(
                f"U and s must share a dtype, got {backends.dtype_name(u.dtype)} and {backends.dtype_name(s.dtype)}"
            )
        n = u.shape[0]
        super().__init__(shape=(n, n), dtype=u.dtype, device=backends.device(u), xp=xp, symmetric=True)
        self.u = u
        self.s = s

    def _matmat(self, x: Array) -> Array:
        return self.u @ (self.s[:, None] * (self.u.T @ x))


class CallableOperator(LinearOperator):
    """An operator from user functions; see :meth:`LinearOperator.from_matvec`."""

    def __init__(
        self,
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
    ) -> None:
        if xp is None:
            xp = backends.namespace_of_dtype(dtype)
        xp = backends.resolve_namespace(xp)
        device = backends.default_device(xp) if device is None else device
        super().__init__(shape=shape, dtype=dtype, device=device, xp=xp, symmetric=symmetric)
        self._user_matvec = matvec
        self._user_matmat = matmat
        self._user_rmatvec = rmatvec
        self.check_finite = check_finite
        self.num_calls = 0

    def _checked(self, y: Any, rows: int, cols: int | None, what: str) -> Array:
        self.num_calls += 1
        self._check_result(y, (rows,) if cols is None else (rows, cols), f"the user {what}")
        if self.check_finite and not backends.all_finite(y):
            raise FloatingPointError(f"the user {what} returned NaN or Inf (call {self.num_calls} of this operator)")
        return y

    def _matvec(self, x: Array) -> Array:
        return self._checked(self._user_matvec(x), self._shape[0], None, "matvec")

    def _matmat(self, x: Array) -> Array:
        if self._user_matmat is None:
            return super()._matmat(x)
        return self._checked(self._user_matmat(x), self._shape[0], x.shape[1], "matmat")

    def _rmatmat(self, y: Array) -> Array:
        if self._user_rmatvec is None:
            return super()._rmatmat(y)
        cols = [self._checked(self._user_rmatvec(y[:, j]), self._shape[1], None, "rmatvec") for j in range(y.shape[1])]
        return self._xp.stack(cols, axis=1)


class ScipyOperator(LinearOperator):
    """A ``scipy.sparse.linalg.LinearOperator`` or a SciPy/CuPy sparse matrix."""

    def __init__(
        self, a: Any, *, xp: Any, device: Any, symmetric: bool, nonsymmetric_reason: str | None = None
    ) -> None:
        dtype = np.dtype(a.dtype)  # SciPy and CuPy sparse matrices both use NumPy dtypes
        super().__init__(
            shape=tuple(a.shape),
            dtype=dtype,
            device=device,
            xp=xp,
            symmetric=symmetric,
            nonsymmetric_reason=nonsymmetric_reason,
        )
        self.wrapped = a

    def _matmat(self, x: Array) -> Array:
        return _plain(self.wrapped @ x)

    def _rmatmat(self, y: Array) -> Array:
        return _plain(self.wrapped.T @ y)


def _plain(y: Any) -> Any:
    # A user's scipy operator may hand back np.matrix, whose indexing keeps two dimensions;
    # anything else is left as is, so a result of another backend is reported, not converted.
    return np.asarray(y) if isinstance(y, np.matrix) else y


def _check_sparse_finite(a: Any) -> None:
    """Raise ``ValueError`` if a stored entry of a SciPy/CuPy CSR matrix is NaN or Inf
    (one pass over the stored entries; the first one is located only on failure)."""
    xp = backends.namespace(a.data)
    if bool(xp.all(xp.isfinite(a.data))):
        return
    coo = a.tocoo()
    bad = ~np.isfinite(backends.to_numpy(coo.data))
    rows, cols = backends.to_numpy(coo.row)[bad], backends.to_numpy(coo.col)[bad]
    first = int(np.lexsort((cols, rows))[0])  # row-major order, as for a dense matrix
    _raise_non_finite(int(bad.sum()), (int(rows[first]), int(cols[first])))


def _sparse_symmetry(a: Any) -> tuple[bool, str | None]:
    """``(symmetric, reason)`` of a finite square sparse matrix, with the dense tolerance."""
    diff = abs(a - a.T)
    scale = float(abs(a).max()) if a.nnz else 0.0
    asym = float(diff.max()) if diff.nnz else 0.0
    reason = _asymmetry_reason(asym, scale, float(np.finfo(a.dtype).eps))
    return reason is None, reason


def _wrap_sparse(a: Any, *, xp: Any, device: Any, symmetric: bool | None) -> ScipyOperator:
    """A SciPy or CuPy sparse matrix as an operator; unless ``symmetric`` is declared, its
    stored entries are checked finite and its symmetry is measured (as for a dense matrix)."""
    check_shape(tuple(a.shape), "sparse matrix")
    a = a.tocsr()  # no copy for CSR input; other formats (LIL, DOK) have no flat ``data`` to check
    reason = None
    if symmetric is None:
        _check_sparse_finite(a)
        symmetric, reason = _sparse_symmetry(a) if a.shape[0] == a.shape[1] else (False, None)
    return ScipyOperator(a, xp=xp, device=device, symmetric=symmetric, nonsymmetric_reason=reason)


def aslinearoperator(a: Any, *, symmetric: bool | None = None) -> LinearOperator:
    """Wrap ``a`` as an eigenscope :class:`LinearOperator`.

    Accepts an eigenscope operator (returned as is), a dense 2-d array of any
    supported backend, a ``scipy.sparse.linalg.LinearOperator``, a SciPy or
    ``cupyx.scipy.sparse`` matrix, or any object with ``shape`` and ``matvec``
    (and optionally ``matmat``, ``dtype``).

    Every operator needs ``m, n ≥ 1``. Products of wrapped objects are checked
    like any other (shape, backend, dtype and device of the result).

    Parameters
    ----------
    symmetric
        ``None`` reads dense and sparse matrices once: a NaN or Inf entry raises
        ``ValueError`` with their count and the first one's position, and a
        matrix with ``max|A - Aᵀ| > 100 ε max|A|`` is declared non-symmetric with
        the measured asymmetry as :attr:`~LinearOperator.nonsymmetric_reason`.
        Matrix-free objects, which cannot be checked without products, are
        assumed symmetric (use :func:`eigenscope.testing.check_operator` for that).
        ``True``/``False`` declares it and leaves the entries unread.
    """
    if isinstance(a, LinearOperator):
        return a
    scipy_like = backends.scipy_like(a)
    if scipy_like is not None:
        if scipy_like.stores_entries:
            return _wrap_sparse(a, xp=scipy_like.xp, device=scipy_like.device, symmetric=symmetric)
        # A sparse.linalg LinearOperator: matrix-free, so symmetry is assumed unless declared.
        return ScipyOperator(a, xp=scipy_like.xp, device=scipy_like.device, symmetric=symmetric is not False)
    if isinstance(a, (list, tuple)):
        a = np.asarray(a, dtype=np.float64)
    try:
        backends.namespace(a)
        is_array = True
    except TypeError:
        is_array = False
    if is_array:
        return DenseOperator(a, symmetric=symmetric)
    if hasattr(a, "shape") and hasattr(a, "matvec"):
        dtype = getattr(a, "dtype", np.float64)
        return CallableOperator(
            a.matvec,
            shape=tuple(a.shape),
            dtype=dtype,
            matmat=getattr(a, "matmat", None),
            symmetric=symmetric is not False,
        )
    raise TypeError(
        "aslinearoperator accepts an array, a scipy LinearOperator or sparse matrix, "
        f"or an object with shape and matvec; got {type(a).__name__}"
    )


register_constructors(CallableOperator=CallableOperator)
