"""Concrete operators: dense, diagonal, identity, low rank, user callables, SciPy/CuPy wrappers."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from .. import backends
from ..backends import Array
from ._base import LinearOperator


def _is_symmetric_dense(a: Array) -> bool:
    """``max|A - Aᵀ| <= 100 ε max|A|`` (one O(n²) pass; cheap next to any dense product)."""
    xp = backends.namespace(a)
    scale = float(backends.to_numpy(xp.max(xp.abs(a)))) if a.shape[0] else 0.0
    asym = float(backends.to_numpy(xp.max(xp.abs(a - a.T)))) if a.shape[0] else 0.0
    return asym <= 100.0 * backends.finfo_eps(xp, a.dtype) * scale


class DenseOperator(LinearOperator):
    """A dense matrix of any backend; a product is one GEMM (``A @ X``)."""

    def __init__(self, a: Array, *, symmetric: bool | None = None) -> None:
        xp = backends.namespace(a)
        if a.ndim != 2:
            raise ValueError(f"a dense operator needs a 2-d array, got shape {tuple(a.shape)}")
        backends.check_dtype(a.dtype, what="dense matrix")
        if symmetric is None:
            symmetric = a.shape[0] == a.shape[1] and _is_symmetric_dense(a)
        super().__init__(shape=tuple(a.shape), dtype=a.dtype, device=backends.device(a), xp=xp, symmetric=symmetric)
        self.array = a

    def _matmat(self, x: Array) -> Array:
        return self.array @ x

    def _rmatmat(self, y: Array) -> Array:
        return self.array.T @ y

    def to_dense(self) -> Array:
        """The stored matrix itself (no products)."""
        return self.array


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
            xp = _module_of_dtype(dtype)
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
        expected = (rows,) if cols is None else (rows, cols)
        shape = tuple(getattr(y, "shape", ()))
        if shape != expected:
            raise ValueError(f"the user {what} returned shape {shape}, expected {expected}")
        try:
            same_backend = backends.namespace(y) is self._xp
        except TypeError:
            same_backend = False
        if not same_backend:
            raise TypeError(f"the user {what} returned a {type(y).__name__}, expected a {self.backend} array")
        if y.dtype != self._dtype:
            raise TypeError(
                f"the user {what} returned dtype {backends.dtype_name(y.dtype)}, "
                f"expected {backends.dtype_name(self._dtype)}"
            )
        if self.check_finite and not bool(self._xp.all(self._xp.isfinite(y))):
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

    def __init__(self, a: Any, *, xp: Any, device: Any, symmetric: bool) -> None:
        dtype = np.dtype(a.dtype) if backends.backend_name(xp) == "numpy" else a.dtype
        super().__init__(shape=tuple(a.shape), dtype=dtype, device=device, xp=xp, symmetric=symmetric)
        self.wrapped = a

    def _matmat(self, x: Array) -> Array:
        return self._xp.asarray(self.wrapped @ x)

    def _rmatmat(self, y: Array) -> Array:
        return self._xp.asarray(self.wrapped.T @ y)


def _module_of_dtype(dtype: Any) -> Any:
    """The array module a dtype belongs to, where the dtype says (torch, CuPy shares NumPy's)."""
    if type(dtype).__module__.startswith("torch"):
        import torch

        return torch
    return np


def _sparse_is_symmetric(a: Any) -> bool:
    diff = abs(a - a.T)
    scale = abs(a).max() if a.nnz else 0.0
    return float(diff.max() if diff.nnz else 0.0) <= 100.0 * float(np.finfo(a.dtype).eps) * float(scale)


def aslinearoperator(a: Any, *, symmetric: bool | None = None) -> LinearOperator:
    """Wrap ``a`` as an eigenscope :class:`LinearOperator`.

    Accepts an eigenscope operator (returned as is), a dense 2-d array of any
    supported backend, a ``scipy.sparse.linalg.LinearOperator``, a SciPy or
    ``cupyx.scipy.sparse`` matrix, or any object with ``shape`` and ``matvec``
    (and optionally ``matmat``, ``dtype``).

    Parameters
    ----------
    symmetric
        ``None`` checks dense and sparse matrices (``max|A - Aᵀ| <= 100 ε max|A|``)
        and assumes ``True`` for matrix-free objects, which cannot be checked
        without products (use :func:`eigenscope.testing.check_operator` for that).
    """
    if isinstance(a, LinearOperator):
        return a
    module = type(a).__module__
    if module.startswith("scipy.sparse"):
        import scipy.sparse

        if scipy.sparse.issparse(a):
            sym = _sparse_is_symmetric(a) if symmetric is None else symmetric
            return ScipyOperator(a.tocsr(), xp=backends.resolve_namespace(np), device="cpu", symmetric=sym)
        return ScipyOperator(a, xp=backends.resolve_namespace(np), device="cpu", symmetric=symmetric is not False)
    if module.startswith("cupyx"):
        import cupy
        import cupyx.scipy.sparse

        xp = backends.resolve_namespace(cupy)
        if cupyx.scipy.sparse.issparse(a):
            sym = _sparse_is_symmetric(a) if symmetric is None else symmetric
            return ScipyOperator(a.tocsr(), xp=xp, device=a.data.device, symmetric=sym)
        # A cupyx.scipy.sparse.linalg.LinearOperator: matrix-free, so symmetry is assumed.
        return ScipyOperator(a, xp=xp, device=backends.default_device(xp), symmetric=symmetric is not False)
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
