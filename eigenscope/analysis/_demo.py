"""The built-in default job: a small CNN trained briefly on scikit-learn's 8×8 digits.

Everything is seeded (weights, the train/held-out split, the minibatch order), so
``eigenscope analyze --seed S`` trains the same network on every run with the same
backend and device. The data ship with scikit-learn (no download).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from .. import zoo

NUM_CLASSES = 10


class DigitsCNN(nn.Module):
    """Two 3×3 convolutions (8 and 16 channels, each followed by ReLU and 2×2 max-pooling)
    and a two-layer classifier head: 3,658 parameters for 1×8×8 inputs and 10 classes."""

    def __init__(self, num_classes: int = NUM_CLASSES) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 8, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(8, 16, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
        )
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(16 * 2 * 2, 32), nn.ReLU(), nn.Linear(32, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Class logits, shape (b, num_classes), for images of shape (b, 1, 8, 8)."""
        return self.head(self.features(x))


def build_model(seed: int = 0) -> DigitsCNN:
    """A freshly initialized :class:`DigitsCNN`, seeded without touching the global random state."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return DigitsCNN()


def _batches(x: torch.Tensor, y: torch.Tensor, batch_size: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    return [(x[i : i + batch_size], y[i : i + batch_size]) for i in range(0, y.shape[0], batch_size)]


def digits_split(
    seed: int = 0, *, heldout_fraction: float = 0.2, batch_size: int = 512
) -> tuple[list[tuple[torch.Tensor, torch.Tensor]], list[tuple[torch.Tensor, torch.Tensor]]]:
    """The 1,797 digits shuffled with ``seed`` and split into train and held-out batches.

    Returns
    -------
    train, heldout : list of (x (b, 1, 8, 8) float32 in [0, 1], y (b,) int64)
        1,438 and 359 samples with the default 20% held out.
    """
    ((x, y),) = zoo.digits(batch_size=10_000, seed=seed)
    cut = round(y.shape[0] * (1.0 - heldout_fraction))
    return _batches(x[:cut], y[:cut], batch_size), _batches(x[cut:], y[cut:], batch_size)


def train(
    model: nn.Module,
    data: list[tuple[torch.Tensor, torch.Tensor]],
    *,
    epochs: int = 12,
    batch_size: int = 64,
    lr: float = 0.01,
    seed: int = 0,
    checkpoint_epochs: tuple[int, ...] = (),
    on_epoch: Callable[[int, float], None] | None = None,
) -> list[tuple[str, dict[str, Any]]]:
    """Train with Adam on shuffled minibatches; return the requested checkpoints.

    Parameters
    ----------
    model
        Trained in place (train mode during training, left in eval mode).
    data
        The training batches (re-batched here into ``batch_size`` each epoch).
    epochs, batch_size, lr
        Adam for ``epochs`` passes with minibatches of ``batch_size``.
    seed
        Seeds the minibatch order (a private ``torch.Generator``).
    checkpoint_epochs
        Epochs after which to keep a copy of the state dict; 0 is the initialization.
    on_epoch
        Called as ``on_epoch(epoch, mean training loss)`` after each epoch.

    Returns
    -------
    list of (label, state_dict)
        ``("epoch e", copy of the state dict)`` for each requested epoch.
    """
    x = torch.cat([b[0] for b in data])
    y = torch.cat([b[1] for b in data])
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    saved = []

    def keep(epoch: int) -> None:
        if epoch in checkpoint_epochs:
            saved.append((f"epoch {epoch}", {k: v.detach().clone() for k, v in model.state_dict().items()}))

    keep(0)
    model.train()
    for epoch in range(1, epochs + 1):
        order = torch.randperm(y.shape[0], generator=gen)
        total = 0.0
        for i in range(0, y.shape[0], batch_size):
            idx = order[i : i + batch_size]
            opt.zero_grad(set_to_none=True)
            loss = F.cross_entropy(model(x[idx]), y[idx])
            loss.backward()
            opt.step()
            total += float(loss.detach()) * idx.shape[0]
        keep(epoch)
        if on_epoch is not None:
            on_epoch(epoch, total / y.shape[0])
    opt.zero_grad(set_to_none=True)
    model.eval()
    return saved
