"""Dense float64 references built independently of the adapters: ``jax.hessian``,
``jax.jacfwd`` and explicit per-sample gradients (``jax.vmap(jax.grad)``) on a function of
the flat vector, each compiled whole with the tests' fast compiler options."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree

from ._models import FAST


def _jit(f):
    return jax.jit(f, compiler_options=FAST)


def _device(batches):
    return [(jax.tree_util.tree_map(jnp.asarray, x), jnp.asarray(y)) for x, y in batches]


def _weights(batches):
    sizes = [y.shape[0] for _, y in batches]
    return [s / sum(sizes) for s in sizes]


def full_loss(loss_fn, unravel, batches):
    """``θ -> Σ_b (n_b/N) L_b(θ)``."""
    batches = _device(batches)
    weights = _weights(batches)
    return lambda theta: sum(w * loss_fn(unravel(theta), x, y) for w, (x, y) in zip(weights, batches, strict=True))


def dense_hessian(loss_fn, params, batches):
    theta, unravel = ravel_pytree(params)
    return _jit(jax.hessian(full_loss(loss_fn, unravel, batches)))(theta)


def dense_loss(loss_fn, params, batches):
    theta, unravel = ravel_pytree(params)
    return _jit(full_loss(loss_fn, unravel, batches))(theta)


def dense_gradient(loss_fn, params, batches):
    theta, unravel = ravel_pytree(params)
    return _jit(jax.grad(full_loss(loss_fn, unravel, batches)))(theta)


def dense_ggn(model_fn, output_loss, params, batches):
    """``Σ_b (n_b/N) J_bᵀ H_ℓ J_b`` from explicit Jacobians and output Hessians."""
    theta, unravel = ravel_pytree(params)
    pairs = list(zip(_weights(batches), _device(batches), strict=True))

    def ggn(theta):
        total = 0.0
        for w, (x, y) in pairs:
            out = model_fn(unravel(theta), x)
            jac = jax.jacfwd(lambda th, x=x: model_fn(unravel(th), x))(theta).reshape(out.size, theta.size)
            h_out = jax.hessian(lambda o, y=y, s=out.shape: output_loss(o.reshape(s), y))(out.reshape(-1))
            total = total + w * jac.T @ h_out @ jac
        return total

    return _jit(ggn)(theta)


def per_sample_gradients(loss_fn, params, batches):
    """``(N, n)``: row i is ``∇ℓᵢ``, ℓᵢ the loss of sample i as a batch of one."""
    theta, unravel = ravel_pytree(params)

    def single(th, x, y):
        one = lambda a: a[None]  # noqa: E731
        return loss_fn(unravel(th), jax.tree_util.tree_map(one, x), one(y))

    data = _device(batches)

    def grads(theta):
        return jnp.concatenate([jax.vmap(jax.grad(single), in_axes=(None, 0, 0))(theta, x, y) for x, y in data])

    return _jit(grads)(theta)


def batch_gradients(loss_fn, params, batches):
    """``[(n_b/N, g_b)]`` with ``g_b`` the gradient of batch b's mean loss."""
    theta, unravel = ravel_pytree(params)
    pairs = list(zip(_weights(batches), _device(batches), strict=True))
    grads = _jit(lambda th: [jax.grad(lambda t, x=x, y=y: loss_fn(unravel(t), x, y))(th) for _, (x, y) in pairs])(theta)
    return [(w, g) for (w, _), g in zip(pairs, grads, strict=True)]
