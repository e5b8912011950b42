"""Verification of ``eigsh``'s answer: are the pairs found the k most extreme, multiplicities included?

One Krylov sequence sees a single copy of each distinct eigenvalue (the start
vector's projection on an eigenspace is one direction), and after a breakdown
nothing outside the invariant subspace. So once k pairs have converged, every
pair found is locked and a *fresh* random vector z, orthogonal to them, starts a
Lanczos sequence on the rest of the space. It ends in one of three ways:

1. **Certificate.** If an eigenvalue λ* at or beyond the reference r (the least
   extreme selected value, moved outward by the residuals) existed on the rest of
   the space, z's squared component along it would be bounded by the Christoffel
   function of z's spectral measure at λ*, ``1 / Σ_{i≤m} p_i(λ*)²`` with ``p_i`` the
   orthonormal polynomials the Lanczos recurrence builds — and beyond the extreme
   Ritz value that bound only shrinks outward, so its value at r bounds them all.
   Once it is below ``δ²/d`` (d the dimension left, δ = 10⁻⁴: a Gaussian z has a
   smaller component with probability ≈ 0.8 δ), no such eigenvalue exists: verified.
2. **Convergence.** The extreme Ritz value converges (residual ≤ tol·max(|θ|,
   ε^{1/3}‖A‖), or a breakdown makes it exact); if it is not beyond r the set is
   verified, else a newcomer exists.
3. **Newcomer.** A Ritz value beyond r: thick-restart Lanczos (locked, fresh start)
   computes it to full accuracy, it joins the set, and a new round starts.

For one wanted pair per end the main run may have verified it already, with the same
certificate on its own random start (``_christoffel.StartCertificate``): no scan then.

The sequence keeps no basis (three-term recurrence, a local re-orthogonalization,
and one projection off the locked vectors per step, a second where the DGKS test asks): O(n) memory at any length.
Cost: the steps until ``Σ p_i(r)² > d/δ²``: about ``log(√d/δ)`` divided by the
growth rate of the orthonormal polynomials at r, which is fast when the rest of
the spectrum lies well inside r (a network Hessian's bulk near zero) and slow when
the (k+1)-th eigenvalue nearly ties the k-th; one round unless something was missed.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
from scipy.linalg import eigh_tridiagonal

from .. import backends
from ..backends import Array
from ._christoffel import certified
from ._orth import (
    breakdown_tolerance,
    column_norms,
    dot,
    orthonormalize_block,
    project_out,
    reorthogonalize,
    take_columns,
)
from ._pairs import Pairs, ranking, threshold
from ._scaling import NormalizedProducts
from ._thick_restart import thick_restart


class Request(NamedTuple):
    """What ``eigsh`` was asked for: k pairs at ``which``, to ``tol``, within ``budget`` products."""

    k: int
    which: str
    tol: float
    budget: int
    block: int


class _Test(NamedTuple):
    """One end to check: nothing at or beyond ``ref`` (moved out by ``margin``) may exist."""

    end: str  # "high" or "low"
    ref: float
    margin: float


class Found:
    """Every pair found so far (orthonormal vectors); the k most wanted are selected from it."""

    def __init__(self, pairs: Pairs) -> None:
        self.values = pairs.values.copy()
        self.vectors = pairs.vectors
        self.residuals = pairs.residuals.copy()

    def add(self, xp: Any, values: np.ndarray, vectors: Array, residuals: np.ndarray) -> None:
        self.values = np.concatenate([self.values, values])
        self.vectors = xp.concat([self.vectors, vectors], axis=1)
        self.residuals = np.concatenate([self.residuals, residuals])

    def select(self, k: int, which: str) -> np.ndarray:
        return ranking(self.values, which)[:k]


def _tests(values: np.ndarray, residuals: np.ndarray, which: str, floor: float) -> list[_Test]:
    """The ends to check for the selected set (``values`` ranked most wanted first)."""

    def at(i: int) -> tuple[float, float]:
        return float(values[i]), max(float(residuals[i]), floor)

    last = values.size - 1
    if which == "LA":
        return [_Test("high", *at(last))]
    if which == "SA":
        return [_Test("low", *at(last))]
    if which == "LM":
        ref, margin = at(last)
        return [_Test("high", abs(ref), margin), _Test("low", -abs(ref), margin)]
    top, bottom = np.arange(0, values.size, 2), np.arange(1, values.size, 2)  # BE alternates high, low
    tests = [_Test("high", *at(int(top[np.argmin(values[top])])))]
    if bottom.size:
        tests.append(_Test("low", *at(int(bottom[np.argmax(values[bottom])]))))
    return tests


def _beyond(value: float, test: _Test, margin: float) -> bool:
    if test.end == "high":
        return value > test.ref + margin
    return value < test.ref - margin


def _fresh_start(products: NormalizedProducts, rng: backends.RandomSource, locked: Array) -> Array:
    xp = products.xp
    z = rng.normal((products.shape[0], 1), products.dtype)
    q, _, _ = orthonormalize_block(xp, z, 0.0, (locked,))
    return q


def _scan(
    products: NormalizedProducts,
    locked: Array,
    tests: list[_Test],
    tol: float,
    anorm: float,
    budget_left: int,
    rng: backends.RandomSource,
) -> str:
    """One fresh Lanczos sequence on the complement of ``locked``: "verified", "newcomer" or "budget"."""
    xp = products.xp
    eps = backends.finfo_eps(xp, products.dtype)
    d = products.shape[0] - int(locked.shape[1])
    q = _fresh_start(products, rng, locked)
    q_prev = xp.zeros_like(q)
    beta_prev = 0.0
    alpha: list[float] = []
    beta: list[float] = []
    for _ in range(budget_left):
        w = products.matmat(q)
        # A q is nearly orthogonal to them: one pass. The product is ours (see
        # NormalizedProducts), updated in place from here on (a fresh n-length array costs
        # more than the arithmetic at n = 10⁷).
        w, _, _ = reorthogonalize(xp, w, (locked,), owned=True)
        a = dot(xp, q[:, 0], w[:, 0])
        w = backends.subtract_scaled(w, a, q)
        w = backends.subtract_scaled(w, xp.asarray(beta_prev, dtype=w.dtype, device=products.device), q_prev)
        corr = dot(xp, q[:, 0], w[:, 0])  # one local re-orthogonalization against q_m
        w = backends.subtract_scaled(w, corr, q)
        b = column_norms(xp, w)[0]
        ab = backends.to_numpy(xp.stack([a + corr, b])).astype(np.float64)
        if not np.all(np.isfinite(ab)):
            raise products.nonfinite(", verification")
        alpha.append(float(ab[0]))
        anorm = max(anorm, abs(float(ab[0])) + float(ab[1]) + beta_prev)
        invariant = float(ab[1]) <= breakdown_tolerance(eps, anorm)
        theta, s = _tridiagonal_extremes(np.array(alpha), np.array(beta))
        resid = float(ab[1]) * np.abs(s[-1, :]) if not invariant else np.zeros(2)
        done = True
        for test in tests:
            i = 1 if test.end == "high" else 0
            value, margin = float(theta[i]), max(float(resid[i]), test.margin)
            if _beyond(value, test, margin):
                return "newcomer"
            if invariant:
                continue  # exact and not beyond: this end is verified
            if resid[i] <= threshold(np.array([value]), tol, eps, anorm)[0]:
                # Converged: its eigenvalue may lie up to a residual higher (a mixture inside a
                # cluster), so only a value clearly inside verifies; a near tie is settled by an
                # accurate computation of the rest's extreme pair.
                if _beyond(value + (resid[i] if test.end == "high" else -resid[i]), test, test.margin):
                    return "newcomer"
                continue
            x = test.ref + margin if test.end == "high" else test.ref - margin
            if not certified(alpha, [*beta, float(ab[1])], x, d):
                done = False
        if done:
            return "verified"
        beta.append(float(ab[1]))
        w /= b
        q_prev, q, beta_prev = q, w, float(ab[1])
    return "budget"


def _tridiagonal_extremes(alpha: np.ndarray, beta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Smallest and largest eigenpair of the tridiagonal ``T`` (values (2,), vectors (m, 2))."""
    m = alpha.size
    if m == 1:
        return np.array([alpha[0], alpha[0]]), np.ones((1, 2))
    lo = eigh_tridiagonal(alpha, beta, select="i", select_range=(0, 0))
    hi = eigh_tridiagonal(alpha, beta, select="i", select_range=(m - 1, m - 1))
    return np.array([lo[0][0], hi[0][0]]), np.concatenate([lo[1], hi[1]], axis=1)


def dense_complement(products: NormalizedProducts, locked: Array, rng: backends.RandomSource) -> Pairs:
    """Every eigenpair of A on the (small, dimension d) complement of ``locked``: d products."""
    xp = products.xp
    n = products.shape[0]
    d = n - int(locked.shape[1])
    z = rng.normal((n, d), products.dtype)
    q, _, _ = orthonormalize_block(xp, z, 0.0, (locked,))
    aq = products.matmat(q)
    aq, c1 = project_out(aq, locked)
    g = backends.to_numpy(q.T @ aq).astype(np.float64)
    c = backends.to_numpy(c1).astype(np.float64)
    if not (np.all(np.isfinite(g)) and np.all(np.isfinite(c))):
        raise products.nonfinite()
    theta, s = np.linalg.eigh((g + g.T) / 2)
    vectors = q @ backends.from_numpy(s, xp=xp, dtype=products.dtype, device=products.device)
    resid = np.linalg.norm(c @ s, axis=0)
    return Pairs(theta, vectors, resid, np.ones(d, dtype=bool), 0, 0.0)


def verify(
    products: NormalizedProducts, first: Pairs, request: Request, rng: backends.RandomSource
) -> tuple[Found, bool, int]:
    """Rounds of :func:`_scan` (and of newcomer searches) until the set is verified.

    Returns ``(found, verified, products spent)``; ``verified`` is False when the
    budget ran out first.
    """
    k, which, tol, budget, block = request
    xp = products.xp
    n = products.shape[0]
    eps = backends.finfo_eps(xp, products.dtype)
    found = Found(first)
    if first.certified:  # the main run's own sequence showed it (k = 1, see _christoffel)
        return found, True, first.certificate_matvecs
    anorm = first.anorm
    start = products.count
    while True:
        sel = found.select(k, which)
        tests = _tests(found.values[sel], found.residuals[sel], which, 100 * eps * anorm)
        left = budget - products.count
        d = n - int(found.vectors.shape[1])
        if d == 0:  # every eigenpair is known
            return found, True, products.count - start
        ncv = -(-max(20, 10 * block) // block) * block
        if d <= ncv + block:  # a small rest: solve it exactly
            if d > left:
                return found, False, products.count - start
            rest = dense_complement(products, found.vectors, rng)
            found.add(xp, rest.values, rest.vectors, rest.residuals)
            return found, True, products.count - start
        outcome = _scan(products, found.vectors, tests, tol, anorm, left, rng)
        if outcome != "newcomer":
            return found, outcome == "verified", products.count - start
        # Something lies beyond: compute it to full accuracy on the complement of what is found.
        which_v = "LA" if which == "BE" and len(tests) == 1 else which
        k_v = 2 if which_v == "BE" else 1
        left = budget - products.count
        if left < ncv:
            return found, False, products.count - start
        probe = thick_restart(products, k_v, which_v, tol, left, ncv, block, rng, locked=found.vectors, anorm=anorm)
        anorm = max(anorm, probe.anorm)
        if not probe.converged.all():
            return found, False, products.count - start
        keep = [
            i
            for i in range(k_v)
            if any(_beyond(float(probe.values[i]), t, max(float(probe.residuals[i]), t.margin)) for t in tests)
        ]
        if not keep:  # the scan's Ritz value was transient; the accurate pair is not beyond
            return found, True, products.count - start
        found.add(xp, probe.values[keep], take_columns(xp, probe.vectors, keep), probe.residuals[keep])
