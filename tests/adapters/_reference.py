"""Dense float64 references built independently of the adapters: plain autograd on a
function of the flattened parameter vector."""

from __future__ import annotations

import torch
from torch.func import functional_call, grad, vmap
from torch.nn.attention import SDPBackend, sdpa_kernel


def _call(model, state, inputs):
    # The fused attention kernels have no second derivative and no forward-mode rule.
    fastpath = torch.backends.mha.get_fastpath_enabled()
    torch.backends.mha.set_fastpath_enabled(False)
    try:
        with sdpa_kernel([SDPBackend.MATH]):
            return _plain_call(model, state, inputs)
    finally:
        torch.backends.mha.set_fastpath_enabled(fastpath)


def _plain_call(model, state, inputs):
    if isinstance(inputs, dict):
        return functional_call(model, state, (), inputs)
    if isinstance(inputs, tuple):
        return functional_call(model, state, inputs)
    return functional_call(model, state, (inputs,))


class Flat:
    """The model as a function of the flat vector of the parameters ``names``."""

    def __init__(self, model, names=None):
        self.model = model
        named = dict(model.named_parameters())
        self.names = list(names) if names is not None else [k for k, p in named.items() if p.requires_grad]
        self.shapes = [named[k].shape for k in self.names]
        self.others = {k: p.detach() for k, p in named.items() if k not in self.names}
        self.theta = torch.cat([named[k].detach().reshape(-1) for k in self.names])

    def state(self, theta):
        out, i = {}, 0
        for k, s in zip(self.names, self.shapes, strict=True):
            n = s.numel()
            out[k] = theta[i : i + n].reshape(s)
            i += n
        # Clones: BatchNorm in train mode writes its running statistics in place.
        out.update({k: b.clone() for k, b in self.model.named_buffers()})
        out.update(self.others)
        return out

    def outputs(self, theta, inputs):
        return _call(self.model, self.state(theta), inputs)


def full_loss(flat, loss_fn, batches):
    """``θ -> Σ_b (n_b/N) L_b(θ)``."""
    total = sum(y.shape[0] for _, y in batches)

    def f(theta):
        return sum(loss_fn(flat.outputs(theta, x), y) * (y.shape[0] / total) for x, y in batches)

    return f


def dense_hessian(model, loss_fn, batches, names=None):
    flat = Flat(model, names)
    return torch.autograd.functional.hessian(full_loss(flat, loss_fn, batches), flat.theta, vectorize=True)


def dense_gradient(model, loss_fn, batches, names=None):
    flat = Flat(model, names)
    return torch.autograd.functional.jacobian(full_loss(flat, loss_fn, batches), flat.theta)


def dense_ggn(model, loss_fn, batches, names=None):
    """``Σ_b (n_b/N) J_bᵀ H_ℓ J_b`` from explicit Jacobians and output Hessians."""
    flat = Flat(model, names)
    total = sum(y.shape[0] for _, y in batches)
    g = torch.zeros(flat.theta.numel(), flat.theta.numel(), dtype=flat.theta.dtype)
    for x, y in batches:
        out = flat.outputs(flat.theta, x).detach()
        jac = torch.autograd.functional.jacobian(
            lambda t, x=x: flat.outputs(t, x).reshape(-1), flat.theta, vectorize=True
        )
        h_out = torch.autograd.functional.hessian(
            lambda o, y=y, shape=out.shape: loss_fn(o.reshape(shape), y), out.reshape(-1), vectorize=True
        )
        g += (y.shape[0] / total) * jac.T @ h_out @ jac
    return g


def _slice(obj, i):
    if isinstance(obj, dict):
        return {k: v[i : i + 1] for k, v in obj.items()}
    if isinstance(obj, tuple):
        return tuple(v[i : i + 1] for v in obj)
    return obj[i : i + 1]


def per_sample_gradients(model, loss_fn, batches, names=None):
    """``(N, n)``: row i = ∇ℓᵢ, each sample's loss as a batch of one (``vmap(grad)``)."""
    flat = Flat(model, names)
    rows = []
    for x, y in batches:

        def one(theta, xi, yi):
            add = lambda a: {k: v[None] for k, v in a.items()} if isinstance(a, dict) else a[None]  # noqa: E731
            return loss_fn(flat.outputs(theta, add(xi)), add(yi))

        rows.append(vmap(grad(one), in_dims=(None, 0, 0))(flat.theta, x, y))
    return torch.cat(rows)


def batch_gradients(model, loss_fn, batches, names=None):
    """``(B, n)``: row b = ∇L_b, and the weights ``n_b/N``."""
    flat = Flat(model, names)
    total = sum(y.shape[0] for _, y in batches)
    rows = [
        torch.autograd.functional.jacobian(lambda t, x=x, y=y: loss_fn(flat.outputs(t, x), y), flat.theta)
        for x, y in batches
    ]
    weights = torch.tensor([y.shape[0] / total for _, y in batches], dtype=flat.theta.dtype)
    return torch.stack(rows), weights
