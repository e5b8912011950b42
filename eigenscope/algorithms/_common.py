"""What the stochastic estimators (trace, diagonal) share: counted products, probes, statistics.

Every product goes through :class:`Products`, which counts it and names the product a
NaN or Inf came from; every probe block comes from :class:`Draws`, seeded or sliced off
user-given probes; per-probe scalars become an estimate and a standard error with
:func:`mean_and_error`, judged against a :class:`Target`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np

from .. import backends
from ..backends import Array, Seed
from ..linop import LinearOperator

DEFAULT_NUM_MATVECS = 100
"""Budget of a fixed-budget run when neither ``num_matvecs`` nor a tolerance is given."""
DEFAULT_BLOCK_SIZE = 10
"""Probes drawn per round in adaptive mode when ``block_size`` is not given."""
DEFAULT_MAX_MATVECS = 1000
"""Upper end of the default cap in adaptive mode (see :func:`eigenscope.trace`)."""


class Products:
    """Counts the products with A and cuts wide blocks into ``block_size`` columns."""

    def __init__(self, op: LinearOperator, block_size: int | None, who: str) -> None:
        self.op = op
        self.block_size = block_size
        self.who = who
        self.count = 0

    def _apply(self, f: Any, x: Array) -> Array:
        b = x.shape[1]
        if self.block_size is None or b <= self.block_size:
            return self._checked(f, x)
        step = self.block_size
        # strict: no out-of-range stops
        parts = [self._checked(f, x[:, j : min(j + step, b)]) for j in range(0, b, step)]
        return self.op.xp.concat(parts, axis=1)

    def _checked(self, f: Any, x: Array) -> Array:
        """One call of the operator; a NaN or Inf column is reported as the product it came from."""
        xp = self.op.xp
        y = f(x)
        finite = backends.to_numpy(xp.all(xp.isfinite(y), axis=0))  # one sync per call, b booleans
        if not finite.all():
            col = int(np.argmin(finite))
            raise FloatingPointError(
                f"{self.who}: product {self.count + col + 1} with A (column {col + 1} of a block of "
                f"{x.shape[1]}) returned NaN or Inf; check the operator, and whether its values exceed the "
                f"range of {backends.dtype_name(self.op.dtype)}"
            )
        self.count += x.shape[1]
        return y

    def matmat(self, x: Array) -> Array:
        """``A @ X`` (costs ``X.shape[1]`` products)."""
        return self._apply(self.op.matmat, x)

    def rmatmat(self, x: Array) -> Array:
        """``Aᵀ @ X`` (costs ``X.shape[1]`` products; A itself for symmetric operators)."""
        return self._apply(self.op.rmatmat, x)

    def check_finite(self, values: np.ndarray, what: str) -> None:
        """Raise ``FloatingPointError`` naming ``what`` if a value computed from the products is not finite."""
        if not np.all(np.isfinite(values)):
            raise FloatingPointError(
                f"{self.who}: {what} is NaN or Inf after {self.count} products with A; "
                "the operator returned non-finite values (or overflowed the dtype)"
            )


class Draws:
    """Probe blocks: drawn from a seeded source, or sliced off user-given probes."""

    def __init__(self, op: LinearOperator, seed: Seed, distribution: str, probes: Array | None) -> None:
        self.op = op
        self.distribution = distribution
        self.n = op.shape[1]
        self.fixed = probes
        self.used = 0
        self.source = None if probes is not None else backends.random_source(seed, xp=op.xp, device=op.device)

    def __call__(self, b: int) -> Array:
        """The next ``b`` probes, an (n, b) block."""
        if self.fixed is not None:
            block = self.fixed[:, self.used : self.used + b]
            self.used += b
            return block
        return self.source.probes((self.n, b), self.op.dtype, self.distribution)


class Target:
    """The stopping rule of adaptive mode: ``std_error ≤ rtol·|estimate| + atol``."""

    def __init__(self, rtol: float, atol: float) -> None:
        self.rtol, self.atol = rtol, atol

    def value(self, estimate: float) -> float:
        """The standard error wanted for ``estimate``."""
        return self.rtol * abs(estimate) + self.atol

    def reached(self, std_error: float, estimate: float) -> bool:
        """Whether ``std_error`` meets the target (never for a NaN error)."""
        return bool(std_error <= self.rtol * abs(estimate) + self.atol)


Run = tuple[float, float, np.ndarray]
"""``(estimate, std_error, samples)`` of a trace estimator."""


class Estimator(NamedTuple):
    """A trace estimator as :func:`eigenscope.trace` dispatches to it.

    ``fixed(prod, draw, num_matvecs, probes, block_size, who)`` spends a fixed budget;
    ``adaptive(prod, draw, first, cap, step, target)`` spends ``first`` products, then
    adds rounds of ``step`` probes until ``target`` or ``cap``.
    """

    minimum: int  # the smallest budget, in products
    hint: str  # why that minimum, for messages
    fixed: Callable[..., Run]
    adaptive: Callable[..., Run]


def sketch_split(budget: int | None, probes: Array | None, who: str, name: str) -> tuple[int, int]:
    """Sketch size k and residual probes p of a Hutch++ or Diag++ budget (2k + p products).

    Thirds of the budget (Meyer et al. 2021); with user-given probes and no budget, half
    of them sketch and half test.
    """
    if probes is None:
        m = budget or DEFAULT_NUM_MATVECS
        k = m // 3
        return k, m - 2 * k
    b = probes.shape[1]
    if budget is None:
        if b < 2:
            raise ValueError(f"{who}: {name} needs at least 2 probes (1 sketch, 1 residual), got {b}")
        k = b // 2
        return k, b - k
    k = budget // 3
    p = budget - 2 * k
    if b != k + p:
        raise ValueError(
            f"{who}: {name} with num_matvecs={budget} uses {k} sketch and {p} residual probes, "
            f"so probes must have {k + p} columns, got {b}"
        )
    return k, p


def column_dots(x: Array, y: Array) -> np.ndarray:
    """``diag(Xᵀ Y)`` on the host: one scalar per column."""
    xp = backends.namespace(x)
    return backends.to_numpy(xp.sum(x * y, axis=0)).astype(np.float64)


def to_host(x: Array) -> np.ndarray:
    """A small backend array as a float64 NumPy array."""
    return backends.to_numpy(x).astype(np.float64)


def mean_and_error(samples: np.ndarray) -> tuple[float, float]:
    """The mean of ``samples`` and its standard error ``std/√p`` (NaN below two samples)."""
    p = samples.size
    if p == 0:
        return math.nan, math.nan
    mean = float(np.mean(samples))
    if p < 2:
        return mean, math.nan
    return mean, float(np.std(samples, ddof=1) / math.sqrt(p))
