"""A tiny user model and data factories for the ``eigenscope analyze --model/--data`` tests."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

NOT_CALLABLE = 3


def make_model() -> nn.Module:
    """A 4-6-3 tanh network (51 parameters), seeded without touching the global random state."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        return nn.Sequential(nn.Linear(4, 6), nn.Tanh(), nn.Linear(6, 3))


def make_other_model() -> nn.Module:
    """A different architecture: its state dict does not fit :func:`make_model`."""
    return nn.Sequential(nn.Linear(4, 7), nn.Tanh(), nn.Linear(7, 3))


def _batches(seed: int, sizes: tuple[int, ...]):
    gen = torch.Generator().manual_seed(seed)
    teacher = torch.randn(4, 3, generator=gen)
    out = []
    for n in sizes:
        x = torch.randn(n, 4, generator=gen)
        out.append((x, (x @ teacher).argmax(dim=1)))
    return out


def make_data():
    """Three batches of unequal size (a generator: the command materializes it once)."""
    yield from _batches(1, (16, 16, 8))


def make_heldout():
    """Held-out batches from the same teacher."""
    return _batches(2, (12,))


def empty_data():
    """No batches at all."""
    return []


def not_batches():
    """Batches that are not (inputs, targets) pairs."""
    return [torch.zeros(3, 4)]


def not_a_model():
    """Returns something that is not an ``nn.Module``."""
    return 42


def failing_factory():
    """Raises inside the factory."""
    raise RuntimeError("the factory broke")


def custom_loss(outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """A user loss given as module:function (mean cross-entropy, written out)."""
    return -F.log_softmax(outputs, dim=1).gather(1, targets[:, None]).mean()
