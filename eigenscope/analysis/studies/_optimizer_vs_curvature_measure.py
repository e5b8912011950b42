"""Training with Adam and the exact diagonals the study ``optimizer-vs-curvature`` compares.

Adam keeps ``v_t = β₂ v_{t−1} + (1 − β₂) g_t²`` elementwise, ``g_t`` the minibatch gradient;
bias-corrected, ``v̂ = v_t / (1 − β₂ᵗ)``. The study compares ``v̂`` with the diagonals of

- the per-sample gradient second moment ``M = (1/N) Σᵢ gᵢgᵢᵀ`` (seed 000's "covariance of
  minibatch gradients", the per-sample form),
- the expected second moment of a minibatch gradient of size B drawn without replacement,
  ``E[g_B g_Bᵀ] = ḡḡᵀ + c (M − ḡḡᵀ)``, ``c = (N − B) / (B (N − 1))`` (what ``v`` averages),
- the Hessian ``H = ∇²L``,

all exact on a small MLP (per-sample gradients with ``torch.func``, the dense Hessian from
Hessian-vector products). Torch is imported inside the functions.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from . import _common


def train_adam(
    model: Any,
    x: Any,
    y: Any,
    *,
    epochs: int,
    batch_size: int,
    lr: float,
    seed: int,
    betas: tuple[float, float] = (0.9, 0.999),
    on_epoch: Callable[[int, np.ndarray], None] | None = None,
) -> tuple[np.ndarray, list[float], int]:
    """Train ``model`` in place with Adam on shuffled minibatches (cross-entropy).

    Returns Adam's bias-corrected second moment ``v̂ = exp_avg_sq / (1 − β₂ᵗ)`` as one flat
    float64 vector (the order of :func:`_common.flat_parameters`), the full-batch loss after
    each epoch, and the number of steps t. ``on_epoch(epoch, v̂)`` is called after each epoch
    (before the last one returns). Cost: ``epochs × N`` sample gradients.
    """
    import torch

    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.Adam(params, lr=lr, betas=betas)
    steps_per_epoch = -(-len(y) // batch_size)

    def v_hat(steps: int) -> np.ndarray:
        """``exp_avg_sq / (1 − β₂ᵗ)`` of every parameter after ``steps`` steps, flattened."""
        v = torch.cat([opt.state[p]["exp_avg_sq"].reshape(-1) for p in params])
        return v.detach().cpu().double().numpy() / (1.0 - betas[1] ** steps)

    def after_epoch(epoch: int) -> None:
        """Hand ``v̂`` to ``on_epoch`` after every epoch but the last."""
        if on_epoch is not None and 0 < epoch < epochs:
            on_epoch(epoch, v_hat(epoch * steps_per_epoch))

    losses = _common.train(
        model, x, y, epochs=epochs, batch_size=batch_size, lr=lr, seed=seed, optimizer=opt, on_epoch=after_epoch
    )
    steps = epochs * steps_per_epoch
    return v_hat(steps), losses, steps


def per_sample_gradients(model: Any, x: Any, y: Any) -> np.ndarray:
    """The per-sample gradients ``gᵢ = ∇_θ ℓ(f(xᵢ), yᵢ)`` as an ``(N, n)`` float64 array.

    ``torch.func.vmap`` of ``torch.func.grad`` over the samples, parameters flattened in the
    order of :func:`_common.flat_parameters`. Cost: one batched backward pass; memory N × n.
    """
    import torch
    from torch.func import functional_call, grad, vmap

    names = [name for name, p in model.named_parameters() if p.requires_grad]
    params = {name: p.detach() for name, p in model.named_parameters() if p.requires_grad}

    def loss(ps: dict[str, Any], xi: Any, yi: Any) -> Any:
        """The loss of one sample as a function of the parameters."""
        out = functional_call(model, ps, (xi.unsqueeze(0),))
        return torch.nn.functional.cross_entropy(out, yi.unsqueeze(0))

    grads = vmap(grad(loss), in_dims=(None, 0, 0))(params, x, y)
    flat = torch.cat([grads[name].reshape(len(y), -1) for name in names], dim=1)
    return flat.detach().cpu().double().numpy()


def second_moment_diagonals(g: np.ndarray, batch_size: int) -> dict[str, np.ndarray]:
    """Diagonals of the gradient second moments from per-sample gradients ``g`` (N × n).

    ``per_sample = (1/N) Σᵢ gᵢ²``; ``mean_gradient_sq = ḡ²``; ``minibatch`` is the diagonal of
    ``E[g_B g_Bᵀ] = ḡḡᵀ + c (M − ḡḡᵀ)`` with ``c = (N − B)/(B (N − 1))`` for a batch of B
    drawn without replacement (c = 1 for B = 1, 0 for B = N). Cost: O(N n).
    """
    n_samples = g.shape[0]
    per_sample = np.mean(g * g, axis=0)
    gbar_sq = np.mean(g, axis=0) ** 2
    c = (n_samples - batch_size) / (batch_size * (n_samples - 1)) if n_samples > 1 else 1.0
    return {"per_sample": per_sample, "mean_gradient_sq": gbar_sq, "minibatch": gbar_sq + c * (per_sample - gbar_sq)}


def curvature(
    model: Any, x: Any, y: Any, g: np.ndarray, *, batch_size: int, seed: int, diag_matvecs: int
) -> dict[str, Any]:
    """The exact Hessian and second moment of the trained model, and eigenscope's estimates of them.

    Dense Hessian ``H`` by :func:`_common.dense` on ``est.hessian`` (n products), its
    eigenvalues by ``numpy.linalg.eigh``; eigenvalues of ``M = GᵀG/N`` from the per-sample
    gradients (the nonzero ones, via the N × N Gram matrix when N < n). Hutchinson diagonal
    estimates (``es.diagonal``, ``diag_matvecs`` Rademacher probes) of ``H`` and of the
    library's ``est.gradient_covariance(per="sample")`` and ``(per="batch")`` operators, and the
    relative difference between the library's M product and ``Gᵀ(Gv)/N`` for one vector.
    Cost: n + 3 × diag_matvecs products.
    """
    import torch

    import eigenscope as es
    from eigenscope.adapters import torch as est

    data = _common.batches(x, y, len(y))
    loss_fn = torch.nn.functional.cross_entropy
    H = est.hessian(model, loss_fn, data)
    h_dense = _common.dense(H)
    n_samples = g.shape[0]
    gram = g @ g.T / n_samples if n_samples < g.shape[1] else g.T @ g / n_samples
    m_eigs = np.concatenate([np.linalg.eigvalsh(gram), np.zeros(max(g.shape[1] - n_samples, 0))])
    M = est.gradient_covariance(model, loss_fn, data, per="sample")
    Mb = est.gradient_covariance(model, loss_fn, _common.batches(x, y, batch_size), per="batch")
    v = np.random.default_rng(seed).standard_normal(g.shape[1])
    mv = M.matvec(torch.as_tensor(v, dtype=M.dtype, device=M.device)).detach().cpu().double().numpy()
    exact_mv = g.T @ (g @ v) / n_samples

    def hutchinson(op: Any) -> np.ndarray:
        """Hutchinson's estimate of ``diag(op)`` as a NumPy vector."""
        res = es.diagonal(op, num_matvecs=diag_matvecs, seed=seed)
        return res.estimate.detach().cpu().double().numpy()

    return {
        "hessian_diag": np.diag(h_dense).copy(),
        "hessian_eigenvalues": np.linalg.eigvalsh(h_dense),
        "second_moment_eigenvalues": np.sort(m_eigs),
        "hessian_diag_hutchinson": hutchinson(H),
        "second_moment_diag_hutchinson": hutchinson(M),
        "batch_second_moment_diag_hutchinson": hutchinson(Mb),
        "second_moment_product_error": float(np.linalg.norm(mv - exact_mv) / np.linalg.norm(exact_mv)),
    }


def correlations(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """Pearson and Spearman correlation of two vectors (``scipy.stats``). Cost: O(n log n)."""
    import scipy.stats

    return float(scipy.stats.pearsonr(a, b)[0]), float(scipy.stats.spearmanr(a, b)[0])


def normalized_wasserstein(a: np.ndarray, b: np.ndarray) -> float:
    """``W₁`` between the value distributions of ``a/mean(a)`` and ``b/mean(b)`` (``density_wasserstein``).

    Dividing by the mean removes the scale (v̂ and M differ by the batch size, H by more), so
    the distance compares the shapes of the two distributions of diagonal entries.
    """
    from ...metrics import density_wasserstein

    return density_wasserstein(a / np.mean(a), b / np.mean(b))
