"""Scale normalization: the Krylov arithmetic runs on ``A / s`` with ``s`` a power of two.

Norms square their entries, so a basis built from products of size 1e155
(float64) or 1e20 (float32) overflows, and one built from products of size
1e-160 or 1e-22 underflows to zero, although every product ``A x`` is finite.
Dividing each product by a power of two ``s`` fixed at the first product keeps
everything near 1; dividing by a power of two is exact, so the results for
``2ᵖ A`` are exactly ``2ᵖ`` times those for ``A``, and for any other ``c·A``
they are ``c`` times them up to rounding.
"""

from __future__ import annotations

import math

import numpy as np

from .. import backends
from ..backends import Array
from ..linop import LinearOperator
from ._orth import column_norms


class NormalizedProducts:
    """Products with ``A / s``; ``s`` is fixed by the first product (no extra product).

    Also the single place where a product's NaN or Inf is caught for the Krylov
    methods, with the count of the product it appeared in.

    Attributes
    ----------
    scale : float
        ``s`` (1.0 until the first product, and for a zero first product).
    count : int
        Products spent (a block of b vectors counts b).
    """

    def __init__(self, op: LinearOperator, who: str) -> None:
        self.op = op
        self.who = who
        self.shape = op.shape
        self.dtype = op.dtype
        self.device = op.device
        self.xp = op.xp
        self.fresh = bool(getattr(op, "fresh_products", False))
        self.scale = 1.0
        self.count = 0
        self._fixed = False

    def matmat(self, x: Array) -> Array:
        """``A x / s`` for a block ``x`` (n, b), an array the caller owns; costs b products."""
        y = self.op.matmat(x)
        self.count += x.shape[1]
        if not self._fixed:
            self.scale = self._power_of_two_scale(y)
            self._fixed = True
        # The result is always the caller's own array, to update in place: the operator's
        # product divided in place when it is fresh, else a new array (the division's, or a
        # copy when s = 1), so the arithmetic after it is the same whatever the scale.
        if self.fresh:
            if self.scale != 1.0:
                y /= self.scale
            return y
        return y / self.scale if self.scale != 1.0 else self.xp.asarray(y, copy=True)

    def _power_of_two_scale(self, y: Array) -> float:
        """``2^round(log₂ ‖y‖)`` with ‖y‖ the largest column norm, computed without overflow."""
        xp = self.xp
        peak = float(backends.to_numpy(xp.max(xp.abs(y))))
        if not math.isfinite(peak):
            raise self.nonfinite()
        if peak == 0.0:
            return 1.0
        norm = peak * float(np.max(backends.to_numpy(column_norms(xp, y / peak))))
        # Keep s and 1/s normal numbers of the dtype, so dividing by s stays exact.
        limit = int(math.log2(float(xp.finfo(y.dtype).max))) - 1
        return math.ldexp(1.0, max(-limit, min(limit, round(math.log2(norm)))))

    def nonfinite(self, what: str = "") -> FloatingPointError:
        """The error for a NaN or Inf met in the products up to now."""
        return FloatingPointError(
            f"{self.who}: the operator product returned NaN or Inf (product {self.count}{what}); "
            f"check the operator, and whether its values exceed the range of {backends.dtype_name(self.dtype)}"
        )
