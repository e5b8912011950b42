"""Measurements of the study ``hessian-vs-second-moment``: H, M and H_p = M − H at one checkpoint.

``H`` is the Hessian of the mean training loss, ``M = Σ_b (n_b/N) g_b g_bᵀ`` the second
moment of the minibatch gradients ``g_b`` over the batches of the training batch size
(seed 004: ``H = M − H_p``), and ``H_p = M − H`` the residual. The models are small enough
to form all three exactly (``dense`` + ``numpy.linalg.eigh``, M from the SVD of the batch
gradients); eigenscope's SLQ runs on the same operators beside them. Torch is imported
inside the functions.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ._common import batches, dense

NUM_ANGLES = 15  # the seed's Figure 2: top 15 principal angles
NUM_ALIGNED = 10  # the seed's claim: the top 10 principal subspaces are well aligned
NUM_TOP, NUM_BOTTOM = 15, 5  # eigenvalues kept per checkpoint for the spectra figure


@dataclass(frozen=True)
class SLQSettings:
    """SLQ run beside the exact spectra: Lanczos steps, probes, and the probes' seed."""

    num_steps: int
    num_probes: int
    seed: int


def batch_gradients(model: Any, loss_fn: Any, data: Sequence[tuple[Any, Any]]) -> tuple[np.ndarray, np.ndarray]:
    """The minibatch gradients ``G`` (one row ``g_b = ∇L_b(θ)`` per batch) and weights ``n_b/N``.

    Plain autograd, one forward and one backward pass per batch; the model's ``.grad`` is
    left untouched (``torch.autograd.grad``). Returns ``G`` (B, n) float64 and ``w`` (B,).
    """
    import torch

    params = [p for p in model.parameters() if p.requires_grad]
    rows, sizes = [], []
    for xb, yb in data:
        grads = torch.autograd.grad(loss_fn(model(xb), yb), params)
        rows.append(torch.cat([g.reshape(-1) for g in grads]).detach().cpu().double().numpy())
        sizes.append(len(yb))
    w = np.asarray(sizes, dtype=np.float64)
    return np.stack(rows), w / w.sum()


def second_moment_from_gradients(g: np.ndarray, w: np.ndarray) -> np.ndarray:
    """``M = Σ_b w_b g_b g_bᵀ = Gᵀ diag(w) G`` from the rows of ``G``; cost O(B n²)."""
    return (g * w[:, None]).T @ g


def second_moment_eigh(g: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """All eigenvalues (ascending) of ``M = Gᵀ diag(w) G`` and its top eigenvectors, from an SVD of B rows.

    ``diag(√w) G = U S Vᵀ`` gives ``M = V S² Vᵀ``: the B eigenvalues ``s²`` and their
    eigenvectors (the rows of Vᵀ), the other n − B eigenvalues are 0. Returns the n
    eigenvalues ascending and the eigenvectors (n, B) with the largest eigenvalue
    *first*. Cost O(B² n), instead of O(n³) for ``eigh`` of the n × n matrix.
    """
    _, sv, vt = np.linalg.svd(g * np.sqrt(w)[:, None], full_matrices=False)
    values = np.concatenate([np.zeros(g.shape[1] - len(sv)), np.sort(sv**2)])
    return values, vt.T


def random_subspace_baseline(n: int, seed: int, *, draws: int = 30) -> list[float]:
    """The alignment statistic (:func:`aligned_cosine`) for ``draws`` pairs of random 15-dim subspaces of ℝⁿ.

    Independent Gaussian n × 15 bases: what "aligned" must beat. Cost: ``draws`` QR
    factorizations of n × 15 matrices.
    """
    rng = np.random.default_rng(seed)
    return [
        aligned_cosine(rng.standard_normal((n, NUM_ANGLES)), rng.standard_normal((n, NUM_ANGLES))) for _ in range(draws)
    ]


def aligned_cosine(a: np.ndarray, b: np.ndarray) -> float:
    """Mean cosine of the ``NUM_ALIGNED`` smallest of the principal angles between span a and span b.

    With 15-column bases: the mean of the 10 largest of the 15 cosines (the seed's Figure 2
    reads "the top 10 [of 15] principal subspaces are well aligned"). 1 when 10 directions
    are shared. Uses :func:`eigenscope.metrics.principal_angles`.
    """
    from ...metrics import principal_angles

    return float(np.mean(principal_angles(a, b).cosines[:NUM_ALIGNED]))


def _top(vectors: np.ndarray, k: int) -> np.ndarray:
    """The eigenvectors of the k largest eigenvalues from ``eigh`` (which sorts ascending)."""
    return vectors[:, ::-1][:, :k]


def _ends(w: np.ndarray, *, negative: bool = False) -> list[float]:
    """The ``NUM_TOP`` largest eigenvalues (descending), then the ``NUM_BOTTOM`` smallest (ascending).

    ``negative=True`` swaps the ends (for H_p, whose large eigenvalues are negative): the
    ``NUM_TOP`` smallest (ascending), then the ``NUM_BOTTOM`` largest (descending).
    """
    asc = [float(v) for v in w]
    if negative:
        return asc[:NUM_TOP] + asc[::-1][:NUM_BOTTOM]
    return asc[::-1][:NUM_TOP] + asc[:NUM_BOTTOM]


def measure_checkpoint(
    model: Any, x: Any, y: Any, batch_size: int, *, slq: SLQSettings | None = None
) -> dict[str, Any]:
    """H, M and H_p = M − H of ``model`` on ``(x, y)``, exactly, and optionally by SLQ.

    H is ``est.hessian`` over the full data, M ``est.gradient_covariance(per="batch")``
    over the consecutive batches of ``batch_size``; both are formed densely (n products
    each). H and H_p are diagonalized by ``eigh``; M's eigenpairs come exactly from the SVD
    of the B minibatch gradients (:func:`second_moment_eigh`), after checking that the
    library's M equals ``Gᵀ diag(w) G``. Returns the loss, the extreme eigenvalues, the cosines of the
    15 principal angles between the top-15 eigenspaces of H and M (and of the 10 between
    the top-10), Frobenius ratios ‖H_p‖/‖H‖, ‖H_p + H‖/‖H‖ = ‖M‖/‖H‖, the cosine between
    H_p and −H, and the check of M against ``Gᵀ diag(w) G`` from plain autograd. With
    ``slq``: the SLQ densities of H, M and H_p (``es.spectral_density``) and their
    1-Wasserstein distance to the exact spectra. Cost: 2n products + 3 n³ eigensolves, plus
    ``3 · num_steps · num_probes`` products for SLQ.
    """
    import torch

    import eigenscope as es
    from eigenscope.adapters import torch as est

    from ...metrics import density_wasserstein, principal_angles

    loss_fn = torch.nn.functional.cross_entropy
    data = batches(x, y, batch_size)
    if len(data) < NUM_ANGLES:
        raise ValueError(
            f"M has rank ≤ {len(data)} (the number of batches): its top-{NUM_ANGLES} subspace is undefined"
        )
    h_op = est.hessian(model, loss_fn, [(x, y)])
    m_op = est.gradient_covariance(model, loss_fn, data, per="batch")
    h, m = dense(h_op), dense(m_op)
    p = m - h
    wh, vh = np.linalg.eigh(h)
    wp = np.linalg.eigvalsh(p)
    g, w = batch_gradients(model, loss_fn, data)
    m_ref = second_moment_from_gradients(g, w)
    wm, vm_top = second_moment_eigh(g, w)
    with torch.no_grad():
        loss = float(loss_fn(model(x), y))
    norm_h, norm_p = np.linalg.norm(h), np.linalg.norm(p)
    out: dict[str, Any] = {
        "loss": loss,
        "H_ends": _ends(wh),
        "M_ends": _ends(wm),
        "Hp_ends": _ends(wp, negative=True),
        "cosines": [float(c) for c in principal_angles(_top(vh, NUM_ANGLES), vm_top[:, :NUM_ANGLES]).cosines],
        "aligned_cos": aligned_cosine(_top(vh, NUM_ANGLES), vm_top[:, :NUM_ANGLES]),
        "top10_cos": float(np.mean(principal_angles(_top(vh, NUM_ALIGNED), vm_top[:, :NUM_ALIGNED]).cosines)),
        "hp_over_h": float(norm_p / norm_h),
        "hp_plus_h_over_h": float(np.linalg.norm(m) / norm_h),
        "cos_hp_minus_h": float(-np.sum(p * h) / (norm_p * norm_h)),
        "m_check": float(np.max(np.abs(m - m_ref)) / max(np.max(np.abs(m_ref)), 1e-300)),
    }
    if slq is not None:
        # the per-sample second moment (empirical Fisher) F = (1/N) Σᵢ gᵢgᵢᵀ: batches of one sample
        f = second_moment_from_gradients(*batch_gradients(model, loss_fn, batches(x, y, 1)))
        out["fisher_over_h"] = float(np.linalg.norm(f) / norm_h)
        ops = {"H": h_op, "M": m_op, "Hp": m_op - h_op}
        exact = {"H": wh, "M": wm, "Hp": wp}
        out["slq"] = {}
        for name, op in ops.items():
            d = es.spectral_density(op, slq.num_steps, slq.num_probes, seed=slq.seed)
            w1 = density_wasserstein(d, exact[name])
            width = float(exact[name][-1] - exact[name][0])
            out["slq"][name] = {"density": d, "exact": exact[name], "w1": w1, "w1_rel": w1 / width}
    return out
