"""Batch normalization written as elementwise arithmetic, for cheaper second derivatives.

A curvature product differentiates the model twice. ``torch.batch_norm``'s fused kernel
has a double-backward formula written for the general (train-mode) case, with many
full-size passes over the activations per layer; the same function spelled as elementwise
operations lets autograd differentiate only what is there (``benchmarks.bench_torch_adapters``
measures the resulting products):

- eval mode (running statistics): ``y = x·s + t`` with ``s = γ / √(σ² + ε)`` and
  ``t = β − μ·s`` per channel: an affine map, whose second derivative in ``x`` is zero;
- train mode (batch statistics, which eigenscope's calls always use without updating
  any running statistic): ``y = (x − x̄)·(γ / √(v + ε)) + β`` with ``x̄`` and the biased
  variance ``v`` over every dimension but the channels, as the fused kernel defines them.

The functions are the same, so are every derivative of them: only rounding differs
(float64 products agree to 1e-15; float32 ones to the model's rounding sensitivity).
Only ``float32``/``float64`` inputs are rewritten (the fused kernel accumulates half
precision in float32), and only calls that update no running statistic; anything else
goes to the fused kernel unchanged.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from ._routing import Routes

_REWRITTEN_DTYPES = (torch.float32, torch.float64)


def elementwise_batch_norm(
    input: torch.Tensor,
    running_mean: torch.Tensor | None,
    running_var: torch.Tensor | None,
    weight: torch.Tensor | None = None,
    bias: torch.Tensor | None = None,
    training: bool = False,
    momentum: float | None = 0.1,
    eps: float = 1e-5,
) -> torch.Tensor | None:
    """``F.batch_norm`` as elementwise operations, or ``None`` where it must not be rewritten.

    Same arguments as ``torch.nn.functional.batch_norm``; the channels are dimension 1.
    ``None`` (the caller then runs the fused kernel) when the call would update running
    statistics (train mode with them given), lacks them in eval mode, has fewer than two
    dimensions or one value per channel in train mode (the fused kernel raises), a
    non-positive ``eps`` in train mode, or a dtype other than float32/float64.
    Cost: one pass over ``input`` in eval mode, three in train mode.
    """
    if not isinstance(input, torch.Tensor) or input.dtype not in _REWRITTEN_DTYPES or input.dim() < 2:
        return None
    channels = input.shape[1]
    view = (1, channels) + (1,) * (input.dim() - 2)
    if training:
        if running_mean is not None or running_var is not None:
            return None  # the fused kernel would update them: keep that behaviour
        if eps <= 0.0 or input.numel() <= channels:
            return None  # the fused kernel raises its own error
        dims = [0, *range(2, input.dim())]
        var, mean = torch.var_mean(input, dims, correction=0, keepdim=True)
        scale = torch.rsqrt(var + eps)
        if weight is not None:
            scale = scale * weight.reshape(view)
        out = (input - mean) * scale
        return out if bias is None else out + bias.reshape(view)
    if running_mean is None or running_var is None or eps < 0.0:
        return None
    scale = torch.rsqrt(running_var + eps)
    if weight is not None:
        scale = weight * scale
    shift = -running_mean * scale
    if bias is not None:
        shift = shift + bias
    return input * scale.reshape(view) + shift.reshape(view)


def has_batch_norm(model: nn.Module) -> bool:
    """Whether ``model`` holds a BatchNorm module (``nn.BatchNorm1d/2d/3d``, ``SyncBatchNorm``,
    lazy variants: every ``_BatchNorm``)."""
    return any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules())


def batch_norm_routes(enabled: bool = True) -> Routes:
    """The route (for :func:`~._routing.rerouted`) sending ``F.batch_norm`` (what every
    BatchNorm module calls) to :func:`elementwise_batch_norm`; none when not ``enabled``."""
    # Looked up at each call, so that the module's function is the one that runs.
    return {F.batch_norm: lambda *args, **kwargs: elementwise_batch_norm(*args, **kwargs)} if enabled else {}
