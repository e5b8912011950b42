"""Flax (NNX and Linen) and Equinox models through the few-line wrappers of ``docs/jax.md``,
and the two examples; each skips when its framework is not installed."""

from __future__ import annotations

import runpy
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import load_backend

jnp = load_backend("jax")

import jax  # noqa: E402
from jax.flatten_util import ravel_pytree  # noqa: E402

from eigenscope.adapters import jax as ejx  # noqa: E402
from eigenscope.zoo.jax import cross_entropy  # noqa: E402

from . import _reference as ref  # noqa: E402
from ._models import KW, assert_close, random_block  # noqa: E402

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _data(seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((10, 4))
    y = rng.integers(0, 3, 10)
    return [(x[i : i + 4], y[i : i + 4]) for i in range(0, 10, 4)]  # 4, 4, 2


def _check(model_fn, params, data):
    """Hessian and GGN products of the wrapped model against dense references."""

    def loss_fn(p, x, y):
        return cross_entropy(model_fn(p, x), y)

    h = ejx.hessian(loss_fn, params, data, **KW)
    assert h.shape[0] == ravel_pytree(params)[0].shape[0] and h.dtype == jnp.float64
    v = random_block(h.shape[0], 3)
    assert_close(h @ v, ref.dense_hessian(loss_fn, params, data) @ v)
    g = ejx.ggn(model_fn, cross_entropy, params, data, **KW)
    assert_close(g @ v, ref.dense_ggn(model_fn, cross_entropy, params, data) @ v)
    assert jax.tree_util.tree_structure(h.unflatten(v[:, 0])) == jax.tree_util.tree_structure(params)


def test_flax_nnx():
    nnx = pytest.importorskip("flax.nnx", reason="flax is not installed (extra 'flax')")

    class MLP(nnx.Module):
        def __init__(self, rngs):
            self.l1 = nnx.Linear(4, 5, param_dtype=jnp.float64, rngs=rngs)
            self.l2 = nnx.Linear(5, 3, param_dtype=jnp.float64, rngs=rngs)

        def __call__(self, x):
            return self.l2(jnp.tanh(self.l1(x)))

    graphdef, params, rest = nnx.split(MLP(nnx.Rngs(0)), nnx.Param, ...)

    def model_fn(params, x):
        return nnx.merge(graphdef, params, rest)(x)

    _check(model_fn, params, _data())


def test_flax_linen():
    nn = pytest.importorskip("flax.linen", reason="flax is not installed (extra 'flax')")

    class MLP(nn.Module):
        @nn.compact
        def __call__(self, x):
            x = jnp.tanh(nn.Dense(5, param_dtype=jnp.float64)(x))
            return nn.Dense(3, param_dtype=jnp.float64)(x)

    model = MLP()
    params = model.init(jax.random.key(0), jnp.zeros((1, 4)))["params"]

    def model_fn(params, x):
        return model.apply({"params": params}, x)

    _check(model_fn, params, _data())


def test_equinox():
    eqx = pytest.importorskip("equinox", reason="equinox is not installed (extra 'equinox')")
    model = eqx.nn.MLP(4, 3, 5, 1, activation=jnp.tanh, dtype=jnp.float64, key=jax.random.key(0))
    params, static = eqx.partition(model, eqx.is_inexact_array)

    def model_fn(params, x):
        return jax.vmap(eqx.combine(params, static))(x)

    _check(model_fn, params, _data())


def _example(name):
    return runpy.run_path(str(EXAMPLES / name))  # defines main() without running it


def test_flax_example():
    pytest.importorskip("flax.nnx", reason="flax is not installed (extra 'flax')")
    out = _example("jax_flax.py")["main"](**KW)
    values = out["eigenvalues"]
    assert values.shape == (3,) and np.all(np.diff(values) <= 0) and values[0] > 0
    assert out["trace_ggn"].estimate > 0 and out["trace_fisher"].estimate > 0
    assert abs(sum(out["share"].values()) - 1.0) < 1e-4  # a unit eigenvector, split by layer


def test_equinox_example():
    pytest.importorskip("equinox", reason="equinox is not installed (extra 'equinox')")
    out = _example("jax_equinox.py")["main"](**KW)
    assert out["ends"].shape == (4,) and out["top_ggn"] > 0
    assert 0.0 <= out["density"].negative_mass() <= 1.0
