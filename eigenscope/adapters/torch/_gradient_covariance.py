"""Second moment (and covariance) of per-sample or per-batch gradients.

Per sample, for one batch of ``n_b`` samples with per-sample losses ``ℓ_i`` and
``J = ∂ℓ/∂θ`` (``n_b × n``, row ``i`` = gᵢᵀ): ``M_b v = (1/n_b) Σ_i gᵢ (gᵢᵀ v) = Jᵀ(J v)/n_b``,
without ever forming a per-sample gradient:

- ``"rev-rev"``: ``J v`` by the double-vjp trick (``Jᵀu = ∇(uᵀℓ)`` with ``create_graph=True``
  is linear in ``u``; its vjp with respect to ``u`` is ``J v``), ``Jᵀw`` by one backward pass
  of ``wᵀℓ``. Forward and the ``Jᵀu`` pass once per batch and block, then two passes per vector.
- ``"fwd-rev"``: ``J v`` by ``torch.func.jvp``, ``Jᵀ`` by a ``torch.func.vjp`` closure.

Per batch: ``M_b v = g_b (g_bᵀ v)`` with ``g_b`` the gradient of the batch's mean loss; one
forward and one backward pass per batch and block (or none with the cache, which then holds
the ``g_b``: ``num_batches × n`` numbers).
"""

from __future__ import annotations

from typing import Any

import torch
from torch.func import jvp, vjp, vmap

from ._functional import FunctionalModel, ensure_forward_ad, grad, leaves
from ._kernel import Kernel, ProductFn, check_loss, stack_columns
from ._losses import LossFn


def sample_product(fmodel: FunctionalModel, per_sample: LossFn) -> ProductFn:
    """``(θ, x, y, v) -> (Jᵀ(J v)/n_b, mean loss)`` with ``torch.func`` (``jvp``, ``vjp``)."""

    def product(theta: list[torch.Tensor], inputs: Any, targets: Any, v: list[torch.Tensor]) -> Any:
        def f(th: list[torch.Tensor]) -> torch.Tensor:
            return per_sample(fmodel.traced_outputs(th, inputs), targets)

        losses, vjp_fn = vjp(f, theta)
        _, jv = jvp(f, (theta,), (v,))
        return list(vjp_fn(jv / losses.shape[0])[0]), losses.detach().mean()

    return product


class SampleRevRev(Kernel):
    """State = (θ, per-sample losses ℓ, dummy cotangent u, Jᵀu with its graph)."""

    kind = "gradient_covariance"

    def __init__(self, fmodel: FunctionalModel, per_sample: LossFn, *, vectorize: bool) -> None:
        super().__init__(vectorize=vectorize)
        self.fmodel = fmodel
        self.per_sample = per_sample

    def build(self, params: list[torch.Tensor], inputs: Any, targets: Any, index: int) -> Any:
        theta = leaves(params)
        losses = self.per_sample(self.fmodel.outputs(theta, inputs), targets)
        check_loss(losses.detach().mean(), index)
        u = torch.zeros_like(losses, requires_grad=True)
        jt_u = grad([losses], theta, [u], retain_graph=True, create_graph=True)
        return theta, losses, u, jt_u

    def functional(self) -> ProductFn:
        return sample_product(self.fmodel, self.per_sample)

    def _batched(self, state: Any, vs: list[torch.Tensor]) -> list[torch.Tensor]:
        theta, losses, u, jt_u = state
        jv = grad(jt_u, [u], vs, retain_graph=True, batched=True)[0]
        return grad([losses], theta, [jv / losses.shape[0]], retain_graph=True, batched=True)

    def _loop(self, state: Any, vs: list[torch.Tensor], keep: bool) -> list[torch.Tensor]:
        theta, losses, u, jt_u = state
        b, n_b = vs[0].shape[0], losses.shape[0]
        columns = []
        for j in range(b):
            jv = grad(jt_u, [u], [v[j] for v in vs], retain_graph=True)[0]
            columns.append(grad([losses], theta, [jv / n_b], retain_graph=keep or j < b - 1))
        return stack_columns(columns)


class SampleFwdRev(Kernel):
    """State = (θ, per-sample losses as a function, their vjp closure)."""

    kind = "gradient_covariance"
    cacheable = False

    def __init__(self, fmodel: FunctionalModel, per_sample: LossFn, *, vectorize: bool) -> None:
        super().__init__(vectorize=vectorize)
        self.fmodel = fmodel
        self.per_sample = per_sample
        ensure_forward_ad()

    def build(self, params: list[torch.Tensor], inputs: Any, targets: Any, index: int) -> Any:
        theta = [p.detach() for p in params]

        def f(th: list[torch.Tensor]) -> torch.Tensor:
            return self.per_sample(self.fmodel.outputs(th, inputs), targets)

        losses, vjp_fn = vjp(f, theta)
        check_loss(losses.mean(), index)
        return theta, f, vjp_fn, losses.shape[0]

    def functional(self) -> ProductFn:
        return sample_product(self.fmodel, self.per_sample)

    def _batched(self, state: Any, vs: list[torch.Tensor]) -> list[torch.Tensor]:
        theta, f, vjp_fn, n_b = state
        jv = vmap(lambda v: jvp(f, (theta,), (v,))[1])(vs)
        return vmap(vjp_fn)(jv / n_b)[0]

    def _loop(self, state: Any, vs: list[torch.Tensor], keep: bool) -> list[torch.Tensor]:
        theta, f, vjp_fn, n_b = state
        columns = []
        for j in range(vs[0].shape[0]):
            _, jv = jvp(f, (theta,), ([v[j] for v in vs],))
            columns.append(vjp_fn(jv / n_b)[0])
        return stack_columns(columns)


class BatchGradient(Kernel):
    """Per-batch gradients; state = the batch gradient ``g_b`` (no graph)."""

    kind = "gradient_covariance"
    keeps_graph = False  # the cache holds g_b: num_batches × n numbers

    def __init__(self, fmodel: FunctionalModel) -> None:
        super().__init__(vectorize=False)
        self.fmodel = fmodel

    def build(self, params: list[torch.Tensor], inputs: Any, targets: Any, index: int) -> Any:
        theta = leaves(params)
        loss = self.fmodel.loss(theta, inputs, targets)
        check_loss(loss, index)
        return grad([loss], theta, [torch.ones_like(loss)], retain_graph=False)

    def _loop(self, state: Any, vs: list[torch.Tensor], keep: bool) -> list[torch.Tensor]:
        g = state
        coef = sum((v * gi).reshape(v.shape[0], -1).sum(dim=1) for v, gi in zip(vs, g, strict=True))  # (b,) = g_bᵀ v
        return [coef.reshape(-1, *([1] * gi.ndim)) * gi for gi in g]
