"""Concatenation whose second derivative is one concatenation, for double-backward products.

Autograd differentiates ``torch.cat`` by slicing the incoming gradient, one slice per input.
A Hessian-vector product by double backward then differentiates those slices, and the
derivative of a slice is a zero tensor of the whole concatenated size with the slice copied
in; the engine adds the pieces' results together. For a Wide&Deep model concatenating nine
embeddings that is nine full-size fills and nine full-size additions per batch.
Differentiating the concatenation as one ``split`` instead makes the second derivative a
single ``cat``: the same numbers (bit for bit: it only moves them), less memory traffic.

:func:`concat_routes` sends ``torch.cat``/``torch.concat``/``torch.concatenate`` through it
(with :func:`~._routing.rerouted`, inside a block) where :func:`concat_for_double_backward`
applies: two or more floating-point tensors of one dtype and device, an integer dimension,
no ``out=``, and a gradient to take. Everything else goes to ``torch.cat`` unchanged.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from ._routing import Routes

_CONCATENATIONS = (torch.cat, torch.concat, torch.concatenate)


class _Concat(torch.autograd.Function):
    """``torch.cat(tensors, dim)`` whose backward is one ``split`` (itself differentiable:
    its derivative is one ``cat``)."""

    generate_vmap_rule = True

    @staticmethod
    def forward(dim: int, *tensors: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        return torch.cat(tensors, dim)

    @staticmethod
    def setup_context(ctx: Any, inputs: tuple[Any, ...], output: torch.Tensor) -> None:
        dim, *tensors = inputs
        ctx.dim = dim
        ctx.sizes = [t.shape[dim] for t in tensors]
        ctx.like = [(t.shape, t.dtype, t.device) for t in tensors]

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[Any, ...]:  # type: ignore[override]
        return (None, *torch.split(grad, ctx.sizes, ctx.dim))

    @staticmethod
    def jvp(ctx: Any, _dim: Any, *tangents: torch.Tensor | None) -> torch.Tensor:  # type: ignore[override]
        filled = [
            torch.zeros(shape, dtype=dtype, device=device) if t is None else t
            for t, (shape, dtype, device) in zip(tangents, ctx.like, strict=True)
        ]
        return torch.cat(filled, ctx.dim)


def concat_for_double_backward(tensors: Any, dim: Any = 0, *, axis: Any = None, out: Any = None) -> torch.Tensor | None:
    """``torch.cat(tensors, dim)`` through :class:`_Concat`, or ``None`` where it does not apply
    (the caller then calls ``torch.cat``): fewer than two tensors, a non-tensor, a dtype that is
    not floating point or differs between them, several devices, dimensions that differ (the
    legacy empty 1-D tensors ``torch.cat`` skips), a named dimension, ``out=``, gradients
    disabled or none of the tensors requiring one. ``axis`` is ``torch.concatenate``'s name
    for ``dim``. Cost: that of ``torch.cat``."""
    if axis is not None:
        dim = axis
    if out is not None or not isinstance(tensors, Sequence) or len(tensors) < 2 or isinstance(dim, bool):
        return None
    if not isinstance(dim, int) or not torch.is_grad_enabled():
        return None
    if not all(isinstance(t, torch.Tensor) for t in tensors):
        return None
    first = tensors[0]
    if not first.is_floating_point() or first.dim() == 0:
        return None
    same = all(t.dtype == first.dtype and t.device == first.device and t.dim() == first.dim() for t in tensors)
    if not same or not any(t.requires_grad for t in tensors) or not -first.dim() <= dim < first.dim():
        return None
    return _Concat.apply(dim % first.dim(), *tensors)


def concat_routes() -> Routes:
    """The routes (for :func:`~._routing.rerouted`) sending ``torch.cat`` and its aliases to
    :func:`concat_for_double_backward`."""
    # Looked up at each call, so that the module's function is the one that runs.
    return dict.fromkeys(_CONCATENATIONS, lambda *args, **kwargs: concat_for_double_backward(*args, **kwargs))
