"""Power iteration with deflation (PyHessian's method), kept as ``eigsh``'s baseline."""

from __future__ import annotations

import numpy as np

from .. import backends
from ..backends import Array
from ._orth import cgs2, column_norms, project_out
from ._pairs import Pairs, ranking, threshold
from ._scaling import NormalizedProducts


def power_pairs(
    products: NormalizedProducts,
    k: int,
    which: str,
    tol: float,
    max_matvecs: int,
    rng: backends.RandomSource,
    start: Array | None = None,
) -> Pairs:
    """k pairs by power iteration, one at a time, each deflated against those found before.

    Pair i iterates with ``B = σ A + c I`` restricted to the complement of the
    i − 1 vectors found (σ = ±1 and the shift c ≥ ‖A‖ make the wanted end the
    dominant one for ``"LA"``/``"SA"``; c = 0 for ``"LM"``). The residual tested
    and reported is the true ``‖A v − (vᵀAv) v‖``, read off the same product.
    Cost: up to ``max_matvecs`` products, split evenly between the pairs (plus
    about a tenth of it for the norm estimate behind the shift).
    """
    xp = products.xp
    n = products.shape[0]
    eps = backends.finfo_eps(xp, products.dtype)
    spent_before = products.count
    shift, sign, anorm = 0.0, 1.0, 0.0
    if which in ("LA", "SA"):
        # B = sign·A + shift·I with shift ≥ ‖A‖ from a first (cheap, loose) power estimate.
        est = power_pairs(products, 1, "LM", max(tol, 1e-2), max(1, max_matvecs // 10), rng, start)
        anorm = abs(float(est.values[0]))
        shift = 1.05 * anorm
        sign = 1.0 if which == "LA" else -1.0
    per_pair = max(1, (max_matvecs - (products.count - spent_before)) // k)
    found: Array | None = None
    products_of_found: list[Array] = []
    for i in range(k):
        v = start[:, :1] if (start is not None and i == 0 and which == "LM") else rng.normal((n, 1), products.dtype)
        x = ax = v
        for _ in range(per_pair):
            v, _ = cgs2(v, (found,))  # deflation: stay orthogonal to the pairs already found
            v = v / column_norms(xp, v)[0]
            av = products.matmat(v)
            x, ax = v, av  # the pair measured below: what is kept when the budget ends the loop
            rayleigh = xp.sum(v * av)
            stats = backends.to_numpy(xp.stack([rayleigh, column_norms(xp, av - rayleigh * v)[0]]))
            stats = stats.astype(np.float64)
            if not np.all(np.isfinite(stats)):
                raise products.nonfinite()
            theta, res = float(stats[0]), float(stats[1])
            anorm = max(anorm, abs(theta))
            if res <= float(threshold(np.array([theta]), tol, eps, anorm)[0]):
                break
            w = sign * av + shift * v
            v, _ = project_out(w, found)  # iterate with the deflated B, so errors in U do not stall it
        found = x if found is None else xp.concat([found, x], axis=1)
        products_of_found.append(ax)
    # Rayleigh–Ritz on the span of the k vectors found, with the products already made: pair i
    # inherits the error of the pairs deflated before it, and this step removes it (no new product).
    au = xp.concat(products_of_found, axis=1)
    g = backends.to_numpy(found.T @ au).astype(np.float64)
    vals, s = np.linalg.eigh((g + g.T) / 2)
    order = ranking(vals, which)
    s_dev = backends.from_numpy(s[:, order], xp=xp, dtype=products.dtype, device=products.device)
    vectors, a_vectors = found @ s_dev, au @ s_dev
    vals = vals[order]
    theta = backends.from_numpy(vals, xp=xp, dtype=products.dtype, device=products.device)
    resids = backends.to_numpy(column_norms(xp, a_vectors - vectors * theta[None, :])).astype(np.float64)
    converged = resids <= threshold(vals, tol, eps, anorm)
    return Pairs(vals, vectors, resids, converged, k, anorm)
