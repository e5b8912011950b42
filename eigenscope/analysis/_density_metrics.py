"""Scalar summaries of a spectral density, and distances between two densities.

Every function here reads a *discrete measure* ``μ = Σᵢ wᵢ δ(λ − θᵢ)`` (weights summing
to 1): the stem of a :class:`~eigenscope.SpectralDensity` from stochastic Lanczos
quadrature, or the exact eigenvalue distribution of a small matrix (each eigenvalue with
mass ``1/n``, see :func:`density_from_eigenvalues`). NumPy only; the inputs are small.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
import scipy.stats

from ..algorithms import SpectralDensity

DensityLike = Any
"""A :class:`~eigenscope.SpectralDensity`, a 1-D array of eigenvalues (mass ``1/n`` each)
or a pair ``(nodes, weights)`` of 1-D arrays."""


def density_from_eigenvalues(eigenvalues: Any, weights: Any = None) -> SpectralDensity:
    """The discrete measure of known eigenvalues as a :class:`~eigenscope.SpectralDensity`.

    Parameters
    ----------
    eigenvalues : array_like, shape (n,)
        The atoms ``θᵢ`` (for an exact spectrum: all n eigenvalues).
    weights : array_like, shape (n,), optional
        Their masses ``wᵢ`` (non-negative, normalized here to sum to 1); default ``1/n`` each,
        which is the eigenvalue distribution ``μ = (1/n) Σᵢ δ(λ − λᵢ)`` of a matrix.

    Returns
    -------
    SpectralDensity
        One "probe" holding the measure; ``dimension = n``, ``num_matvecs = 0``. Every metric
        of :mod:`eigenscope.analysis` and every method of ``SpectralDensity`` applies.
    """
    nodes = np.asarray(eigenvalues, dtype=np.float64).reshape(-1)
    if nodes.size == 0:
        raise ValueError("density_from_eigenvalues needs at least one eigenvalue")
    if not np.all(np.isfinite(nodes)):
        raise ValueError("eigenvalues must be finite")
    if weights is None:
        w = np.full(nodes.size, 1.0 / nodes.size)
    else:
        w = np.asarray(weights, dtype=np.float64).reshape(-1)
        if w.shape != nodes.shape:
            raise ValueError(f"weights have shape {w.shape}, eigenvalues {nodes.shape}")
        if np.any(w < 0) or not np.isfinite(w).all() or w.sum() <= 0:
            raise ValueError("weights must be finite, non-negative and not all zero")
        w = w / w.sum()
    return SpectralDensity(
        nodes=nodes[None, :],
        weights=w[None, :],
        num_matvecs=0,
        dimension=int(nodes.size),
        num_steps=np.array([nodes.size]),
    )


def as_density(obj: DensityLike) -> SpectralDensity:
    """Coerce a :data:`DensityLike` into a :class:`~eigenscope.SpectralDensity`."""
    if isinstance(obj, SpectralDensity):
        return obj
    if isinstance(obj, tuple) and len(obj) == 2:
        return density_from_eigenvalues(obj[0], obj[1])
    return density_from_eigenvalues(obj)


class SpectralEnergy(NamedTuple):
    """L1 and L2 energies of a spectral density, split by the sign of the eigenvalue.

    With ``μ = Σᵢ wᵢ δ(λ − θᵢ)`` the (normalized) eigenvalue distribution:

    - ``l1_positive = ∫_{λ>0} λ dμ = Σ_{θᵢ>0} wᵢ θᵢ``,
    - ``l1_negative = ∫_{λ<0} |λ| dμ = Σ_{θᵢ<0} wᵢ |θᵢ|``,
    - ``l2_positive = ∫_{λ>0} λ² dμ = Σ_{θᵢ>0} wᵢ θᵢ²``,
    - ``l2_negative = ∫_{λ<0} λ² dμ = Σ_{θᵢ<0} wᵢ θᵢ²``.

    For the exact spectrum of an n×n matrix (``wᵢ = 1/n``) these are ``1/n`` times the sums
    of ``|λᵢ|`` and ``λᵢ²`` over the positive and negative eigenvalues, so
    ``l1_positive − l1_negative = tr(H)/n`` and ``l2_positive + l2_negative = ‖H‖_F²/n``;
    multiply by ``dimension`` for the sums themselves.

    Attributes
    ----------
    l1_positive, l1_negative, l2_positive, l2_negative : float
        The four energies (all ≥ 0).
    l1_ratio, l2_ratio : float
        ``l1_negative / l1_positive`` and ``l2_negative / l2_positive``: how much of the
        curvature energy sits in negative directions (seed notes 000 compare these between
        CIFAR-10 and ImageNet); ``inf`` when the positive part is 0, ``nan`` when both are.
    dimension : int
        n, the size of the matrix the density describes.
    """

    l1_positive: float
    l1_negative: float
    l2_positive: float
    l2_negative: float
    l1_ratio: float
    l2_ratio: float
    dimension: int


def _ratio(num: float, den: float) -> float:
    if den > 0:
        return num / den
    return float("nan") if num == 0 else float("inf")


def spectral_energy(density: DensityLike) -> SpectralEnergy:
    """L1/L2 energies of the positive and negative parts of a spectral density.

    See :class:`SpectralEnergy` for the definitions. The sums run over the discrete measure
    itself (the SLQ stem, averaged over probes), not over a kernel-smoothed curve:
    smoothing biases every moment (seed 003). A node exactly at 0 counts on neither side.

    Parameters
    ----------
    density
        A :class:`~eigenscope.SpectralDensity`, a 1-D array of eigenvalues, or
        ``(nodes, weights)``.

    Returns
    -------
    SpectralEnergy

    Examples
    --------
    >>> e = spectral_energy([-2.0, 1.0, 3.0, 0.0])      # mass 1/4 each
    >>> e.l1_positive, e.l1_negative, e.l2_positive, e.l2_negative
    (1.0, 0.5, 2.5, 1.0)
    """
    d = as_density(density)
    nodes, weights = d.stem()
    pos, neg = nodes > 0, nodes < 0
    l1p = float(np.sum(weights[pos] * nodes[pos]))
    l1n = float(np.sum(weights[neg] * -nodes[neg]))
    l2p = float(np.sum(weights[pos] * nodes[pos] ** 2))
    l2n = float(np.sum(weights[neg] * nodes[neg] ** 2))
    return SpectralEnergy(l1p, l1n, l2p, l2n, _ratio(l1n, l1p), _ratio(l2n, l2p), d.dimension)


def negative_mass(density: DensityLike, *, rtol: float = 1e-3) -> float:
    """Fraction of the spectrum that is (clearly) negative.

    Delegates to :meth:`eigenscope.SpectralDensity.negative_mass`: per probe, the total
    weight of the nodes ``θ < −rtol · max|θ|``, leaving out the node nearest to zero so
    that a degenerate mass at 0 split over two Ritz values is not counted (Granziol et al.,
    seed 003); averaged over probes.

    Parameters
    ----------
    density
        A :class:`~eigenscope.SpectralDensity`, eigenvalues, or ``(nodes, weights)``.
    rtol
        Relative threshold below which a negative node counts as zero.

    Returns
    -------
    float
        A number in ``[0, 1]``; multiply by ``dimension`` for an eigenvalue count.
    """
    return as_density(density).negative_mass(rtol=rtol)


def outlier_ratio(eigenvalues: Any, k: int | None = None) -> float:
    """The outlier (eigenvalue) ratio ``λ₁ / λ_K`` (seed notes 000).

    A few large outliers, typically as many as the classes, separate from the bulk of a
    network's Hessian spectrum; ``λ₁/λ_K`` with ``K`` the number of classes measures how
    extreme they are (BatchNorm makes it smaller).

    Parameters
    ----------
    eigenvalues : array_like, shape (m,)
        The top eigenvalues, e.g. ``es.eigsh(H, K, which="LA").eigenvalues`` (any order).
    k
        ``K``, 1-based; default ``m`` (the smallest of the eigenvalues given). Pass the
        number of classes.

    Returns
    -------
    float
        ``λ₁/λ_K`` with ``λ₁ ≥ λ₂ ≥ …`` sorted here; ``nan`` when ``λ_K ≤ 0`` (the ratio
        then says nothing about outliers).
    """
    lam = np.sort(np.asarray(eigenvalues, dtype=np.float64).reshape(-1))[::-1]
    if lam.size == 0:
        raise ValueError("outlier_ratio needs at least one eigenvalue")
    k = lam.size if k is None else int(k)
    if not 1 <= k <= lam.size:
        raise ValueError(f"k must be between 1 and the number of eigenvalues ({lam.size}), got {k}")
    if lam[k - 1] <= 0:
        return float("nan")
    return float(lam[0] / lam[k - 1])


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
        Two :class:`~eigenscope.SpectralDensity` (or eigenvalues, or ``(nodes, weights)``).
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
        Two :class:`~eigenscope.SpectralDensity` (or eigenvalues, or ``(nodes, weights)``).

    Returns
    -------
    float
    """
    dp, dq = as_density(p), as_density(q)
    up, wp = dp.stem()
    uq, wq = dq.stem()
    return float(scipy.stats.wasserstein_distance(up, uq, wp, wq))
