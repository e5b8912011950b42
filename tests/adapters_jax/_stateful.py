"""One tiny stateful network, ``Linear(4→5) → BatchNorm(5) → tanh → Linear(5→3)``, written by
hand in pure JAX: the reference that the Flax NNX, Flax linen and Equinox versions of it are
checked against (import after ``load_backend("jax")``).

Each framework test maps its own parameter pytree onto :func:`manual`'s dict, so the dense
reference ``jax.hessian`` is taken in that framework's flat order, independently of the
adapter's helpers (train mode: each batch's statistics; eval mode: the running ones).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from eigenscope.zoo.jax import cross_entropy

from ._models import FAST

EPS = 1e-5
RUNNING_MEAN = np.linspace(-0.3, 0.4, 5)
RUNNING_VAR = np.linspace(0.5, 1.5, 5)


def data(seed=0):
    """10 samples of 4 features, 3 classes, in batches of 4, 4, 2."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((10, 4))
    y = rng.integers(0, 3, 10)
    return [(x[i : i + 4], y[i : i + 4]) for i in range(0, 10, 4)]


def manual(p, x, train):
    """The network on a batch; ``p`` holds ``w1 (4, 5), b1, scale, bias, w2 (5, 3), b2``."""
    h = x @ p["w1"] + p["b1"]
    if train:
        mean, var = jnp.mean(h, axis=0), jnp.var(h, axis=0)
    else:
        mean, var = jnp.asarray(RUNNING_MEAN), jnp.asarray(RUNNING_VAR)
    h = (h - mean) / jnp.sqrt(var + EPS) * p["scale"] + p["bias"]
    return jnp.tanh(h) @ p["w2"] + p["b2"]


def dense_hessian(params, to_manual, batches, train):
    """``∇²`` of the sample-weighted mean cross-entropy, over ``ravel_pytree(params)``."""
    theta, unravel = ravel_pytree(params)
    total = sum(len(y) for _, y in batches)

    def loss(th):
        p = to_manual(unravel(th))
        return sum(len(y) / total * cross_entropy(manual(p, jnp.asarray(x), train), jnp.asarray(y)) for x, y in batches)

    return jax.jit(jax.hessian(loss), compiler_options=FAST)(theta)


def assert_matches(op, reference, rtol=1e-10):
    """``op`` applied to the identity equals the dense ``reference`` to ``rtol`` of its size
    (the whole matrix: these networks have 53 parameters)."""
    n = reference.shape[0]
    assert op.shape == (n, n)
    dense = np.asarray(op @ jnp.eye(n, dtype=reference.dtype))
    ref = np.asarray(reference)
    err = float(np.max(np.abs(dense - ref)))
    assert err <= rtol * float(np.max(np.abs(ref))), err
    return err
