"""Stochastic diagonal estimation: Hutchinson (Bekas–Kokiopoulou–Saad) and Diag++."""

from __future__ import annotations

import math
import warnings
from typing import Any, NamedTuple

from .. import backends
from .._warnings import ConvergenceWarning
from ..backends import Array, Seed
from ..linop import LinearOperator
from . import _checks
from ._common import (
    DEFAULT_BLOCK_SIZE,
    DEFAULT_MAX_MATVECS,
    DEFAULT_NUM_MATVECS,
    Draws,
    Products,
    Target,
    sketch_split,
)
from ._orth import extend_orthonormal, project_out
from ._plan import announces, budget_count

DIAGONAL_METHODS = ("hutchinson", "diag++")


class DiagonalResult(NamedTuple):
    """A stochastic estimate of ``diag(A)``.

    Attributes
    ----------
    estimate : array, shape (n,)
        The diagonal estimate, on the operator's backend, device and dtype.
    std_error : array, shape (n,)
        Elementwise standard error of ``estimate`` (same backend). Zero where
        the estimate is exact by construction; NaN with a single probe.
    num_matvecs : int
        Products with A (or Aᵀ) actually applied.
    method : str
        ``"hutchinson"`` or ``"diag++"``.
    converged : bool or None
        ``None`` without a target; otherwise whether
        ``rms(std_error) ≤ rtol · rms(estimate) + atol``.
    """

    estimate: Array
    std_error: Array
    num_matvecs: int
    method: str
    converged: bool | None


class _RatioAccumulator:
    """Running sums for ``D = Σ vᵢ / Σ wᵢ`` (elementwise) and its standard error.

    With ``vᵢ = zᵢ ⊙ Bzᵢ`` and ``wᵢ = zᵢ ⊙ zᵢ``, the linearized (delta-method)
    standard error is ``√(Σ eᵢ² · p/(p − 1)) / Σ wᵢ`` with ``eᵢ = vᵢ − D wᵢ``,
    which for Rademacher probes (``wᵢ = 1``) is the sample standard deviation
    over √p. ``eᵢ`` is accumulated shifted by the first block's estimate
    ``D₀``, ``Σeᵢ² = Σ(eᵢ′)² − 2δ Σeᵢ′wᵢ + δ² Σwᵢ²`` with ``eᵢ′ = vᵢ − D₀wᵢ`` and
    ``δ = D − D₀``, so nothing cancels catastrophically when the spread is
    small next to the mean (a diagonal A gives exactly zero).
    """

    def __init__(self, xp: Any) -> None:
        self.xp = xp
        self.count = 0
        self.d0 = self.sv = self.sw = self.se2 = self.sew = self.sw2 = None

    def add(self, v: Array, w: Array) -> None:
        xp = self.xp
        if self.d0 is None:
            self.d0 = xp.sum(v, axis=1) / xp.sum(w, axis=1)
            zeros = self.d0 * 0.0
            self.sv = self.sw = self.se2 = self.sew = self.sw2 = zeros
        e = v - self.d0[:, None] * w
        self.sv = self.sv + xp.sum(v, axis=1)
        self.sw = self.sw + xp.sum(w, axis=1)
        self.se2 = self.se2 + xp.sum(e * e, axis=1)
        self.sew = self.sew + xp.sum(e * w, axis=1)
        self.sw2 = self.sw2 + xp.sum(w * w, axis=1)
        self.count += v.shape[1]

    def result(self) -> tuple[Array, Array]:
        xp = self.xp
        d = self.sv / self.sw
        if self.count < 2:
            return d, d * math.nan
        delta = d - self.d0
        sse = self.se2 - 2.0 * delta * self.sew + delta * delta * self.sw2
        sse = xp.where(sse > 0, sse, xp.zeros_like(sse))
        return d, xp.sqrt(sse * (self.count / (self.count - 1))) / self.sw


class _DiagEstimator:
    """Hutchinson on ``(I − QQᵀ)A`` (plain Hutchinson when no sketch), plus the exact ``diag(QQᵀA)``."""

    def __init__(self, prod: Products, draw: Draws) -> None:
        self.prod, self.draw = prod, draw
        self.op = prod.op
        self.xp = prod.op.xp
        self.n = prod.op.shape[1]
        self.q: Array | None = None
        self.exact: Array | None = None
        self.k = 0
        self.acc = _RatioAccumulator(self.xp)

    def sketch(self, k: int) -> None:
        """``Q = orth(AS)`` with k columns and the exact ``diag(QQᵀA) = rowsum(Q ⊙ AᵀQ)`` (2k products)."""
        xp = self.xp
        q, _, _ = extend_orthonormal(xp, None, self.prod.matmat(self.draw(k)))
        self.exact = xp.sum(q * self.prod.rmatmat(q), axis=1)
        self.prod.check_finite(backends.to_numpy(xp.sum(self.exact)), "diag(QQᵀA)")
        self.q, self.k = q, k

    def add(self, p: int, block: int) -> None:
        """``p`` probes of ``z ⊙ (I − QQᵀ)Az`` (p products)."""
        if self.k >= self.n:
            return
        xp = self.xp
        done = 0
        while done < p:
            b = min(block, p - done)
            z = self.draw(b)
            az, _ = project_out(self.prod.matmat(z), self.q)
            self.acc.add(z * az, z * z)
            self.prod.check_finite(backends.to_numpy(xp.sum(self.acc.sv)), "a probe product z ⊙ Az")
            done += b

    def result(self) -> tuple[Array, Array]:
        if self.k >= self.n:  # Q spans everything: diag(QQᵀA) = diag(A)
            return self.exact, self.exact * 0.0
        d, se = self.acc.result()
        if self.exact is not None:
            d = d + self.exact
        return d, se


def _rms(x: Array) -> float:
    xp = backends.namespace(x)
    return float(backends.to_numpy(xp.sqrt(xp.mean(x * x))))


@announces(budget_count(100))
def diagonal(
    A: Any,
    /,
    num_matvecs: int | None = None,
    *,
    method: str = "hutchinson",
    rtol: float | None = None,
    atol: float | None = None,
    max_matvecs: int | None = None,
    distribution: str = "rademacher",
    block_size: int | None = None,
    seed: Seed = None,
    probes: Array | None = None,
) -> DiagonalResult:
    r"""Estimate ``diag(A)`` of a square operator from products with random probes.

    Parameters
    ----------
    A
        A square :class:`eigenscope.LinearOperator` (or anything
        :func:`eigenscope.aslinearoperator` accepts) of size n. ``"diag++"`` on
        a non-symmetric operator also needs its transpose product.
    num_matvecs
        Products to spend (default 100); the first round in adaptive mode
        (default ``block_size`` probes, 3·block_size for diag++). At least 3 for diag++.
    method
        ``"hutchinson"`` (default) or ``"diag++"``.
    rtol, atol
        Target ``rms(std_error) ≤ rtol · rms(estimate) + atol`` (rms over the n
        entries); giving either switches on adaptive mode, which adds
        ``block_size`` probes per round (diag++ keeps the sketch of its first
        round) until the target or ``max_matvecs``.
    max_matvecs
        Cap in adaptive mode; default ``max(first round, min(1000, 2 n))``.
    distribution
        ``"rademacher"`` (default; exact for a diagonal A), ``"normal"``/``"gaussian"`` or ``"sphere"``.
    block_size
        Most columns per ``A.matmat`` call, and probes per adaptive round (default 10 there).
    seed
        An int, ``None``, or a backend generator/key.
    probes
        An (n, b) array of the operator's backend, dtype and device instead of
        random draws (fixed budget only). Hutchinson uses all b; diag++ sketches
        with the first ``k`` (``num_matvecs // 3`` when given, else ``b // 2``)
        and tests with the rest.

    Returns
    -------
    DiagonalResult
        ``estimate`` and ``std_error`` (backend arrays, shape (n,)), ``num_matvecs``,
        ``method``, ``converged``.

    Notes
    -----
    **Hutchinson** (Bekas, Kokiopoulou & Saad 2007). With probes ``zᵢ``,

    .. math:: \hat d = \Big(\sum_{i=1}^p z_i \odot A z_i\Big) \oslash \Big(\sum_{i=1}^p z_i \odot z_i\Big).

    For Rademacher probes ``zᵢ ⊙ zᵢ = 1`` and the j-th entry is the mean of
    ``A_jj + Σ_{l≠j} A_jl z_l z_j``: unbiased, variance ``Σ_{l≠j} A_jl²/p``, and
    exact for a diagonal A. The standard error is elementwise (delta method
    for the ratio; the sample standard deviation over √p for Rademacher).
    Cost: p products.

    **Diag++** (Baston & Nakatsukasa 2022), the Hutch++ idea for the diagonal:
    with ``k = ⌊m/3⌋``, ``Q = orth(AS)`` (n × k),

    .. math:: \hat d = \mathrm{diag}(QQ^\top A) + \text{Hutchinson}\big((I - QQ^\top) A\big),

    the first term exact (``rowsum(Q ⊙ AᵀQ)``, 2k products), the second from
    ``p = m − 2k`` probes. Row j of the residual is ``A``'s row j with the
    sketched range removed, so the variance falls with the spectrum's tail,
    and the estimate is exact when ``rank A ≤ k``. Cost: ``2k + p = m``.

    References
    ----------
    C. Bekas, E. Kokiopoulou, Y. Saad, "An estimator for the diagonal of a
    matrix", Appl. Numer. Math. 57, 2007.
    R. Baston, Y. Nakatsukasa, "Stochastic diagonal estimation: probabilistic
    bounds and an improved algorithm", arXiv:2201.10684, 2022.
    """
    who = "diagonal"
    method = _checks.choice(method, "method", DIAGONAL_METHODS, who)
    distribution = _checks.choice(distribution, "distribution", backends.DISTRIBUTIONS, who)
    op: LinearOperator = _checks.square_operator(A, who)
    n = op.shape[1]
    minimum = 3 if method == "diag++" else 1
    hint = " (diag++ splits it into thirds)" if method == "diag++" else ""
    num_matvecs = _checks.optional_count(num_matvecs, "num_matvecs", who, minimum=minimum, hint=hint)
    max_matvecs = _checks.optional_count(max_matvecs, "max_matvecs", who, minimum=minimum, hint=hint)
    block_size = _checks.optional_count(block_size, "block_size", who)
    rtol = _checks.optional_tolerance(rtol, "rtol", who)
    atol = _checks.optional_tolerance(atol, "atol", who)
    adaptive = rtol is not None or atol is not None
    _checks.probe_block(op, probes, who, adaptive=adaptive)

    prod = Products(op, block_size, who)
    est = _DiagEstimator(prod, Draws(op, seed, distribution, probes))
    step = block_size or (DEFAULT_BLOCK_SIZE if adaptive else None)
    if adaptive:
        budget = num_matvecs if num_matvecs is not None else minimum * step
    elif probes is not None:
        budget = num_matvecs
    else:
        budget = num_matvecs or DEFAULT_NUM_MATVECS

    if method == "diag++":
        k, p = sketch_split(budget, probes, who, "diag++")
        est.sketch(min(k, n))
    else:
        p = probes.shape[1] if probes is not None else budget
        if probes is not None and budget is not None and budget != p:
            raise ValueError(f"{who}: {p} probes give {p} products, but num_matvecs={budget}")
    est.add(p, step or p)

    converged = None
    if adaptive:
        target = Target(rtol or 0.0, atol or 0.0)
        cap = max_matvecs if max_matvecs is not None else max(budget, min(DEFAULT_MAX_MATVECS, 2 * n))
        if budget > cap:
            raise ValueError(f"{who}: num_matvecs={budget} exceeds max_matvecs={cap}")
        while True:
            d, se = est.result()
            converged = target.reached(_rms(se), _rms(d))
            left = cap - prod.count
            if converged or left <= 0 or est.k >= n:
                break
            est.add(min(step, left), step)
    d, se = est.result()
    if converged is False:
        warnings.warn(
            f"diagonal ({method}): the RMS standard error did not reach the target within "
            f"{prod.count} products; see result.converged",
            ConvergenceWarning,
            stacklevel=2,
        )
    return DiagonalResult(d, se, prod.count, method, converged)
