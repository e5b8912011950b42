"""Pieces the studies share: their data sets, small models, a training loop, dense curvature.

Everything is seeded and small enough for 2 CPU cores. Torch is imported inside the
functions, so importing a study module stays cheap.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np


def gauss10(num_samples: int = 100, dim: int = 20, *, seed: int = 0, separation: float = 1.5) -> tuple[Any, Any]:
    """The Gauss-10 data set: ``num_samples`` points from 10 Gaussian classes in ``dim`` dimensions.

    Class means are drawn from N(0, separation² I / dim) scaled to norm ``separation``; each
    point is its class mean plus N(0, I/dim) noise (so classes overlap a little). Classes are
    balanced. Returns float64 tensors ``x (N, dim)`` and int64 labels ``y (N,)``.
    """
    import torch

    rng = np.random.default_rng(seed)
    means = rng.standard_normal((10, dim))
    means *= separation / np.linalg.norm(means, axis=1, keepdims=True)
    y = np.arange(num_samples) % 10
    rng.shuffle(y)
    x = means[y] + rng.standard_normal((num_samples, dim)) / np.sqrt(dim)
    return torch.tensor(x, dtype=torch.float64), torch.tensor(y, dtype=torch.int64)


def digits(num_samples: int | None = None, *, seed: int = 0, flatten: bool = True) -> tuple[Any, Any]:
    """scikit-learn's 8×8 digits (shipped, no download), shuffled with ``seed``, scaled to [0, 1].

    Returns float64 ``x`` — ``(N, 64)`` if ``flatten`` else ``(N, 1, 8, 8)`` — and int64 ``y``.
    The stand-in for MNIST/CIFAR in the studies.
    """
    import torch
    from sklearn.datasets import load_digits

    data = load_digits()
    order = np.random.default_rng(seed).permutation(len(data.target))
    if num_samples is not None:
        order = order[:num_samples]
    x = data.images[order].astype(np.float64) / 16.0
    x = x.reshape(len(order), 64) if flatten else x.reshape(len(order), 1, 8, 8)
    return torch.tensor(x), torch.tensor(data.target[order], dtype=torch.int64)


def mlp(sizes: Sequence[int], *, seed: int = 0, dtype: Any = None) -> Any:
    """A ReLU MLP with layer widths ``sizes`` (input first, logits last), seeded, float64 by default."""
    import torch

    torch.manual_seed(seed)
    layers: list[Any] = []
    for i, (a, b) in enumerate(itertools.pairwise(sizes)):
        layers.append(torch.nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(torch.nn.ReLU())
    return torch.nn.Sequential(*layers).to(dtype or torch.float64)


def batches(x: Any, y: Any, batch_size: int) -> list[tuple[Any, Any]]:
    """``(x, y)`` split into consecutive batches of ``batch_size`` (the last one may be shorter)."""
    return [(x[i : i + batch_size], y[i : i + batch_size]) for i in range(0, len(y), batch_size)]


def train(
    model: Any,
    x: Any,
    y: Any,
    *,
    epochs: int,
    batch_size: int,
    lr: float,
    seed: int = 0,
    optimizer: Any = "sgd",
    momentum: float = 0.0,
    loss_fn: Callable[..., Any] | None = None,
    lr_drop: tuple[int, float] | None = None,
    on_epoch: Callable[[int], None] | None = None,
) -> list[float]:
    """Train ``model`` in place with shuffled minibatches; return the training loss after each epoch.

    ``on_epoch(epoch)`` is called before the first epoch (``epoch = 0``) and after each
    epoch (``1..epochs``): that is where a study measures. ``optimizer`` is ``"sgd"``,
    ``"adam"`` (built here with ``lr`` and ``momentum``) or a ``torch.optim.Optimizer`` the
    caller built over the model's parameters (to read its state between epochs);
    ``lr_drop = (epoch, factor)`` multiplies the learning rate by ``factor`` from that epoch
    on. Returns the full-batch loss after each epoch.
    """
    import torch

    loss_fn = loss_fn or torch.nn.functional.cross_entropy
    params = [p for p in model.parameters() if p.requires_grad]
    if isinstance(optimizer, torch.optim.Optimizer):
        opt: Any = optimizer
    elif optimizer == "sgd":
        opt = torch.optim.SGD(params, lr=lr, momentum=momentum)
    elif optimizer == "adam":
        opt = torch.optim.Adam(params, lr=lr)
    else:
        raise ValueError(f"optimizer must be 'sgd', 'adam' or a torch optimizer, got {optimizer!r}")
    gen = torch.Generator().manual_seed(seed)
    losses = []
    if on_epoch is not None:
        on_epoch(0)
    for epoch in range(1, epochs + 1):
        if lr_drop is not None and epoch == lr_drop[0]:
            for group in opt.param_groups:
                group["lr"] *= lr_drop[1]
        model.train()
        order = torch.randperm(len(y), generator=gen).to(y.device)
        for i in range(0, len(y), batch_size):
            idx = order[i : i + batch_size]
            opt.zero_grad(set_to_none=True)
            loss_fn(model(x[idx]), y[idx]).backward()
            opt.step()
        with torch.no_grad():
            losses.append(float(loss_fn(model(x), y)))
        if on_epoch is not None:
            on_epoch(epoch)
    return losses


def dense(op: Any, *, chunk: int = 256) -> np.ndarray:
    """The operator as a dense float64 NumPy matrix (``chunk`` columns per ``matmat``), symmetrized.

    Cost: n matvecs. For the small models of the studies, where exact spectra are affordable.
    """
    n = op.shape[0]
    cols = []
    for start in range(0, n, chunk):
        width = min(chunk, n - start)
        basis = np.zeros((n, width))
        basis[start + np.arange(width), np.arange(width)] = 1.0
        block = op.matmat(_like(op, basis))
        cols.append(_to_numpy(block))
    a = np.concatenate(cols, axis=1)
    return 0.5 * (a + a.T)


def flat_parameters(model: Any) -> Any:
    """The trainable parameters as one detached flat vector (the order the adapters use)."""
    import torch

    return torch.cat([p.detach().reshape(-1) for p in model.parameters() if p.requires_grad])


def serial_blas() -> Any:
    """A context in which NumPy's BLAS/LAPACK runs on one thread.

    The dense decompositions here are small (n ≤ a few thousand); on a loaded machine a
    multi-threaded LAPACK call can be 10-20 times slower than a serial one (threads waiting
    for cores), and on an idle one the serial call costs at most about the thread count.
    """
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=1, user_api="blas")


def _like(op: Any, array: np.ndarray) -> Any:
    import torch

    return torch.as_tensor(array, dtype=op.dtype, device=op.device)


def _to_numpy(x: Any) -> np.ndarray:
    return x.detach().cpu().double().numpy() if hasattr(x, "detach") else np.asarray(x, dtype=np.float64)
