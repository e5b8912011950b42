"""Distances between two spectral densities: KL of the smoothed curves, Wasserstein of the stems."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import scipy.stats

from ._density import DensityLike, as_density


class DensityGrid(NamedTuple):
    """Two smoothed densities on one grid (the inputs of :func:`density_kl`).

    Attributes
    ----------
    grid : numpy.ndarray, shape (m,)
        Evenly spaced points covering both supports.
    p, q : numpy.ndarray, shape (m,)
        The smoothed densities on ``grid``, floored and renormalized as in :func:`density_kl`.
    sigma : float
        The kernel width used for both.
    """

    grid: np.ndarray
    p: np.ndarray
    q: np.ndarray
    sigma: float


def common_grid(
    p: DensityLike,
    q: DensityLike,
    *,
    num_points: int = 2000,
    sigma: float | None = None,
    kernel: str = "gaussian",
    eps: float = 1e-10,
) -> DensityGrid:
    """Smooth two densities with one kernel width on one grid covering both.

    ``σ`` defaults to the larger of the two :meth:`~eigenscope.SpectralDensity.default_sigma`
    values; the grid spans ``[min θ − 5σ, max θ + 5σ]`` over both measures. Each curve is
    floored at ``eps · max(p, q)`` (so that a logarithm is defined where one density has
    no mass) and renormalized to integrate to 1 on the grid (trapezoid-free Riemann sum:
    the grid is uniform and the curves vanish at its ends).

    Parameters
    ----------
    p, q
        Two :data:`~eigenscope.metrics.DensityLike` (an :class:`~eigenscope.SpectralDensity`,
        eigenvalues, or ``(nodes, weights)``).
    num_points
        Grid size (at least 2).
    sigma
        Kernel width; default the larger default width of the two.
    kernel
        ``"gaussian"`` or ``"lorentzian"``.
    eps
        Relative floor of the curves.

    Returns
    -------
    DensityGrid
    """
    dp, dq = as_density(p), as_density(q)
    if sigma is None:
        sigma = max(dp.default_sigma(), dq.default_sigma())
    if not sigma > 0:
        raise ValueError(f"sigma must be positive, got {sigma}")
    if num_points < 2:
        raise ValueError(f"num_points must be at least 2, got {num_points}")
    lo = min(dp.support[0], dq.support[0]) - 5 * sigma
    hi = max(dp.support[1], dq.support[1]) + 5 * sigma
    grid = np.linspace(lo, hi, num_points)
    dx = grid[1] - grid[0]
    rp = dp.density(grid, kernel=kernel, sigma=sigma)
    rq = dq.density(grid, kernel=kernel, sigma=sigma)
    floor = eps * max(float(rp.max()), float(rq.max()))
    rp = np.maximum(rp, floor)
    rq = np.maximum(rq, floor)
    return DensityGrid(grid, rp / (rp.sum() * dx), rq / (rq.sum() * dx), float(sigma))


def density_kl(
    p: DensityLike,
    q: DensityLike,
    *,
    num_points: int = 2000,
    sigma: float | None = None,
    kernel: str = "gaussian",
    eps: float = 1e-10,
) -> float:
    """Kullback–Leibler divergence ``KL(p ‖ q) = ∫ p(x) log(p(x)/q(x)) dx`` of two smoothed densities.

    A discrete (SLQ) measure has no density, so both are smoothed with the same kernel
    width ``σ`` on a common grid first (:func:`common_grid`). Where a density is (nearly)
    zero it is floored at ``eps`` times the larger peak, so the divergence is finite; with
    the default ``eps = 1e-10`` a region holding mass under p but none under q contributes
    at most ``log(1e10) ≈ 23`` nats times that mass. KL is not symmetric and depends on
    ``σ``: compare values computed with the same ``σ`` and grid size.

    Parameters
    ----------
    p, q
        Two :data:`~eigenscope.metrics.DensityLike` (an :class:`~eigenscope.SpectralDensity`,
        eigenvalues, or ``(nodes, weights)``).
    num_points
        Grid size.
    sigma
        Kernel width; default the larger default width of the two.
    kernel
        ``"gaussian"`` or ``"lorentzian"``.
    eps
        Relative floor of the densities (see above).

    Returns
    -------
    float
        ``KL(p ‖ q) ≥ 0`` in nats; exactly 0 for identical inputs.
    """
    g = common_grid(p, q, num_points=num_points, sigma=sigma, kernel=kernel, eps=eps)
    dx = g.grid[1] - g.grid[0]
    return float(max(np.sum(g.p * np.log(g.p / g.q)) * dx, 0.0))


def density_wasserstein(p: DensityLike, q: DensityLike) -> float:
    """1-Wasserstein (earth mover's) distance between two discrete spectral measures.

    ``W₁(μ, ν) = ∫ |F_μ(x) − F_ν(x)| dx`` with F the cumulative distributions of the stems
    (no smoothing needed, unlike :func:`density_kl`), computed by
    ``scipy.stats.wasserstein_distance`` with the quadrature weights. It is in the units
    of the eigenvalues: moving all mass by c costs c.

    Parameters
    ----------
    p, q
        Two :data:`~eigenscope.metrics.DensityLike` (an :class:`~eigenscope.SpectralDensity`,
        eigenvalues, or ``(nodes, weights)``).

    Returns
    -------
    float
    """
    up, wp = as_density(p).stem()
    uq, wq = as_density(q).stem()
    return float(scipy.stats.wasserstein_distance(up, uq, wp, wq))
