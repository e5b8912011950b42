"""Curvature spectra of a Flax NNX model with eigenscope.

``ejx.nnx_loss`` and ``ejx.nnx_model`` split the model into its parameters (an ``nnx.State``
pytree, what eigenscope differentiates) and the rest, held fixed; BatchNorm statistics and
RNG state are never written back, and train-mode dropout takes an explicit ``key=``::

    loss_fn, params = ejx.nnx_loss(model, cross_entropy)
    model_fn, params = ejx.nnx_model(model)

Run with ``python examples/jax_flax.py`` (needs ``flax``).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

import eigenscope as es
from eigenscope.adapters import jax as ejx


class MLP(nnx.Module):
    """A two-hidden-layer tanh classifier."""

    def __init__(self, sizes: tuple[int, int, int, int], *, rngs: nnx.Rngs) -> None:
        self.l1 = nnx.Linear(sizes[0], sizes[1], rngs=rngs)
        self.l2 = nnx.Linear(sizes[1], sizes[2], rngs=rngs)
        self.l3 = nnx.Linear(sizes[2], sizes[3], rngs=rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        return self.l3(jnp.tanh(self.l2(jnp.tanh(self.l1(x)))))


def cross_entropy(logits: jax.Array, labels: jax.Array) -> jax.Array:
    """Mean cross-entropy of integer labels."""
    logp = jax.nn.log_softmax(logits)
    return -jnp.mean(jnp.take_along_axis(logp, labels[:, None], axis=1))


def make_data(n: int = 200, batch: int = 64, seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    """A synthetic 3-class problem (labels from a random linear teacher), in batches of 64
    (the last one holds 8: batches of unequal size are weighted by their size)."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 10)).astype(np.float32)
    y = np.argmax(x @ rng.standard_normal((10, 3)), axis=1)
    return [(x[i : i + batch], y[i : i + batch]) for i in range(0, n, batch)]


def main(**options: Any) -> dict[str, Any]:
    """Top Hessian eigenvalues, GGN and gradient-covariance traces; ``options`` go to the
    adapters (e.g. ``compiler_options``)."""
    model = MLP((10, 16, 16, 3), rngs=nnx.Rngs(0))
    data = make_data()

    # Pure functions of the parameter pytree; the rest of the model's state is held fixed.
    loss_fn, params = ejx.nnx_loss(model, cross_entropy)
    model_fn, _ = ejx.nnx_model(model)

    hessian = ejx.hessian(loss_fn, params, data, **options)
    top = es.eigsh(hessian, k=3, seed=0)
    ggn = ejx.ggn(model_fn, cross_entropy, params, data, **options)
    fisher = ejx.gradient_covariance(loss_fn, params, data, **options)
    trace_ggn = es.trace(ggn, 30, seed=0)
    trace_fisher = es.trace(fisher, 30, seed=0)

    # An eigenvector back as an nnx.State: how much of it lies in each layer.
    direction = hessian.unflatten(top.eigenvectors[:, 0])
    share = {
        layer: float(sum(jnp.sum(a**2) for a in jax.tree_util.tree_leaves(direction[layer])))
        for layer in ("l1", "l2", "l3")
    }

    print(f"{hessian.num_params} parameters, {hessian.num_samples} samples in batches {hessian.batch_sizes}")
    print("top Hessian eigenvalues:", np.round(top.eigenvalues, 5), f"({top.num_matvecs} products)")
    print(f"trace of the GGN: {trace_ggn.estimate:.4f} ± {trace_ggn.std_error:.4f}")
    print(f"trace of the gradient second moment: {trace_fisher.estimate:.4f} ± {trace_fisher.std_error:.4f}")
    print("share of the top eigenvector per layer:", {k: round(v, 3) for k, v in share.items()})
    return {"eigenvalues": top.eigenvalues, "trace_ggn": trace_ggn, "trace_fisher": trace_fisher, "share": share}


if __name__ == "__main__":
    main()
