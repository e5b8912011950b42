"""The lazy operator algebra: sums, scalings, products, transposes, shifts, deflation, block diagonals.

Nothing is formed: each result multiplies by its parts. Parts must share the
backend, device and dtype (``TypeError`` otherwise) and have matching shapes
(``ValueError`` otherwise). Each part's result is checked as it comes (shape,
backend, dtype, device), so a part that returns a wrong result is named instead
of being broadcast into the whole.
"""

from __future__ import annotations

from typing import Any

from .. import backends
from ..backends import Array
from ._base import LinearOperator, register_constructors
from ._checks import check_operand


def _check_compatible(ops: list[LinearOperator], what: str) -> None:
    first = ops[0]
    for other in ops[1:]:
        if other.xp is not first.xp:
            raise TypeError(f"{what}: operators from different backends ({first.backend} and {other.backend})")
        if other.dtype != first.dtype:
            raise TypeError(
                f"{what}: operators of different dtypes ({backends.dtype_name(first.dtype)} and "
                f"{backends.dtype_name(other.dtype)}); eigenscope never casts silently"
            )
        if not backends.same_device(other.device, first.device):
            raise TypeError(f"{what}: operators on different devices ({first.device} and {other.device})")


def _like(op: LinearOperator) -> dict[str, Any]:
    return {"dtype": op.dtype, "device": op.device, "xp": op.xp}


def _same_form(op: LinearOperator) -> dict[str, Any]:
    """Everything ``op`` declares, for an operator that keeps its shape and symmetry (α A, A − σ I, deflation)."""
    return {"shape": op.shape, "symmetric": op.symmetric, "nonsymmetric_reason": op.nonsymmetric_reason, **_like(op)}


def _part_reason(parts: list[LinearOperator], what: str) -> str | None:
    """The first non-symmetric part's :attr:`~LinearOperator.nonsymmetric_reason`, saying which part."""
    for i, part in enumerate(parts):
        if not part.symmetric:
            return f"in {what} {i}, {part.nonsymmetric_reason}"
    return None


_PRODUCT_REASON = "it is a product A B, which is declared symmetric only in the forms Aᵀ A, A Aᵀ and A A (A symmetric)"


class SumOperator(LinearOperator):
    """``A₁ + A₂ + …``: a product costs one product of each term."""

    def __init__(self, terms: list[LinearOperator]) -> None:
        _check_compatible(terms, "sum")
        shapes = {t.shape for t in terms}
        if len(shapes) != 1:
            raise ValueError(f"sum: operators of different shapes {sorted(shapes)}")
        super().__init__(
            shape=terms[0].shape,
            symmetric=all(t.symmetric for t in terms),
            nonsymmetric_reason=_part_reason(terms, "the term"),
            **_like(terms[0]),
        )
        self.terms = terms

    def _matmat(self, x: Array) -> Array:
        y = self.terms[0]._apply_matmat(x)
        for t in self.terms[1:]:
            y = y + t._apply_matmat(x)
        return y

    def _rmatmat(self, y: Array) -> Array:
        x = self.terms[0]._apply_rmatmat(y)
        for t in self.terms[1:]:
            x = x + t._apply_rmatmat(y)
        return x


class ScaledOperator(LinearOperator):
    """``α A`` for a real scalar α."""

    def __init__(self, op: LinearOperator, alpha: float) -> None:
        super().__init__(**_same_form(op))
        self.op = op
        self.alpha = float(alpha)

    def _matmat(self, x: Array) -> Array:
        return self.alpha * self.op._apply_matmat(x)

    def _rmatmat(self, y: Array) -> Array:
        return self.alpha * self.op._apply_rmatmat(y)


class ProductOperator(LinearOperator):
    """``A B``: a product costs one product with B and one with A."""

    def __init__(self, a: LinearOperator, b: LinearOperator) -> None:
        _check_compatible([a, b], "product")
        if a.shape[1] != b.shape[0]:
            raise ValueError(f"product: inner dimensions differ, {a.shape} @ {b.shape}")
        # AᵀA and AAᵀ are symmetric; so is A A for symmetric A.
        sym = (
            (isinstance(a, TransposeOperator) and a.op is b)
            or (isinstance(b, TransposeOperator) and b.op is a)
            or (a is b and a.symmetric)
        )
        super().__init__(shape=(a.shape[0], b.shape[1]), symmetric=sym, nonsymmetric_reason=_PRODUCT_REASON, **_like(a))
        self.a = a
        self.b = b

    def _matmat(self, x: Array) -> Array:
        return self.a._apply_matmat(self.b._apply_matmat(x))

    def _rmatmat(self, y: Array) -> Array:
        return self.b._apply_rmatmat(self.a._apply_rmatmat(y))


class TransposeOperator(LinearOperator):
    """``Aᵀ`` of a non-symmetric operator (products use ``A``'s transpose product)."""

    def __init__(self, op: LinearOperator) -> None:
        super().__init__(
            shape=(op.shape[1], op.shape[0]), symmetric=False, nonsymmetric_reason=op.nonsymmetric_reason, **_like(op)
        )
        self.op = op

    def _matmat(self, x: Array) -> Array:
        return self.op._apply_rmatmat(x)

    def _rmatmat(self, y: Array) -> Array:
        return self.op._apply_matmat(y)


class ShiftedOperator(LinearOperator):
    """``A − σ I``: one product with A plus n b multiply-adds."""

    def __init__(self, op: LinearOperator, sigma: float) -> None:
        if op.shape[0] != op.shape[1]:
            raise ValueError(f"shift needs a square operator, got shape {op.shape}")
        super().__init__(**_same_form(op))
        self.op = op
        self.sigma = float(sigma)

    def _matmat(self, x: Array) -> Array:
        return self.op._apply_matmat(x) - self.sigma * x

    def _rmatmat(self, y: Array) -> Array:
        return self.op._apply_rmatmat(y) - self.sigma * y


class DeflatedOperator(LinearOperator):
    """``(I − V Vᵀ) A (I − V Vᵀ)`` for V (n, k) with orthonormal columns.

    The eigenpairs of A whose vectors are the columns of V become zero
    eigenvalues; the rest are unchanged when V spans an invariant subspace.
    A product costs one product with A plus two projections (O(n k b)).
    """

    def __init__(self, op: LinearOperator, v: Array) -> None:
        if op.shape[0] != op.shape[1]:
            raise ValueError(f"deflate needs a square operator, got shape {op.shape}")
        check_operand(op, v, ndim=2, length=op.shape[0], what="deflate basis V")
        super().__init__(**_same_form(op))
        self.op = op
        self.basis = v

    def _project(self, x: Array) -> Array:
        return x - self.basis @ (self.basis.T @ x)

    def _matmat(self, x: Array) -> Array:
        return self._project(self.op._apply_matmat(self._project(x)))

    def _rmatmat(self, y: Array) -> Array:
        return self._project(self.op._apply_rmatmat(self._project(y)))


class BlockDiagonalOperator(LinearOperator):
    """``diag(A₁, A₂, …)``: a product costs one product of each block."""

    def __init__(self, blocks: list[LinearOperator]) -> None:
        if not blocks:
            raise ValueError("block_diag needs at least one operator")
        _check_compatible(blocks, "block_diag")
        rows = sum(b.shape[0] for b in blocks)
        cols = sum(b.shape[1] for b in blocks)
        super().__init__(
            shape=(rows, cols),
            symmetric=all(b.symmetric for b in blocks),
            nonsymmetric_reason=_part_reason(blocks, "the block"),
            **_like(blocks[0]),
        )
        self.blocks = blocks

    def _apply(self, x: Array, transpose: bool) -> Array:
        out, start = [], 0
        for blk in self.blocks:
            width = blk.shape[0] if transpose else blk.shape[1]
            part = x[start : start + width, :]
            out.append(blk._apply_rmatmat(part) if transpose else blk._apply_matmat(part))
            start += width
        return self.xp.concat(out, axis=0)

    def _matmat(self, x: Array) -> Array:
        return self._apply(x, transpose=False)

    def _rmatmat(self, y: Array) -> Array:
        return self._apply(y, transpose=True)


def add(*ops: LinearOperator) -> LinearOperator:
    """``A₁ + A₂ + …`` (lazy)."""
    terms: list[LinearOperator] = []
    for op in ops:
        terms.extend(op.terms if isinstance(op, SumOperator) else [op])
    return SumOperator(terms)


def scale(op: LinearOperator, alpha: float) -> LinearOperator:
    """``α A`` (lazy); nested scalings collapse into one."""
    if isinstance(op, ScaledOperator):
        return ScaledOperator(op.op, alpha * op.alpha)
    return ScaledOperator(op, alpha)


def compose(a: LinearOperator, b: LinearOperator) -> LinearOperator:
    """``A B`` (lazy)."""
    return ProductOperator(a, b)


def transpose(op: LinearOperator) -> LinearOperator:
    """``Aᵀ``: the operator itself when it is symmetric."""
    if op.symmetric:
        return op
    if isinstance(op, TransposeOperator):
        return op.op
    return TransposeOperator(op)


def shift(op: LinearOperator, sigma: float) -> LinearOperator:
    """``A − σ I`` (lazy): eigenvalues move by −σ, eigenvectors stay."""
    return ShiftedOperator(op, sigma)


def deflate(op: LinearOperator, v: Array) -> LinearOperator:
    """``(I − V Vᵀ) A (I − V Vᵀ)`` for orthonormal columns V (lazy); see :class:`DeflatedOperator`."""
    return DeflatedOperator(op, v)


def block_diag(*blocks: LinearOperator) -> LinearOperator:
    """The block-diagonal operator ``diag(A₁, A₂, …)`` (lazy)."""
    return BlockDiagonalOperator(list(blocks))


register_constructors(add=add, scale=scale, compose=compose, transpose=transpose)
