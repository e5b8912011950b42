"""Flax NNX: the trainable parameters only, BatchNorm in eval and train mode, dropout with an
explicit key; state passed as parameters is refused with the fix."""

from __future__ import annotations

import numpy as np
import pytest

from tests.conftest import load_backend

jnp = load_backend("jax")
nnx = pytest.importorskip("flax.nnx", reason="flax is not installed (extra 'flax')")

import jax  # noqa: E402

from eigenscope.adapters import jax as ejx  # noqa: E402
from eigenscope.zoo.jax import cross_entropy  # noqa: E402

from . import _stateful as st  # noqa: E402
from ._models import KW  # noqa: E402

F64 = jnp.float64


class Net(nnx.Module):
    def __init__(self, rngs, rate=0.0):
        self.l1 = nnx.Linear(4, 5, param_dtype=F64, rngs=rngs)
        self.bn = nnx.BatchNorm(5, epsilon=st.EPS, param_dtype=F64, dtype=F64, rngs=rngs)
        self.drop = nnx.Dropout(rate, rngs=rngs)
        self.l2 = nnx.Linear(5, 3, param_dtype=F64, rngs=rngs)

    def __call__(self, x):
        return self.l2(self.drop(jnp.tanh(self.bn(self.l1(x)))))


def make(rate=0.0):
    model = Net(nnx.Rngs(0), rate)
    running = {"mean": st.RUNNING_MEAN, "var": st.RUNNING_VAR}  # float64, away from 0 and 1
    stats = nnx.state(model, nnx.BatchStat)
    nnx.update(model, jax.tree_util.tree_map_with_path(lambda k, a: jnp.asarray(running[k[-2].key], F64), stats))
    bias = nnx.state(model, nnx.Param)
    nnx.update(model, jax.tree_util.tree_map(lambda a: a + 0.1, bias))  # nonzero biases, scale ≠ 1
    return model


def to_manual(p):
    return {
        "w1": p["l1"]["kernel"][...],
        "b1": p["l1"]["bias"][...],
        "scale": p["bn"]["scale"][...],
        "bias": p["bn"]["bias"][...],
        "w2": p["l2"]["kernel"][...],
        "b2": p["l2"]["bias"][...],
    }


@pytest.mark.parametrize("train", [False, True], ids=["eval", "train"])
def test_batchnorm_hessian_and_state_untouched(train):
    model = make()
    model.train() if train else model.eval()
    before = jax.tree_util.tree_map(np.asarray, nnx.state(model, nnx.BatchStat))
    loss_fn, params = ejx.nnx_loss(model, cross_entropy)
    data = st.data()
    h = ejx.hessian(loss_fn, params, data, **KW)
    assert h.shape == (53, 53)  # the 53 trainable parameters; BatchNorm statistics held fixed
    st.assert_matches(h, st.dense_hessian(params, to_manual, data, train))
    after = jax.tree_util.tree_map(np.asarray, nnx.state(model, nnx.BatchStat))
    assert jax.tree_util.tree_all(jax.tree_util.tree_map(np.array_equal, before, after))  # never written back


def test_ggn_of_nnx_model_fn():
    model = make()
    model.train()
    model_fn, params = ejx.nnx_model(model)
    data = st.data()
    g = ejx.ggn(model_fn, cross_entropy, params, data, **KW)
    h = ejx.hessian(ejx.LossFunction(model_fn, cross_entropy), params, data, **KW)
    v = jnp.asarray(np.random.default_rng(0).standard_normal((53, 2)))
    # The GGN is PSD and, for this network, differs from the Hessian.
    assert float(jnp.min(jnp.sum(v * (g @ v), axis=0))) > 0
    assert float(jnp.max(jnp.abs(g @ v - h @ v))) > 1e-6


def test_documented_split_pattern_in_train_mode():
    """The docs' manual pattern: nnx.merge(..., copy=True) works in train mode."""
    model = make()
    model.train()
    graphdef, params, rest = nnx.split(model, nnx.Param, ...)

    def loss_fn(p, x, y):
        return cross_entropy(nnx.merge(graphdef, p, rest, copy=True)(x), y)

    data = st.data()
    st.assert_matches(ejx.hessian(loss_fn, params, data, **KW), st.dense_hessian(params, to_manual, data, True))


def test_dropout_needs_an_explicit_key():
    model = make(rate=0.5)
    model.train()
    with pytest.raises(ValueError, match=r"dropout is active .*pass key=jax.random.key\(0\)"):
        ejx.nnx_loss(model, cross_entropy)
    loss_fn, params = ejx.nnx_loss(model, cross_entropy, key=jax.random.key(3))
    data = st.data()
    h = ejx.hessian(loss_fn, params, data, **KW)
    v = jnp.asarray(np.random.default_rng(1).standard_normal((53, 2)))
    first = h @ v
    assert float(jnp.max(jnp.abs(h @ v - first))) == 0.0  # one deterministic matrix
    model.eval()
    eval_fn, _ = ejx.nnx_loss(model, cross_entropy)
    assert float(jnp.max(jnp.abs(ejx.hessian(eval_fn, params, data, **KW) @ v - first))) > 1e-6  # masks act


@pytest.mark.parametrize("what", ["module", "state"])
def test_state_as_params_is_refused(what):
    model = make()
    params = model if what == "module" else nnx.state(model)
    with pytest.raises(ValueError, match=r"not an nnx.Param: .*BatchStat.*ejx.nnx_loss.*allow_state=True"):
        ejx.hessian(lambda p, x, y: 0.0, params, st.data())


def test_state_as_params_when_intended():
    model = make()
    graphdef, state, rngs = nnx.split(model, nnx.Any(nnx.Param, nnx.BatchStat), ...)

    def loss_fn(s, x, y):
        return cross_entropy(nnx.merge(graphdef, s, rngs, copy=True)(x), y)

    h = ejx.hessian(loss_fn, state, st.data(), allow_state=True, **KW)
    assert h.shape == (63, 63)  # 53 parameters + 10 running statistics


def test_tracking_during_training_compiles_once():
    """A new nnx_loss each step (new parameters, new running statistics) reuses the compiled
    products: the state is an argument of the compiled code, not a constant."""
    model = make()
    data = st.data()
    v = jnp.asarray(np.random.default_rng(2).standard_normal(53))
    traces, tops = [], []
    for _ in range(3):
        loss_fn, params = ejx.nnx_loss(model, cross_entropy)
        h = ejx.hessian(loss_fn, params, data, **KW)
        tops.append(float(v @ (h @ v)))
        traces.append(h.num_traces)
        stats = nnx.state(model, nnx.BatchStat)
        nnx.update(model, jax.tree_util.tree_map(lambda a: a * 1.1, stats))
        nnx.update(model, jax.tree_util.tree_map(lambda a: a * 0.9, nnx.state(model, nnx.Param)))
    assert traces == [1, 0, 0]  # one program for the pass over the data
    assert len(set(tops)) == 3  # each at its own parameters and statistics
