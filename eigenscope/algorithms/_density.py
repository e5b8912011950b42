"""Spectral density by stochastic Lanczos quadrature (SLQ): the public ``spectral_density``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .. import backends
from ..backends import Array, Seed
from ..linop import deflate
from . import _checks
from ._eigsh import eigsh
from ._orth import project_out
from ._pairs import WHICH_CHOICES
from ._plan import announces, density_count
from ._recurrence import REORTH_CHOICES, run_recurrence, tridiagonal_eigh

KERNELS = ("gaussian", "lorentzian")


@dataclass(frozen=True)
class SpectralDensity:
    """A spectral density estimate: one discrete (stem) measure per probe vector.

    For probe ``z`` (normalized) and m Lanczos steps, Gauss quadrature gives
    ``zᵀ f(A) z ≈ Σᵢ wᵢ f(θᵢ)``; averaging over probes estimates
    ``(1/n) tr f(A) = ∫ f dμ`` with μ the eigenvalue distribution of A
    (each eigenvalue has mass 1/n). ``nodes``/``weights`` hold that measure;
    every row sums to 1. Outliers deflated exactly appear as atoms of mass 1/n.

    Attributes
    ----------
    nodes : numpy.ndarray, shape (num_probes, m)
        Ritz values per probe (padded with zero-weight copies after breakdown).
    weights : numpy.ndarray, shape (num_probes, m)
        Quadrature weights per probe; each row sums to 1.
    num_matvecs : int
        Operator products spent (deflation included).
    dimension : int
        n, the operator's size, to turn masses into eigenvalue counts.
    num_steps : numpy.ndarray of int, shape (num_probes,)
        Effective Lanczos steps per probe (fewer after breakdown).
    outliers : numpy.ndarray, shape (k,)
        Eigenvalues deflated exactly before SLQ (empty without deflation).
    """

    nodes: np.ndarray
    weights: np.ndarray
    num_matvecs: int
    dimension: int
    num_steps: np.ndarray
    outliers: np.ndarray = field(default_factory=lambda: np.zeros(0))

    @property
    def num_probes(self) -> int:
        """Number of probe vectors."""
        return int(self.nodes.shape[0])

    @property
    def support(self) -> tuple[float, float]:
        """``(min θ, max θ)`` over all probes: the extremal Ritz values, inside [λ_min, λ_max]."""
        mask = self.weights > 0
        return float(self.nodes[mask].min()), float(self.nodes[mask].max())

    @property
    def extremal_ritz_values(self) -> np.ndarray:
        """``(num_probes, 2)``: the smallest and largest Ritz value of each probe."""
        masked = np.where(self.weights > 0, self.nodes, np.nan)
        return np.stack([np.nanmin(masked, axis=1), np.nanmax(masked, axis=1)], axis=1)

    def stem(self) -> tuple[np.ndarray, np.ndarray]:
        """The probe-averaged discrete measure: ``(nodes, weights)`` flattened, weights summing to 1."""
        mask = self.weights > 0
        return self.nodes[mask], self.weights[mask] / self.num_probes

    def default_sigma(self) -> float:
        """Kernel width used when none is given: ``(θ_max − θ_min) / 200`` (``1e-3`` for a single point)."""
        lo, hi = self.support
        width = (hi - lo) / 200.0
        return width if width > 0 else 1e-3 * max(1.0, abs(hi))

    def grid(self, num_points: int = 1000, *, sigma: float | None = None) -> np.ndarray:
        """An evenly spaced grid over ``[θ_min − 5σ, θ_max + 5σ]``, where the smoothed density lives."""
        sigma = self.default_sigma() if sigma is None else sigma
        lo, hi = self.support
        return np.linspace(lo - 5 * sigma, hi + 5 * sigma, num_points)

    def density(self, grid: Any, *, kernel: str = "gaussian", sigma: float | None = None) -> np.ndarray:
        """The kernel-smoothed density ``ρ(x) = mean_probes Σᵢ wᵢ K_σ(x − θᵢ)`` on ``grid``.

        ``K`` is a normalized Gaussian (``exp(−t²/2σ²)/(σ√(2π))``) or Lorentzian
        (``σ/(π(t² + σ²))``), so ρ integrates to 1 over the real line (on
        :meth:`grid`, to within the kernel tails). Smoothing biases moments
        (seed 003): use :meth:`moments` for those, not the smoothed curve.
        """
        if kernel not in KERNELS:
            raise ValueError(f"kernel must be one of {KERNELS}, got {kernel!r}")
        sigma = self.default_sigma() if sigma is None else float(sigma)
        if sigma <= 0:
            raise ValueError(f"sigma must be positive, got {sigma}")
        x = np.asarray(grid, dtype=np.float64)
        nodes, weights = self.stem()
        t = x[..., None] - nodes
        if kernel == "gaussian":
            k = np.exp(-0.5 * (t / sigma) ** 2) / (sigma * np.sqrt(2 * np.pi))
        else:
            k = sigma / (np.pi * (t**2 + sigma**2))
        return k @ weights

    def quadrature(self, f: Any) -> float:
        """``∫ f dμ ≈ (1/n) tr f(A)`` for a vectorized ``f``, averaged over probes."""
        nodes, weights = self.stem()
        return float(np.sum(weights * f(nodes)))

    def moments(self, j: int) -> float:
        """``(1/n) tr(Aʲ)`` estimated by quadrature (exact per probe for j ≤ 2m − 1)."""
        return self.quadrature(lambda t: t**j)

    def trace(self) -> float:
        """``tr(A) ≈ n · ∫ λ dμ``."""
        return self.dimension * self.moments(1)

    def negative_mass(self, *, rtol: float = 1e-3) -> float:
        """Fraction of the spectrum that is negative, counted the way of Granziol et al. (seed 003).

        Per probe, the mass of negative Ritz values that are well separated from
        the near-zero node(s): nodes ``θ < −rtol · max|θ|`` and not the
        smallest-magnitude node, so that a degenerate mass at zero split over
        two nodes is not counted as negative. Averaged over probes.
        """
        masses = []
        for nodes, weights in zip(self.nodes, self.weights, strict=True):
            live = weights > 0
            nodes, weights = nodes[live], weights[live]
            closest = int(np.argmin(np.abs(nodes)))
            neg = nodes < -rtol * float(np.max(np.abs(nodes)))
            neg[closest] = False
            masses.append(float(weights[neg].sum()))
        return float(np.mean(masses))

    def to_dict(self) -> dict[str, Any]:
        """Plain-Python fields for JSON output."""
        return {
            "nodes": self.nodes.tolist(),
            "weights": self.weights.tolist(),
            "num_matvecs": self.num_matvecs,
            "dimension": self.dimension,
            "num_steps": self.num_steps.tolist(),
            "outliers": self.outliers.tolist(),
        }


@announces(density_count)
def spectral_density(
    A: Any,
    /,
    num_steps: int = 100,
    num_probes: int = 1,
    *,
    seed: Seed = None,
    probes: Array | None = None,
    distribution: str = "rademacher",
    reorth: str = "full",
    deflate_outliers: int = 0,
    outlier_which: str = "LA",
) -> SpectralDensity:
    """Estimate the eigenvalue density of a symmetric operator by stochastic Lanczos quadrature.

    For each probe ``z`` (Rademacher by default), m Lanczos steps give the
    Gauss rule ``zᵀ f(A) z / ‖z‖² ≈ Σᵢ wᵢ f(θᵢ)`` (Golub & Meurant; Ubaru,
    Chen & Saad 2017). All probes run as one batch: one ``A.matmat`` of
    ``num_probes`` vectors per step, re-orthogonalization batched across probes.

    Optional outlier deflation: compute the ``deflate_outliers`` extremal
    eigenpairs first (``eigsh``, ``which=outlier_which``), run SLQ on
    ``(I − VVᵀ) A (I − VVᵀ)`` with probes projected off V, and put the outliers
    back as exact atoms of mass ``1/n`` (the SLQ part then carries ``(n − k)/n``).

    Guarantee: per probe, the Gauss rule is exact for polynomials of degree
    ``≤ 2m − 1`` (to rounding), also after breakdown — a probe whose Krylov space
    is invariant after d < m steps (a low-rank or few-distinct-eigenvalue matrix)
    gives the exact discrete measure of that probe with d nodes. Products are
    normalized by a power of two, so ``c·A`` gives nodes ``c ×`` those of A at any
    scale whose products stay finite in the dtype; a product with NaN or Inf raises
    ``FloatingPointError`` naming the step. A dense or sparse matrix that is not
    symmetric is refused when wrapped; a matrix-free operator is trusted as declared
    (``eigenscope.eigsh(A, 1, check_symmetric=True)`` tests it with 2 products).
    The outliers deflated are verified by
    :func:`eigsh` (the k most extreme, multiplicities included).

    Parameters
    ----------
    A
        Symmetric n×n operator, or anything :func:`eigenscope.aslinearoperator` accepts.
    num_steps
        Lanczos steps per probe, m (seed 003 uses 100); clamped to n with a warning.
    num_probes
        Number of probe vectors (an integer ≥ 1); more probes reduce the variance of the density.
    seed, probes
        Seed for the probes, or the probes themselves, shape (n, num_probes).
        When deflating, the outliers' start vectors come from an independent
        stream spawned off the seed after the probes are drawn.
    distribution
        ``"rademacher"`` or ``"normal"``.
    reorth
        ``"full"`` (the default: basis stored on the device, ``num_probes · m · n`` numbers,
        Gram–Schmidt at every step), ``"partial"`` (the same basis, Gram–Schmidt only at the
        steps where Simon's estimate of the lost orthogonality reaches ``√ε``; see
        :func:`~eigenscope.algorithms._recurrence.run_recurrence` for what it keeps and when it pays),
        ``"host"`` (as ``"full"``, the basis in host memory; the device keeps ``O(num_probes · n)``,
        at the price of moving 3 vectors per probe and step: the new vector and its
        product to the host, the product back) or ``"local"``
        (no basis: ``O(num_probes · n)`` memory, but orthogonality is lost over
        many steps, which duplicates converged Ritz values — harmless for
        smooth moments, misleading for counting eigenvalues).
    deflate_outliers, outlier_which
        Number of outliers to deflate exactly (an integer in ``[0, n − 1]``), and which
        end (``"LA"``, ``"LM"``, ...).

    Returns
    -------
    SpectralDensity
        Cost: ``num_steps · num_probes`` matvecs (fewer after breakdown), plus
        the products of ``eigsh`` when deflating.
    """
    who = "spectral_density"
    op = _checks.symmetric_operator(A, who)
    n = op.shape[0]
    num_probes = _checks.count(num_probes, "num_probes", who)
    distribution = _checks.choice(distribution, "distribution", ("rademacher", "normal", "gaussian"), who)
    reorth = _checks.choice(reorth, "reorth", REORTH_CHOICES, who)
    k = _checks.count(deflate_outliers, "deflate_outliers", who, minimum=0, maximum=n - 1)
    if k > 0:
        outlier_which = _checks.choice(outlier_which, "outlier_which", WHICH_CHOICES, who)
    rng = backends.random_source(seed, xp=op.xp, device=op.device) if probes is None or k > 0 else None
    if probes is None:
        probes = rng.probes((n, num_probes), op.dtype, distribution)
    else:
        _checks.probe_block(op, probes, who)
        _checks.finite_probes(op, probes, who)
    m = _checks.clamp_steps(num_steps, n - k, who)
    extra = 0
    outliers = np.zeros(0)
    if k > 0:
        # A stream of its own for the outliers' start vectors, spawned after the probes are
        # drawn: the probes are those of the same seed without deflation, and independent of it.
        top = eigsh(op, k, which=outlier_which, seed=rng.spawn())
        extra = top.num_matvecs
        outliers = np.sort(top.eigenvalues)
        v = top.eigenvectors
        op = deflate(op, v)
        probes, _ = project_out(probes, v)
    rec = run_recurrence(op, probes, m, reorth=reorth, who=who)
    p = probes.shape[1]
    width = rec.alpha.shape[1]
    nodes = np.zeros((p, width + k))
    weights = np.zeros((p, width + k))
    for i in range(p):
        length = int(rec.lengths[i])
        theta, s = tridiagonal_eigh(rec.alpha[i, :length], rec.beta[i, : length - 1])
        nodes[i, :length] = theta
        nodes[i, length:width] = theta[-1]  # zero-weight padding
        weights[i, :length] = s[0, :] ** 2 * (n - k) / n
        nodes[i, width:] = outliers
        weights[i, width:] = 1.0 / n
    return SpectralDensity(
        nodes=nodes,
        weights=weights,
        num_matvecs=rec.num_matvecs + extra,
        dimension=n,
        num_steps=rec.lengths.copy(),
        outliers=outliers,
    )
