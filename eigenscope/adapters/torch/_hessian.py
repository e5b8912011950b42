"""Hessian-vector products of the mean loss of a batch.

Two ways to differentiate twice:

- ``"rev-rev"`` (double backward): ``g = ∇L(θ)`` with ``create_graph=True``, then
  ``Hv = ∇(gᵀv)`` (concatenations in the model differentiated as one split, see
  ``_concat``). The forward pass and the first backward pass are run once per batch and
  per block; each vector of the block costs one more backward pass through that graph
  (``retain_graph=True``), or all of them together with ``vectorize=True``
  (``is_grads_batched``, i.e. ``vmap`` over the vectors).
- ``"fwd-rev"`` (forward over reverse): ``Hv = jvp(∇L, θ, v)`` with ``torch.func``. Every
  vector pays a forward and a backward pass in dual numbers; ``vectorize=True`` maps them
  with ``torch.func.vmap``.
"""

from __future__ import annotations

from typing import Any

import torch
from torch.func import grad as func_grad
from torch.func import grad_and_value, jvp, vmap

from ._concat import concat_routes
from ._functional import FunctionalModel, ensure_forward_ad, grad, leaves
from ._kernel import Kernel, ProductFn, check_loss, stack_columns
from ._routing import rerouted


def hessian_product(fmodel: FunctionalModel) -> ProductFn:
    """``(θ, x, y, v) -> (∇²L(θ) v, L(θ))`` as ``∇_θ⟨∇L(θ), v⟩`` with ``torch.func``
    (reverse over reverse: measured faster to compile and to run than ``jvp`` of ``grad``)."""

    def product(theta: list[torch.Tensor], inputs: Any, targets: Any, v: list[torch.Tensor]) -> Any:
        def directional(th: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
            g, loss = grad_and_value(lambda t: fmodel.traced_loss(t, inputs, targets))(th)
            return sum((gi * vi).sum() for gi, vi in zip(g, v, strict=True)), loss

        return func_grad(directional, has_aux=True)(theta)

    return product


class HessianRevRev(Kernel):
    """Double backward; state = (leaves θ, gradient g with its graph)."""

    kind = "hessian"

    def __init__(self, fmodel: FunctionalModel, *, vectorize: bool) -> None:
        super().__init__(vectorize=vectorize)
        self.fmodel = fmodel

    def build(self, params: list[torch.Tensor], inputs: Any, targets: Any, index: int) -> Any:
        theta = leaves(params)
        # Concatenations differentiate as one split: the products' backward pass through the
        # gradient's graph then makes one concatenation, not a full-size zero tensor per piece.
        with rerouted(concat_routes()):
            loss = self.fmodel.loss(theta, inputs, targets)
        check_loss(loss, index)
        g = grad([loss], theta, [torch.ones_like(loss)], retain_graph=True, create_graph=True)
        return theta, g

    def functional(self) -> ProductFn:
        return hessian_product(self.fmodel)

    def _batched(self, state: Any, vs: list[torch.Tensor]) -> list[torch.Tensor]:
        theta, g = state
        return grad(g, theta, vs, retain_graph=True, batched=True)

    def _loop(self, state: Any, vs: list[torch.Tensor], keep: bool) -> list[torch.Tensor]:
        theta, g = state
        b = vs[0].shape[0]
        return stack_columns([grad(g, theta, [v[j] for v in vs], retain_graph=keep or j < b - 1) for j in range(b)])


class HessianFwdRev(Kernel):
    """Forward over reverse with ``torch.func``; state = (θ, ∇L as a function)."""

    kind = "hessian"
    cacheable = False

    def __init__(self, fmodel: FunctionalModel, *, vectorize: bool) -> None:
        super().__init__(vectorize=vectorize)
        self.fmodel = fmodel
        ensure_forward_ad()

    def build(self, params: list[torch.Tensor], inputs: Any, targets: Any, index: int) -> Any:
        def loss(theta: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
            value = self.fmodel.loss(theta, inputs, targets)
            return value, value.detach()

        return [p.detach() for p in params], func_grad(loss, has_aux=True), index

    def functional(self) -> ProductFn:
        return hessian_product(self.fmodel)

    @staticmethod
    def _hvp(state: Any, v: list[torch.Tensor]) -> tuple[list[torch.Tensor], torch.Tensor]:
        theta, grad_fn, _ = state
        _, hv, loss = jvp(grad_fn, (theta,), (v,), has_aux=True)
        return hv, loss

    def _batched(self, state: Any, vs: list[torch.Tensor]) -> list[torch.Tensor]:
        hv, loss = vmap(lambda v: self._hvp(state, v))(vs)
        check_loss(loss, state[2])
        return hv

    def _loop(self, state: Any, vs: list[torch.Tensor], keep: bool) -> list[torch.Tensor]:
        columns = []
        for j in range(vs[0].shape[0]):
            hv, loss = self._hvp(state, [v[j] for v in vs])
            if j == 0:
                check_loss(loss, state[2])
            columns.append(hv)
        return stack_columns(columns)
