"""Scalar summaries of one spectrum: L1/L2 energies by sign, negative mass, outlier ratio."""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from ._density import DensityLike, as_density


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
        A :class:`~eigenscope.metrics.DiscreteMeasure` (an :class:`~eigenscope.SpectralDensity`,
        say), a 1-D array of eigenvalues, or ``(nodes, weights)``.

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

    Per probe, the total weight of the nodes ``θ < −rtol · max|θ|``, leaving out the node
    nearest to zero so that a degenerate mass at 0 split over two Ritz values is not
    counted (Granziol et al., seed 003); averaged over probes. The same number as
    :meth:`eigenscope.SpectralDensity.negative_mass`.

    Parameters
    ----------
    density
        A :class:`~eigenscope.metrics.DiscreteMeasure`, eigenvalues, or ``(nodes, weights)``.
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
