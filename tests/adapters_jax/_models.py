"""Tiny float64 JAX models shared by the JAX adapter tests (import after ``load_backend("jax")``).

Compiling dominates the cost of these tests on CPU, so every operator and reference is
compiled with :data:`FAST` (LLVM optimisation and XLA's fusion emitters off: about 7 times
faster to compile these models, the same numbers to rounding) and the models are as small
as the checks allow.
"""

from __future__ import annotations

import itertools
import math

import jax
import jax.numpy as jnp
import numpy as np

from eigenscope.zoo import jax as _zoo

FAST = {
    "xla_backend_optimization_level": 0,
    "xla_llvm_disable_expensive_passes": True,
    "xla_cpu_use_fusion_emitters": False,
}
# Operators in the tests: fast compiles, and vmap over the vectors (one copy of the per-vector
# program to compile; test_unrolled_equals_vmapped covers the unrolled default of CPUs).
KW = {"compiler_options": FAST, "vectorize": True}


def mlp_model(params, x):
    """``tanh`` MLP; ``params`` is a list of ``(W, b)`` with ``W`` of shape (out, in) like
    ``torch.nn.Linear`` (so that the flat vector has torch's order)."""
    h = x
    for i, (w, b) in enumerate(params):
        h = h @ w.T + b
        if i < len(params) - 1:
            h = jnp.tanh(h)
    return h


def cnn_model(params, images):
    """Two 3×3 convolutions (``lax.conv_general_dilated``, NHWC; the second with stride 2),
    ``tanh``, global average pooling and a linear head."""
    dims = ("NHWC", "HWIO", "NHWC")
    h = jnp.tanh(
        jax.lax.conv_general_dilated(images, params["c1"], (1, 1), "SAME", dimension_numbers=dims) + params["b1"]
    )
    h = jnp.tanh(jax.lax.conv_general_dilated(h, params["c2"], (2, 2), "SAME", dimension_numbers=dims) + params["b2"])
    return jnp.mean(h, axis=(1, 2)) @ params["head"] + params["bias"]


def attention_model(params, x, num_heads=2):
    """One multi-head self-attention block with a residual connection, mean pooling and a
    linear head, on inputs (B, S, d)."""
    b, s, d = x.shape
    dh = d // num_heads

    def heads(w):
        return (x @ w).reshape(b, s, num_heads, dh)

    q, k, v = heads(params["wq"]), heads(params["wk"]), heads(params["wv"])
    weights = jax.nn.softmax(jnp.einsum("bqhd,bkhd->bhqk", q, k) / math.sqrt(dh), axis=-1)
    h = x + jnp.einsum("bhqk,bkhd->bqhd", weights, v).reshape(b, s, d) @ params["wo"]
    return jnp.mean(h, axis=1) @ params["head"] + params["bias"]


def _split(x, y, batch):
    return [(x[i : i + batch], y[i : i + batch]) for i in range(0, len(y), batch)]


def mlp(sizes=(5, 6, 3), n=10, batch=4, seed=0, dtype=np.float64):
    """``(params, model_fn, output_loss, batches)`` for an MLP classifier; 10 samples in
    batches of 4, 4, 2 by default (an uneven last batch)."""
    rng = np.random.default_rng(seed)
    params = [
        (
            jnp.asarray(rng.standard_normal((b, a)) / np.sqrt(a), dtype=dtype),
            jnp.asarray(0.1 * rng.standard_normal(b), dtype=dtype),
        )
        for a, b in itertools.pairwise(sizes)
    ]
    x = rng.standard_normal((n, sizes[0]))
    y = rng.integers(0, sizes[-1], n)
    return params, mlp_model, _zoo.cross_entropy, _split(x, y, batch)


def cnn(seed=1):
    rng = np.random.default_rng(seed)
    params = {
        "c1": jnp.asarray(rng.standard_normal((3, 3, 2, 3)) / 4),
        "b1": jnp.asarray(0.1 * rng.standard_normal(3)),
        "c2": jnp.asarray(rng.standard_normal((3, 3, 3, 2)) / 5),
        "b2": jnp.asarray(0.1 * rng.standard_normal(2)),
        "head": jnp.asarray(rng.standard_normal((2, 3))),
        "bias": jnp.zeros(3),
    }
    x = rng.standard_normal((10, 5, 5, 2))
    y = rng.integers(0, 3, 10)
    return params, cnn_model, _zoo.cross_entropy, _split(x, y, 4)


def attention(seed=2):
    rng = np.random.default_rng(seed)
    d = 4
    params = {k: jnp.asarray(rng.standard_normal((d, d)) / 2) for k in ("wq", "wk", "wv", "wo")}
    params["head"] = jnp.asarray(rng.standard_normal((d, 3)) / 2)
    params["bias"] = jnp.zeros(3)
    x = rng.standard_normal((10, 3, d))
    y = rng.integers(0, 3, 10)
    return params, attention_model, _zoo.cross_entropy, _split(x, y, 4)


def wide_deep():
    """The zoo's tiny Wide&Deep: dict inputs with integer ids, BCE targets."""
    w = _zoo.workload("wide_deep", "tiny", dtype=jnp.float64)
    return w.params, w.model_fn, w.output_loss, w.batches


class Model:
    """One test model: ``loss_fn``, ``model_fn``, ``output_loss``, ``params``, ``batches``."""

    def __init__(self, name, params, model_fn, output_loss, batches):
        self.name = name
        self.params = params
        self.model_fn = model_fn
        self.output_loss = output_loss
        self.batches = batches

    def loss_fn(self, params, inputs, targets):
        return self.output_loss(self.model_fn(params, inputs), targets)


def tiny_models():
    """``name -> Model`` for an MLP, a CNN, an attention block and a Wide&Deep (float64,
    10 samples in batches of 4, 4, 2)."""
    builders = {"mlp": mlp, "cnn": cnn, "attention": attention, "wide_deep": wide_deep}
    return {name: Model(name, *build()) for name, build in builders.items()}


def random_block(n, b, seed=0, dtype=np.float64):
    return jnp.asarray(np.random.default_rng(seed).standard_normal((n, b)), dtype=dtype)


def assert_close(actual, expected, rtol=1e-10):
    actual, expected = np.asarray(actual), np.asarray(expected)
    scale = max(float(np.abs(expected).max()), 1e-300)
    err = float(np.abs(actual - expected).max())
    assert err <= rtol * scale, f"max error {err:.3g} > {rtol:.0e} * {scale:.3g}"
