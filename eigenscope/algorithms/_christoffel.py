"""The Christoffel-function certificate: no eigenvalue beyond x, unless the start vector missed it.

A Lanczos sequence from a unit vector z builds the orthonormal polynomials ``p_0 = 1, …, p_m``
of z's spectral measure ``μ = Σ_i (v_iᵀz)² δ_{λ_i}`` through the recurrence
``β_{i+1} p_{i+1}(x) = (x − α_{i+1}) p_i(x) − β_i p_{i−1}(x)``. Every atom obeys
``μ({λ}) ≤ 1 / Σ_{i≤m} p_i(λ)²`` (the Christoffel function: the smallest ``∫ q² dμ`` over
polynomials of degree ≤ m with ``q(λ) = 1``), and beyond the extreme zero of ``p_m`` (the
extreme Ritz value) every ``p_i²`` grows outward, so at every λ at or beyond x the bound is
at most ``1 / Σ p_i(x)²``. Once that is below ``δ²/d`` no eigenvalue there has the squared
component ``δ²/d`` that a Gaussian z in d dimensions exceeds with probability ``1 − 0.8 δ``.

``eigsh``'s verification uses it on a fresh sequence (``_verify``); for one wanted pair per
end the main run's own sequence can give it too (:class:`StartCertificate`): the wanted
eigenvalue's own atom only delays it, since a missed *other* eigenvalue beyond
``θ + tol·|θ|`` must still appear in the measure.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from ._pairs import threshold

DELTA = 1e-4  # the start vector's component along a missed eigenvector is ≥ δ/√d but with probability ≈ 0.8 δ


def log_christoffel_sum(alpha: Sequence[float], beta: Sequence[float], x: float) -> tuple[float, float]:
    """``(ln Σ_{i≤m} p_i(x)², ln Σ_{i≤m−1} p_i(x)²)`` for the recurrence ``(α_1..α_m, β_1..β_m)``.

    Rescaled as it goes, so it neither overflows nor underflows at any m. Cost: O(m) on the host.
    """
    p_prev, p, total, scale = 0.0, 1.0, 1.0, 0.0  # values are e^{scale} × the stored ones
    before = 0.0
    for i in range(len(alpha)):
        previous = beta[i - 1] if i else 0.0
        p_prev, p = p, ((x - alpha[i]) * p - previous * p_prev) / beta[i]
        before = scale + math.log(total)
        total += p * p
        if total > 1e100:
            p_prev, p, total = p_prev * 1e-50, p * 1e-50, total * 1e-100
            scale += 100 * math.log(10)
    return scale + math.log(total), before


def certified(alpha: Sequence[float], beta: Sequence[float], x: float, d: int) -> bool:
    """Whether an eigenvalue at or beyond x (beyond the extreme Ritz value) would need a start
    component below δ/√d: ``Σ_{i≤m} p_i(x)² > d/δ²``."""
    return log_christoffel_sum(alpha, beta, x)[0] > math.log(d / DELTA**2)


class StartCertificate:
    """The main run's own certificate for ``k = 1`` (one wanted pair per end).

    After the wanted pair has converged, ``check`` says whether the start vector's sequence
    already shows that no eigenvalue lies beyond ``θ ± max(‖r‖, tol·max(|θ|, ε^{1/3}‖A‖),
    100 ε ‖A‖)`` on the checked ends (``"certified"``), whether continuing the same sequence
    should get there within the steps left before a restart (``"continue"``, judged from the
    growth of ``Σ p_i(x)²`` over the last step), or neither (``"stop"``: the fresh-start
    verification then runs as for any k). Valid only for a random Gaussian start, no
    restart, no breakdown and no locked vectors: the caller checks that.
    """

    def __init__(self, which: str, n: int, tol: float, eps: float) -> None:
        self.which = which
        self.limit = math.log(n / DELTA**2)
        self.tol = tol
        self.eps = eps
        self.certified = False
        self.matvecs_after_convergence = 0
        self._converged_at: int | None = None  # products spent when the pair first converged

    def _points(self, value: float, margin: float) -> list[tuple[str, float]]:
        if self.which in ("LA", "BE"):
            return [("high", value + margin)]
        if self.which == "SA":
            return [("low", value - margin)]
        return [("high", abs(value) + margin), ("low", -abs(value) - margin)]  # LM

    def check(
        self,
        h: np.ndarray,
        j: int,
        ritz: np.ndarray,
        value: float,
        residual: float,
        anorm: float,
        room: int,
        spent: int,
    ) -> str:
        """Judge the sequence after j steps (``h`` its tridiagonal, ``ritz`` all j Ritz values,
        ``value``/``residual`` the wanted pair, ``room`` the steps left before a restart or the
        budget's end, ``spent`` the products so far)."""
        if self._converged_at is None:
            self._converged_at = spent
        self.matvecs_after_convergence = spent - self._converged_at
        alpha = [float(h[i, i]) for i in range(j)]
        beta = [float(h[i + 1, i]) for i in range(j)]
        if min(beta) <= 0.0:
            return "stop"
        margin = max(
            residual, float(threshold(np.array([value]), self.tol, self.eps, anorm)[0]), 100 * self.eps * anorm
        )
        needed = 0
        for end, x in self._points(value, margin):
            # Beyond the extreme Ritz value on that end, or the bound is not monotone there.
            if (end == "high" and x < float(ritz.max())) or (end == "low" and x > float(ritz.min())):
                return "stop"
            now, before = log_christoffel_sum(alpha, beta, x)
            if now > self.limit:
                continue
            rate = now - before
            if rate <= 0.0:
                return "stop"
            needed = max(needed, math.ceil((self.limit - now) / rate))
        if needed == 0:
            self.certified = True
            return "certified"
        return "continue" if needed <= room else "stop"
