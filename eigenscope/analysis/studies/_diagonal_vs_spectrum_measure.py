"""Measurements of the diagonal-vs-spectrum study: random matrices with known laws, an MLP's curvature.

Random-matrix part (seed 002, section 5): a Wigner matrix (semicircle law), a Wishart
matrix (Marchenko–Pastur law) and the seed's synthetic 1000×1000 matrix with a known
spectrum, each compared with its analytic law by the 1-Wasserstein distance. Each law is
represented by ``Q`` quantile atoms ``F⁻¹((i + ½)/Q)``, whose own distance to the law is at
most ``(support width)/Q``, far below the distances measured.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ._common import serial_blas

LAW_ATOMS = 20000


def wigner(n: int, *, seed: int) -> np.ndarray:
    """A GOE matrix scaled to the semicircle on [−2, 2]: ``X = (G + Gᵀ)/√(2n)``, G i.i.d. N(0, 1). O(n²)."""
    g = np.random.default_rng(seed).standard_normal((n, n))
    return (g + g.T) / np.sqrt(2.0 * n)


def wishart(n: int, *, seed: int, aspect: float = 2.0) -> np.ndarray:
    """``Y = X Xᵀ / T`` with ``X`` n × T i.i.d. N(0, 1), ``T = aspect · n`` (Marchenko–Pastur, c = n/T). O(n² T)."""
    t = round(aspect * n)
    x = np.random.default_rng(seed).standard_normal((n, t))
    return x @ x.T / t


def synthetic_eigenvalues(n: int, *, seed: int) -> np.ndarray:
    """Seed 002's synthetic spectrum, scaled to size n (the seed: n = 1000).

    47% of the eigenvalues uniform on [0, 15], 2% uniform on [0, 60], 1% uniform on
    [−10, 0], the rest (50%) exactly 0: a spike at zero, a bulk and outliers. O(n).
    """
    rng = np.random.default_rng(seed)
    k_bulk, k_out, k_neg = round(0.47 * n), round(0.02 * n), round(0.01 * n)
    parts = [rng.uniform(0, 15, k_bulk), rng.uniform(0, 60, k_out), rng.uniform(-10, 0, k_neg)]
    return np.sort(np.concatenate([*parts, np.zeros(n - k_bulk - k_out - k_neg)]))


def synthetic(n: int, *, seed: int) -> np.ndarray:
    """``H = U D Uᵀ`` with D from :func:`synthetic_eigenvalues` and U a random orthogonal matrix.

    U is the Q factor of a Gaussian matrix (Gram–Schmidt of Gaussian columns, as in the seed),
    signs fixed so U is Haar distributed. O(n³).
    """
    d = synthetic_eigenvalues(n, seed=seed)
    with serial_blas():
        q, r = np.linalg.qr(np.random.default_rng(seed + 1).standard_normal((n, n)))
    u = q * np.sign(np.diag(r))
    h = (u * d) @ u.T
    return 0.5 * (h + h.T)


def law_atoms(name: str, *, aspect: float = 2.0, count: int = LAW_ATOMS) -> np.ndarray:
    """``count`` quantile atoms ``F⁻¹((i + ½)/count)`` of an analytic limiting law.

    ``"wigner"``: semicircle ``ρ(x) = √(4 − x²)/(2π)`` on [−2, 2], with the closed-form CDF
    ``F(x) = ½ + x√(4 − x²)/(4π) + arcsin(x/2)/π``. ``"marchenko-pastur"``: for ``c = 1/aspect ≤ 1``,
    ``ρ(x) = √((b − x)(x − a))/(2π c x)`` on ``[a, b] = [(1 − √c)², (1 + √c)²]``, CDF by
    cumulative trapezoid on 200 001 points. ``"synthetic"``: the mixture ½ δ₀ + 0.47 U[0, 15] +
    0.02 U[0, 60] + 0.01 U[−10, 0], atoms allotted to each component by its weight. O(count + grid).
    """
    u = (np.arange(count) + 0.5) / count
    if name == "wigner":
        x = np.linspace(-2.0, 2.0, 200001)
        cdf = 0.5 + x * np.sqrt(np.clip(4 - x**2, 0, None)) / (4 * np.pi) + np.arcsin(x / 2) / np.pi
        return np.interp(u, cdf, x)
    if name == "marchenko-pastur":
        c = 1.0 / aspect
        a, b = (1 - np.sqrt(c)) ** 2, (1 + np.sqrt(c)) ** 2
        x = np.linspace(a, b, 200001)
        rho = np.sqrt(np.clip((b - x) * (x - a), 0, None)) / (2 * np.pi * c * x)
        cdf = np.concatenate([[0.0], np.cumsum(0.5 * (rho[1:] + rho[:-1]) * np.diff(x))])
        return np.interp(u, cdf / cdf[-1], x)
    if name == "synthetic":
        comps = [(0.5, 0.0, 0.0), (0.47, 0.0, 15.0), (0.02, 0.0, 60.0), (0.01, -10.0, 0.0)]
        atoms = []
        for weight, lo, hi in comps:
            k = round(weight * count)
            atoms.append(lo + (hi - lo) * (np.arange(k) + 0.5) / k)
        return np.sort(np.concatenate(atoms))
    raise ValueError(f"unknown law {name!r}")


def law_support(name: str, *, aspect: float = 2.0) -> tuple[float, float]:
    """The support ``[lo, hi]`` of a law of :func:`law_atoms`. O(1)."""
    if name == "wigner":
        return (-2.0, 2.0)
    if name == "marchenko-pastur":
        c = 1.0 / aspect
        return ((1 - np.sqrt(c)) ** 2, (1 + np.sqrt(c)) ** 2)
    return (-10.0, 60.0)


def random_matrix_distances(
    name: str, matrix: np.ndarray, *, num_steps: int, seed: int, aspect: float = 2.0
) -> dict[str, Any]:
    """Distances to the analytic law of the exact, SLQ and diagonal spectra of one random matrix.

    ``W₁(μ, law)`` (:func:`eigenscope.metrics.density_wasserstein`) for μ = the exact eigenvalues
    (finite-size baseline), the SLQ measure (``num_steps`` Lanczos steps, one probe, on
    ``es.aslinearoperator(matrix)``) and the diagonal entries as a spectrum; each also divided by
    the support width. Cost: O(n³) for eigh, ``num_steps`` products for SLQ, O(Q log Q) per distance.
    """
    import eigenscope as es
    from eigenscope.metrics import density_wasserstein

    law = law_atoms(name, aspect=aspect)
    lo, hi = law_support(name, aspect=aspect)
    with serial_blas():
        eigs = np.linalg.eigvalsh(matrix)
    slq = es.spectral_density(es.aslinearoperator(matrix), num_steps, 1, seed=seed)
    diag = np.diag(matrix).copy()
    out: dict[str, Any] = {"support_width": hi - lo}
    for key, measure in (("exact", eigs), ("slq", slq), ("diagonal", diag)):
        w = float(density_wasserstein(measure, law))
        out[f"w1_{key}"] = w
        out[f"w1_{key}_rel"] = w / (hi - lo)
    out["eigenvalues"], out["diagonal"] = eigs, diag
    out["slq_nodes"], out["slq_weights"] = np.asarray(slq.nodes).ravel(), np.asarray(slq.weights).ravel()
    return out


def curvature_comparison(op: Any, *, num_steps: int, diag_matvecs: int, seed: int) -> dict[str, Any]:
    """Spectrum of a curvature matrix vs the spectrum implied by its diagonal.

    Exact: ``λ = eigvalsh(dense(op))`` and ``d = diag(dense(op))``. Estimated: SLQ
    (``num_steps`` Lanczos steps, one probe, as in seed 002) and ``es.diagonal`` (diag++ with
    ``diag_matvecs`` products). Distances to the exact spectrum: ``W₁`` and ``KL(exact ‖ ·)``
    (both smoothed with the exact spectrum's default kernel width) of the diagonal and of SLQ;
    ``max d / λ_max``. Cost: P products + O(P³) exact; ``num_steps + diag_matvecs`` products.
    """
    import eigenscope as es
    from eigenscope.metrics import as_density, density_kl, density_wasserstein

    from ._common import dense

    mat = dense(op)
    with serial_blas():
        eigs = np.linalg.eigvalsh(mat)
    diag = np.diag(mat).copy()
    slq = es.spectral_density(op, num_steps, 1, seed=seed)
    raw = es.diagonal(op, diag_matvecs, method="diag++", seed=seed).estimate
    est = np.asarray(raw.detach().cpu() if hasattr(raw, "detach") else raw, dtype=np.float64)
    sigma = float(as_density(eigs).default_sigma())
    out: dict[str, Any] = {"lam_max": float(eigs[-1]), "lam_min": float(eigs[0])}
    for key, measure in (("diagonal", diag), ("diagonal_est", est), ("slq", slq)):
        out[f"w1_{key}"] = float(density_wasserstein(measure, eigs))
        out[f"kl_{key}"] = float(density_kl(eigs, measure, sigma=sigma))
    out["diag_max_over_lam_max"] = float(diag.max() / eigs[-1])
    out["diag_est_max_over_lam_max"] = float(est.max() / eigs[-1])
    out["diag_est_rel_error"] = float(np.linalg.norm(est - diag) / np.linalg.norm(diag))
    out["slq_max_over_lam_max"] = float(np.max(slq.nodes) / eigs[-1])
    out["eigenvalues"], out["diagonal"], out["diagonal_est"] = eigs, diag, est
    out["slq_nodes"], out["slq_weights"] = np.asarray(slq.nodes).ravel(), np.asarray(slq.weights).ravel()
    return out
