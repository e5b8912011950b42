"""Measurements of the true-vs-empirical study: augmented digits, exact and SLQ Hessian spectra.

The "data-generating distribution" is scikit-learn's 8×8 digits under augmentation: a
digit drawn uniformly from the 1797 images, shifted by up to one pixel in each direction
(zero padding) and perturbed by Gaussian pixel noise. The true Hessian is approximated by
the Hessian over many such draws, the empirical Hessian is the Hessian over ``N`` of them.
Torch is imported inside the functions.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from . import _common


def augmented_digits(num_samples: int, *, seed: int, noise: float = 0.1, shift: int = 1) -> tuple[Any, Any]:
    """``num_samples`` i.i.d. draws of augmented digits: flattened ``x (N, 64)`` float64 and labels ``y``.

    Each draw: an image ``I`` uniform over the 1797 digits, a shift ``(dy, dx)`` uniform in
    ``{−shift, …, shift}²`` (zero padding), then ``x = shift(I) + noise · ε`` with ``ε ~ N(0, I₆₄)``.
    Deterministic for a seed. Cost: O(64 N).
    """
    import torch

    pool_x, pool_y = _common.digits(None, seed=0, flatten=False)
    gen = torch.Generator().manual_seed(int(seed))
    idx = torch.randint(0, len(pool_y), (num_samples,), generator=gen)
    padded = torch.nn.functional.pad(pool_x[idx, 0], (shift, shift, shift, shift))
    dy = torch.randint(0, 2 * shift + 1, (num_samples,), generator=gen)
    dx = torch.randint(0, 2 * shift + 1, (num_samples,), generator=gen)
    rows = (dy[:, None] + torch.arange(8))[:, :, None]
    cols = (dx[:, None] + torch.arange(8))[:, None, :]
    images = padded[torch.arange(num_samples)[:, None, None], rows, cols]
    images = images + noise * torch.randn(images.shape, generator=gen, dtype=images.dtype)
    return images.reshape(num_samples, 64), pool_y[idx]


def hessian_operator(model: Any, x: Any, y: Any, *, batch_size: int = 2048) -> Any:
    """The Hessian of the mean cross-entropy of ``model`` over ``(x, y)``: an eigenscope operator.

    ``H = (1/N) Σᵢ ∇²_θ ℓ(f(xᵢ; θ), yᵢ)``; a product costs about two passes over the N samples.
    """
    import torch

    from eigenscope.adapters import torch as est

    return est.hessian(model, torch.nn.functional.cross_entropy, _common.batches(x, y, batch_size))


def spectrum(op: Any, *, num_steps: int, seed: int, exact: bool = True) -> dict[str, Any]:
    """The exact spectrum (``dense`` + ``eigvalsh``) and the SLQ measure of a symmetric operator.

    SLQ as in seed 003: ``num_steps`` Lanczos steps (full re-orthogonalization) from one
    Rademacher probe, no smoothing. Returns ``{"eigenvalues": sorted array or None, "slq":
    SpectralDensity}``. Cost: P products and O(P³) for the exact part, ``num_steps`` products
    plus O(P·num_steps²) for SLQ.
    """
    import eigenscope as es

    eigs = None
    if exact:
        mat = _common.dense(op)
        with _common.serial_blas():
            eigs = np.linalg.eigvalsh(mat)
    return {"eigenvalues": eigs, "slq": es.spectral_density(op, num_steps, 1, seed=seed)}


def summarize(measured: dict[str, Any], *, num_outliers: int = 10) -> dict[str, float]:
    """Scalar summaries of a :func:`spectrum` result.

    Exact (when present): ``lam_min``, ``lam_max``, ``rms_width`` = std of the eigenvalues
    ``√((1/P) Σ (λᵢ − λ̄)²)``, ``bulk_width`` = the same std without the ``num_outliers``
    largest eigenvalues (the outliers, about one per class, which seed 003's theorem treats
    apart from the bulk; NaN when P ≤ num_outliers), ``neg_mass`` = fraction of eigenvalues below ``−10⁻³ max|λ|``.
    SLQ: ``ritz_min``, ``ritz_max`` (extremal Ritz values), ``ritz_neg_mass`` = the Ritz
    weight of the negative nodes separated from the node nearest zero (seed 003's count,
    :func:`eigenscope.metrics.negative_mass`). Cost: O(P + m).
    """
    from eigenscope.metrics import negative_mass

    slq = measured["slq"]
    out = {
        "ritz_min": float(np.min(slq.nodes)),
        "ritz_max": float(np.max(slq.nodes)),
        "ritz_neg_mass": float(negative_mass(slq)),
    }
    eigs = measured["eigenvalues"]
    if eigs is not None:
        out.update(
            lam_min=float(eigs[0]),
            lam_max=float(eigs[-1]),
            rms_width=float(np.std(eigs)),
            bulk_width=float(np.std(eigs[: len(eigs) - num_outliers])) if len(eigs) > num_outliers else math.nan,
            neg_mass=float(negative_mass(eigs)),
        )
    return out


def rank_correlation(a: Any, b: Any) -> float:
    """Spearman's rank correlation of two sequences: Pearson correlation of their ranks (ties averaged).

    NaN when either sequence is constant or shorter than 2. Cost: O(n log n).
    """
    from scipy.stats import rankdata

    ra, rb = rankdata(np.asarray(a, dtype=float)), rankdata(np.asarray(b, dtype=float))
    if len(ra) < 2 or np.std(ra) == 0 or np.std(rb) == 0:
        return float("nan")
    return float(np.corrcoef(ra, rb)[0, 1])


def steps_to_epochs(num_samples: int, batch_size: int, steps: int) -> int:
    """Epochs giving at least ``steps`` SGD updates on ``num_samples`` samples: ``⌈steps / ⌈N/B⌉⌉``. O(1)."""
    per_epoch = -(-num_samples // batch_size)
    return max(1, -(-steps // per_epoch))
