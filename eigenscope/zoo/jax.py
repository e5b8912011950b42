"""Small JAX reference workloads (plain JAX, no framework): the JAX versions of the
benchmark workloads W1–W3 of ``BENCHMARKS.md``, for tests and benchmarks.

- ``"cnn"`` (W1): a residual CNN with ``jax.lax.conv_general_dilated`` (NHWC), a per-channel
  affine after each convolution (what BatchNorm is in eval mode), ReLU, global average
  pooling and a linear head; cross-entropy.
- ``"transformer"`` (W2): a pre-LayerNorm Transformer encoder classifier (token and position
  embeddings, multi-head self-attention, GELU MLP, mean pooling); cross-entropy.
- ``"wide_deep"`` (W3): Wide&Deep with one embedding table per categorical field, a wide
  linear part over the ids and dense features, and an MLP; BCE with logits.

Weights and data come from a NumPy generator seeded with ``seed``: the same on every run.

>>> from eigenscope.zoo import jax as zoo_jax                 # doctest: +SKIP
>>> w = zoo_jax.workload("W2", size="tiny")                     # doctest: +SKIP
>>> H = ejx.hessian(w.loss_fn, w.params, w.batches)             # doctest: +SKIP
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np


class Workload(NamedTuple):
    """A model as pure functions, its parameters and its batches.

    Attributes
    ----------
    name
        ``"cnn"``, ``"transformer"`` or ``"wide_deep"``.
    params
        The parameter pytree.
    model_fn
        ``model_fn(params, inputs) -> outputs``.
    output_loss
        ``output_loss(outputs, targets) -> mean loss``.
    batches
        A list of ``(inputs, targets)`` (NumPy arrays; W3's inputs are a dict).
    """

    name: str
    params: Any
    model_fn: Callable[[Any, Any], jax.Array]
    output_loss: Callable[[jax.Array, Any], jax.Array]
    batches: list[tuple[Any, Any]]

    def loss_fn(self, params: Any, inputs: Any, targets: Any) -> jax.Array:
        """``output_loss(model_fn(params, inputs), targets)``: the batch's mean loss."""
        return self.output_loss(self.model_fn(params, inputs), targets)

    @property
    def num_params(self) -> int:
        """Number of parameters."""
        return sum(int(np.prod(a.shape)) for a in jax.tree_util.tree_leaves(self.params))

    @property
    def num_samples(self) -> int:
        """Number of samples over all batches."""
        return sum(int(jax.tree_util.tree_leaves(y)[0].shape[0]) for _, y in self.batches)


def cross_entropy(logits: jax.Array, labels: jax.Array) -> jax.Array:
    """Mean cross-entropy of integer ``labels`` (B,) under ``logits`` (B, C)."""
    logp = jax.nn.log_softmax(logits, axis=-1)
    return -jnp.mean(jnp.take_along_axis(logp, labels[:, None], axis=-1))


def bce_with_logits(logits: jax.Array, labels: jax.Array) -> jax.Array:
    """Mean binary cross-entropy of 0/1 ``labels`` under ``logits`` (both (B,))."""
    return jnp.mean(jax.nn.softplus(logits) - labels * logits)


def _split(n: int, batch: int) -> list[slice]:
    return [slice(i, min(i + batch, n)) for i in range(0, n, batch)]


class _Init:
    """Seeded weights as ``dtype`` JAX arrays."""

    def __init__(self, seed: int, dtype: Any) -> None:
        self.rng = np.random.default_rng(seed)
        self.dtype = dtype

    def normal(self, shape: tuple[int, ...], fan_in: int) -> jax.Array:
        return jnp.asarray(self.rng.standard_normal(shape) / math.sqrt(fan_in), dtype=self.dtype)

    def const(self, shape: tuple[int, ...], value: float) -> jax.Array:
        return jnp.full(shape, value, dtype=self.dtype)


# ---- W1: residual CNN ----------------------------------------------------------------------
def _conv(x: jax.Array, w: jax.Array, stride: int = 1) -> jax.Array:
    return jax.lax.conv_general_dilated(x, w, (stride, stride), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC"))


def _conv_affine(init: _Init, cin: int, cout: int) -> dict[str, jax.Array]:
    return {
        "w": init.normal((3, 3, cin, cout), 9 * cin / 2),
        "scale": init.const((cout,), 1.0),
        "shift": init.const((cout,), 0.0),
    }


def _apply_conv(p: dict[str, jax.Array], x: jax.Array, stride: int = 1) -> jax.Array:
    return _conv(x, p["w"], stride) * p["scale"] + p["shift"]


def cnn_model(params: Any, images: jax.Array) -> jax.Array:
    """Logits (B, C) of images (B, H, W, 3)."""
    h = jax.nn.relu(_apply_conv(params["stem"], images))
    for stage in params["stages"]:
        if "down" in stage:
            h = jax.nn.relu(_apply_conv(stage["down"], h, stride=2))
        r = jax.nn.relu(_apply_conv(stage["conv1"], h))
        h = jax.nn.relu(h + _apply_conv(stage["conv2"], r))
    pooled = jnp.mean(h, axis=(1, 2))
    return pooled @ params["head"]["w"] + params["head"]["b"]


def _cnn(size: str, seed: int, dtype: Any) -> Workload:
    cfg = {
        "tiny": {"widths": (2, 3), "classes": 3, "image": 6, "n": 10, "batch": 4},
        "default": {"widths": (16, 32, 64), "classes": 10, "image": 32, "n": 512, "batch": 256},
    }[size]
    init = _Init(seed, dtype)
    widths = cfg["widths"]
    stages = []
    for i, w in enumerate(widths):
        stage = {"conv1": _conv_affine(init, w, w), "conv2": _conv_affine(init, w, w)}
        if i > 0:
            stage["down"] = _conv_affine(init, widths[i - 1], w)
        stages.append(stage)
    params = {
        "stem": _conv_affine(init, 3, widths[0]),
        "stages": stages,
        "head": {"w": init.normal((widths[-1], cfg["classes"]), widths[-1]), "b": init.const((cfg["classes"],), 0.0)},
    }
    n, s = cfg["n"], cfg["image"]
    x = init.rng.standard_normal((n, s, s, 3)).astype(np.dtype(dtype))
    y = init.rng.integers(0, cfg["classes"], n)
    return Workload("cnn", params, cnn_model, cross_entropy, [(x[i], y[i]) for i in _split(n, cfg["batch"])])


# ---- W2: Transformer encoder classifier ------------------------------------------------------
def _layer_norm(p: dict[str, jax.Array], x: jax.Array) -> jax.Array:
    mu = jnp.mean(x, axis=-1, keepdims=True)
    var = jnp.mean((x - mu) ** 2, axis=-1, keepdims=True)
    return (x - mu) * jax.lax.rsqrt(var + 1e-5) * p["g"] + p["b"]


def attention(p: dict[str, jax.Array], x: jax.Array, num_heads: int) -> jax.Array:
    """Multi-head self-attention of ``x`` (B, S, d)."""
    b, s, d = x.shape
    qkv = (x @ p["wqkv"] + p["bqkv"]).reshape(b, s, 3, num_heads, d // num_heads)
    q, k, v = qkv[:, :, 0], qkv[:, :, 1], qkv[:, :, 2]  # (B, S, heads, dh)
    scores = jnp.einsum("bqhd,bkhd->bhqk", q, k) / math.sqrt(d // num_heads)
    out = jnp.einsum("bhqk,bkhd->bqhd", jax.nn.softmax(scores, axis=-1), v).reshape(b, s, d)
    return out @ p["wo"] + p["bo"]


def transformer_model(params: Any, tokens: jax.Array, num_heads: int) -> jax.Array:
    """Logits (B, C) of token ids (B, S)."""
    h = params["embed"][tokens] + params["pos"]
    for layer in params["layers"]:
        h = h + attention(layer["attn"], _layer_norm(layer["ln1"], h), num_heads)
        m = _layer_norm(layer["ln2"], h)
        h = h + jax.nn.gelu(m @ layer["w1"] + layer["b1"]) @ layer["w2"] + layer["b2"]
    pooled = jnp.mean(_layer_norm(params["ln_f"], h), axis=1)
    return pooled @ params["head"]["w"] + params["head"]["b"]


def _transformer(size: str, seed: int, dtype: Any) -> Workload:
    cfg = {
        "tiny": {"vocab": 11, "seq": 5, "d": 4, "heads": 2, "ff": 8, "layers": 1, "classes": 3, "n": 10, "batch": 4},
        "default": {
            "vocab": 1000,
            "seq": 32,
            "d": 64,
            "heads": 4,
            "ff": 256,
            "layers": 2,
            "classes": 10,
            "n": 512,
            "batch": 128,
        },
    }[size]
    init = _Init(seed, dtype)
    d, ff = cfg["d"], cfg["ff"]

    def ln() -> dict[str, jax.Array]:
        return {"g": init.const((d,), 1.0), "b": init.const((d,), 0.0)}

    layers = [
        {
            "ln1": ln(),
            "attn": {
                "wqkv": init.normal((d, 3 * d), d),
                "bqkv": init.const((3 * d,), 0.0),
                "wo": init.normal((d, d), d),
                "bo": init.const((d,), 0.0),
            },
            "ln2": ln(),
            "w1": init.normal((d, ff), d),
            "b1": init.const((ff,), 0.0),
            "w2": init.normal((ff, d), ff),
            "b2": init.const((d,), 0.0),
        }
        for _ in range(cfg["layers"])
    ]
    params = {
        "embed": init.normal((cfg["vocab"], d), 1),
        "pos": init.normal((cfg["seq"], d), 1) * 0.1,
        "layers": layers,
        "ln_f": ln(),
        "head": {"w": init.normal((d, cfg["classes"]), d), "b": init.const((cfg["classes"],), 0.0)},
    }
    n = cfg["n"]
    x = init.rng.integers(0, cfg["vocab"], (n, cfg["seq"]))
    y = init.rng.integers(0, cfg["classes"], n)
    heads = cfg["heads"]

    def model_fn(p: Any, tokens: jax.Array) -> jax.Array:
        return transformer_model(p, tokens, heads)

    return Workload("transformer", params, model_fn, cross_entropy, [(x[i], y[i]) for i in _split(n, cfg["batch"])])


# ---- W3: Wide&Deep ---------------------------------------------------------------------------
def wide_deep_model(params: Any, inputs: dict[str, jax.Array]) -> jax.Array:
    """Logits (B,) of ``{"ids": (B, F) int, "dense": (B, D)}``."""
    ids, dense = inputs["ids"], inputs["dense"]
    fields = jnp.arange(ids.shape[1])[None, :]
    emb = params["embed"][fields, ids]  # (B, F, dim): one table per field
    h = jnp.concatenate([emb.reshape(ids.shape[0], -1), dense], axis=1)
    for i, layer in enumerate(params["mlp"]):
        h = h @ layer["w"] + layer["b"]
        if i < len(params["mlp"]) - 1:
            h = jax.nn.relu(h)
    wide = jnp.sum(params["wide"]["ids"][fields, ids], axis=1) + dense @ params["wide"]["dense"] + params["wide"]["b"]
    return h[:, 0] + wide


def _wide_deep(size: str, seed: int, dtype: Any) -> Workload:
    cfg = {
        "tiny": {"fields": 3, "ids": 5, "dim": 2, "dense": 2, "hidden": (4,), "n": 10, "batch": 4},
        "default": {"fields": 8, "ids": 1000, "dim": 16, "dense": 4, "hidden": (64, 32), "n": 4096, "batch": 1024},
    }[size]
    init = _Init(seed, dtype)
    f, dim, nd = cfg["fields"], cfg["dim"], cfg["dense"]
    sizes = [f * dim + nd, *cfg["hidden"], 1]
    params = {
        "embed": init.normal((f, cfg["ids"], dim), 1) * 0.1,
        "wide": {"ids": init.const((f, cfg["ids"]), 0.0), "dense": init.const((nd,), 0.0), "b": init.const((), 0.0)},
        "mlp": [{"w": init.normal((a, b), a), "b": init.const((b,), 0.0)} for a, b in itertools.pairwise(sizes)],
    }
    n = cfg["n"]
    ids = init.rng.integers(0, cfg["ids"], (n, f))
    dense = init.rng.standard_normal((n, nd)).astype(np.dtype(dtype))
    y = (init.rng.random(n) < 0.3).astype(np.dtype(dtype))
    batches = [({"ids": ids[i], "dense": dense[i]}, y[i]) for i in _split(n, cfg["batch"])]
    return Workload("wide_deep", params, wide_deep_model, bce_with_logits, batches)


_BUILDERS = {"cnn": _cnn, "transformer": _transformer, "wide_deep": _wide_deep}
ALIASES = {"W1": "cnn", "W2": "transformer", "W3": "wide_deep"}


def workload(name: str, size: str = "default", seed: int = 0, *, dtype: Any = jnp.float32) -> Workload:
    """Build a JAX workload: ``"cnn"`` (``"W1"``), ``"transformer"`` (``"W2"``) or ``"wide_deep"``
    (``"W3"``) at ``size`` ``"tiny"`` (tens to hundreds of parameters, 10 samples in batches of
    4, 4, 2: for tests) or ``"default"`` (the CPU sizes of ``BENCHMARKS.md``)."""
    key = ALIASES.get(name, name)
    if key not in _BUILDERS:
        raise ValueError(f"unknown workload {name!r}; use one of {sorted(_BUILDERS)} or {sorted(ALIASES)}")
    if size not in ("tiny", "default"):
        raise ValueError(f"size must be 'tiny' or 'default', got {size!r}")
    return _BUILDERS[key](size, seed, dtype)
