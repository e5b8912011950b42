"""Measurements of the study ``gradient-geometry``: the gradient against the top of the Hessian.

At a checkpoint θ_t of training: the top-k Hessian eigenpairs by magnitude (``es.eigsh``,
``which="LM"``, k = number of classes), the fraction of the full-batch gradient in their span
(``gradient_fraction``), the error of the best rank-k approximation
``‖H − H_k‖_F² = ‖H‖_F² − Σᵢ λᵢ²`` with ``‖H‖_F² = tr(H²)`` estimated by ``es.trace`` on
``H·H`` (Hutch++), and the smallest eigenvalue (``es.eigsh``, ``which="SA"``). The normalized
inner product ``⟨g_t, θ_t − θ*⟩ / (‖g_t‖ ‖θ_t − θ*‖)`` needs θ*, the final weights, so the
gradients and weights are kept and it is computed after training. On request the Hessian is
also formed densely to check every estimate. Torch is imported inside the functions.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ._common import dense, flat_parameters


def rank_k_error(eigenvalues: Any, frobenius_sq: float) -> float:
    """Relative error of the best rank-k approximation, ``√(max(‖H‖_F² − Σᵢ λᵢ², 0) / ‖H‖_F²)``.

    ``eigenvalues`` are the k eigenvalues of largest magnitude (the rank-k truncation of a
    symmetric matrix keeps those: Eckart–Young); ``frobenius_sq = ‖H‖_F² = tr(H²) = Σ λ²``.
    Clipped at 0 when an estimated ``tr(H²)`` falls below Σᵢ λᵢ². Cost O(k).
    """
    captured = float(np.sum(np.asarray(eigenvalues, dtype=np.float64) ** 2))
    return float(np.sqrt(max(frobenius_sq - captured, 0.0) / frobenius_sq))


def exact_summary(h: np.ndarray, g: np.ndarray, k: int) -> dict[str, float]:
    """From a dense symmetric H and the gradient g: ‖H‖_F², the exact rank-k error, λ_min, λ_max and
    the fraction of g in the span of the k eigenvectors of largest |λ|. Cost: one n³ ``eigh``."""
    w, v = np.linalg.eigh(h)
    order = np.argsort(-np.abs(w))[:k]
    coef = v[:, order].T @ g
    fro2 = float(np.sum(w**2))
    return {
        "frobenius_sq": fro2,
        "rank_k_error": rank_k_error(w[order], fro2),
        "lambda_min": float(w[0]),
        "lambda_max": float(w[-1]),
        "gradient_fraction": float(np.sum(coef**2) / np.sum(g**2)),
    }


def measure_checkpoint(
    model: Any, x: Any, y: Any, k: int, *, seed: int, trace_matvecs: int, exact: bool = False
) -> dict[str, Any]:
    """The gradient geometry of ``model`` on ``(x, y)`` at its current weights.

    H = ``est.hessian`` of the mean cross-entropy over the data; g = ``H.gradient()``.
    Returns the loss, the top-k eigenvalues by magnitude, the gradient fraction in their
    span and its cumulative profile over j = 1..k, ``tr(H²)`` (estimate and standard
    error), the rank-k error, λ_min and λ_max, and (kept for the inner product) θ_t and g
    as tensors. ``exact=True`` adds :func:`exact_summary` of the dense Hessian. Cost: about
    10 + 4k products for the top-k, a few dozen for λ_min, ``2 · trace_matvecs`` for tr(H²);
    n more and an n³ eigensolve with ``exact``.
    """
    import torch

    import eigenscope as es
    from eigenscope.adapters import torch as est

    from ...metrics import gradient_fraction, gradient_fraction_profile

    loss_fn = torch.nn.functional.cross_entropy
    h = est.hessian(model, loss_fn, [(x, y)])
    g = h.gradient()
    top = es.eigsh(h, k, which="LM", seed=seed)
    bottom = es.eigsh(h, 1, which="SA", seed=seed + 1)
    tr = es.trace(es.compose(h, h), trace_matvecs, seed=seed + 2)
    with torch.no_grad():
        loss = float(loss_fn(model(x), y))
    out: dict[str, Any] = {
        "loss": loss,
        "top_eigenvalues": [float(v) for v in top.eigenvalues],
        "gradient_fraction": gradient_fraction(g, top.eigenvectors),
        "fraction_profile": [float(v) for v in gradient_fraction_profile(g, top.eigenvectors)],
        "frobenius_sq": float(tr.estimate),
        "frobenius_sq_stderr": float(tr.std_error),
        "rank_k_error": rank_k_error(top.eigenvalues, float(tr.estimate)),
        "lambda_min": float(bottom.eigenvalues[0]),
        "lambda_max": float(np.max(top.eigenvalues)),
        "theta": flat_parameters(model).clone(),
        "gradient": g.detach().clone(),
    }
    if exact:
        out["exact"] = exact_summary(dense(h), g.detach().cpu().double().numpy(), k)
    return out


def inner_products(records: list[dict[str, Any]], theta_star: Any) -> list[float]:
    """``normalized_inner_product(g_t, θ_t, θ*)`` for each checkpoint (NaN where θ_t = θ*). Cost O(n) each."""
    from ...metrics import normalized_inner_product

    return [normalized_inner_product(r["gradient"], r["theta"], theta_star) for r in records]
