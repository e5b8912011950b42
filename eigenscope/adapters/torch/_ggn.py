"""Generalised Gauss-Newton products ``G v = Jᵀ H_ℓ J v`` for the mean loss of a batch.

``J`` is the Jacobian of the model outputs with respect to the parameters and ``H_ℓ`` the
Hessian of the loss with respect to the outputs (closed form for cross-entropy, MSE and
BCE with logits; a double backward through the loss alone otherwise). ``G`` is positive
semi-definite whenever the loss is convex in the outputs, which all three closed forms are.

- ``"rev-rev"``: ``J v`` by the double-vjp trick: ``Jᵀu`` with ``u`` a dummy cotangent and
  ``create_graph=True`` is linear in ``u``, and its vjp with respect to ``u`` is ``J v``.
  The forward pass and that backward pass are run once per batch and per block; each vector
  then costs a pass through the ``Jᵀu`` graph (``J v``) and one backward pass (``Jᵀ(H_ℓ J v)``).
- ``"fwd-rev"``: ``J v`` by ``torch.func.jvp`` (a forward pass in dual numbers per vector),
  ``Jᵀ`` by a ``torch.func.vjp`` closure built once per batch.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch.func import grad as func_grad
from torch.func import jvp, vjp, vmap

from ._functional import FunctionalModel, ensure_forward_ad, grad, leaves
from ._kernel import Kernel, ProductFn, check_loss, stack_columns
from ._losses import LossFn, output_hessian_closed_form


def _require_tensor(outputs: Any) -> torch.Tensor:
    if not isinstance(outputs, torch.Tensor):
        raise TypeError(
            f"the GGN needs the model to return one tensor, got {type(outputs).__name__}; wrap the model so "
            "that it returns the tensor the loss is applied to"
        )
    return outputs


class OutputHessian:
    """``H_ℓ`` of one batch with respect to the outputs: ``u (b, *out) -> H_ℓ u``."""

    def __init__(self, loss_fn: LossFn, kind: str | None, *, ignore_index: int) -> None:
        self.loss_fn = loss_fn
        self.kind = kind
        self.ignore_index = ignore_index

    def build(self, outputs: torch.Tensor, targets: Any, index: int) -> Callable[[torch.Tensor], torch.Tensor]:
        o = outputs.detach()
        closed = None
        if self.kind is not None:
            closed = output_hessian_closed_form(self.kind, o, targets, self.ignore_index)
        if closed is not None:
            with torch.no_grad():
                check_loss(self.loss_fn(o, targets), index)
            return closed
        # Differentiate the loss twice with respect to the outputs only: cheap next to the model.
        leaf = o.requires_grad_(True)
        with torch.enable_grad():
            loss = self.loss_fn(leaf, targets)
            check_loss(loss, index)
            (gl,) = grad([loss], [leaf], [torch.ones_like(loss)], retain_graph=True, create_graph=True)

        def autodiff(u: torch.Tensor) -> torch.Tensor:
            if u.shape[0] == 1:
                return grad([gl], [leaf], [u[0]], retain_graph=True)[0][None]
            return grad([gl], [leaf], [u], retain_graph=True, batched=True)[0]

        return autodiff

    def traced(self, outputs: torch.Tensor, targets: Any) -> Callable[[torch.Tensor], torch.Tensor]:
        """``u -> H_ℓ u`` as :meth:`build` forms it, without its checks, for a compiled product."""
        closed = (
            None if self.kind is None else output_hessian_closed_form(self.kind, outputs, targets, self.ignore_index)
        )
        if closed is not None:
            return closed
        o = outputs.detach()

        def autodiff(u: torch.Tensor) -> torch.Tensor:
            return vmap(lambda w: jvp(func_grad(lambda t: self.loss_fn(t, targets)), (o,), (w,))[1])(u)

        return autodiff


def ggn_product(fmodel: FunctionalModel, hessian: OutputHessian) -> ProductFn:
    """``(θ, x, y, v) -> (Jᵀ H_ℓ J v, L(θ))`` with ``torch.func``: ``J v`` by ``jvp``,
    ``Jᵀ`` by ``vjp``."""

    def product(theta: list[torch.Tensor], inputs: Any, targets: Any, v: list[torch.Tensor]) -> Any:
        def f(th: list[torch.Tensor]) -> torch.Tensor:
            return _require_tensor(fmodel.traced_outputs(th, inputs))

        out, vjp_fn = vjp(f, theta)
        _, jv = jvp(f, (theta,), (v,))
        u = hessian.traced(out, targets)(jv[None])[0]
        return list(vjp_fn(u)[0]), hessian.loss_fn(out.detach(), targets)

    return product


class GGNRevRev(Kernel):
    """State = (θ, outputs, dummy cotangent u, Jᵀu with its graph, H_ℓ)."""

    kind = "ggn"

    def __init__(self, fmodel: FunctionalModel, hessian: OutputHessian, *, vectorize: bool) -> None:
        super().__init__(vectorize=vectorize)
        self.fmodel = fmodel
        self.hessian = hessian

    def build(self, params: list[torch.Tensor], inputs: Any, targets: Any, index: int) -> Any:
        theta = leaves(params)
        out = _require_tensor(self.fmodel.outputs(theta, inputs))
        h = self.hessian.build(out, targets, index)
        u = torch.zeros_like(out, requires_grad=True)
        jt_u = grad([out], theta, [u], retain_graph=True, create_graph=True)
        return theta, out, u, jt_u, h

    def functional(self) -> ProductFn:
        return ggn_product(self.fmodel, self.hessian)

    def _batched(self, state: Any, vs: list[torch.Tensor]) -> list[torch.Tensor]:
        theta, out, u, jt_u, h = state
        jv = grad(jt_u, [u], vs, retain_graph=True, batched=True)[0]
        return grad([out], theta, [h(jv)], retain_graph=True, batched=True)

    def _loop(self, state: Any, vs: list[torch.Tensor], keep: bool) -> list[torch.Tensor]:
        theta, out, u, jt_u, h = state
        b = vs[0].shape[0]
        columns = []
        for j in range(b):
            jv = grad(jt_u, [u], [v[j] for v in vs], retain_graph=True)[0]
            columns.append(grad([out], theta, [h(jv[None])[0]], retain_graph=keep or j < b - 1))
        return stack_columns(columns)


class GGNFwdRev(Kernel):
    """State = (θ, outputs as a function, their vjp closure, H_ℓ)."""

    kind = "ggn"
    cacheable = False

    def __init__(self, fmodel: FunctionalModel, hessian: OutputHessian, *, vectorize: bool) -> None:
        super().__init__(vectorize=vectorize)
        self.fmodel = fmodel
        self.hessian = hessian
        ensure_forward_ad()

    def build(self, params: list[torch.Tensor], inputs: Any, targets: Any, index: int) -> Any:
        theta = [p.detach() for p in params]

        def f(th: list[torch.Tensor]) -> torch.Tensor:
            return _require_tensor(self.fmodel.outputs(th, inputs))

        out, vjp_fn = vjp(f, theta)
        return theta, f, vjp_fn, self.hessian.build(out, targets, index)

    def functional(self) -> ProductFn:
        return ggn_product(self.fmodel, self.hessian)

    def _batched(self, state: Any, vs: list[torch.Tensor]) -> list[torch.Tensor]:
        theta, f, vjp_fn, h = state
        jv = vmap(lambda v: jvp(f, (theta,), (v,))[1])(vs)
        return vmap(vjp_fn)(h(jv))[0]

    def _loop(self, state: Any, vs: list[torch.Tensor], keep: bool) -> list[torch.Tensor]:
        theta, f, vjp_fn, h = state
        columns = []
        for j in range(vs[0].shape[0]):
            _, jv = jvp(f, (theta,), ([v[j] for v in vs],))
            columns.append(vjp_fn(h(jv[None])[0])[0])
        return stack_columns(columns)
