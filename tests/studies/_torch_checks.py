"""Ground truth for the studies' torch measurements: the loss as a function of the flat parameters."""

from __future__ import annotations

from collections.abc import Callable

import torch


def flat_loss(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> Callable[[torch.Tensor], torch.Tensor]:
    """The mean cross-entropy of ``model`` on ``(x, y)`` as a function of the flat parameter vector
    (``named_parameters()`` order), for ``torch.autograd.functional``'s dense Jacobians and Hessians."""
    names = [n for n, _ in model.named_parameters()]
    shapes = [p.shape for p in model.parameters()]

    def f(theta: torch.Tensor) -> torch.Tensor:
        params, i = {}, 0
        for n, s in zip(names, shapes, strict=True):
            params[n] = theta[i : i + s.numel()].reshape(s)
            i += s.numel()
        return torch.nn.functional.cross_entropy(torch.func.functional_call(model, params, (x,)), y)

    return f
