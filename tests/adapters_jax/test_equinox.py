"""Equinox: the inexact arrays only, a stateful BatchNorm (``eqx.nn.State``) in inference and
training mode, the module mapped over the samples; state and whole modules refused."""

from __future__ import annotations

import numpy as np
import pytest

from tests.conftest import load_backend

jnp = load_backend("jax")
eqx = pytest.importorskip("equinox", reason="equinox is not installed (extra 'equinox')")

import jax  # noqa: E402

from eigenscope.adapters import jax as ejx  # noqa: E402
from eigenscope.zoo.jax import cross_entropy  # noqa: E402

from . import _reference as ref  # noqa: E402
from . import _stateful as st  # noqa: E402
from ._models import KW  # noqa: E402

F64 = jnp.float64


class Net(eqx.Module):
    l1: eqx.nn.Linear
    bn: eqx.nn.BatchNorm
    l2: eqx.nn.Linear

    def __init__(self, key):
        k1, k2 = jax.random.split(key)
        self.l1 = eqx.nn.Linear(4, 5, dtype=F64, key=k1)
        self.bn = eqx.nn.BatchNorm(5, axis_name="batch", eps=st.EPS, dtype=F64, mode="ema")
        self.l2 = eqx.nn.Linear(5, 3, dtype=F64, key=k2)

    def __call__(self, x, state):
        h, state = self.bn(self.l1(x), state)
        return self.l2(jnp.tanh(h)), state


def make():
    model, state = eqx.nn.make_with_state(Net)(jax.random.key(0))
    model = jax.tree_util.tree_map(lambda a: a + 0.1 if eqx.is_inexact_array(a) else a, model)
    running = (jnp.asarray(st.RUNNING_MEAN), jnp.asarray(st.RUNNING_VAR))
    # The running statistics (inference); the state is fresh, so training normalises with the
    # batch's own statistics (Equinox's "ema" mode mixes in the running ones after the first step).
    state = state.set(model.bn.ema_state_index, running)
    return model, state


def to_manual(p):
    return {
        "w1": p.l1.weight.T,
        "b1": p.l1.bias,
        "scale": p.bn.weight,
        "bias": p.bn.bias,
        "w2": p.l2.weight.T,
        "b2": p.l2.bias,
    }


@pytest.mark.parametrize("train", [False, True], ids=["inference", "train"])
def test_batchnorm_hessian(train):
    model, state = make()
    if not train:
        model = eqx.nn.inference_mode(model)
    loss_fn, params = ejx.equinox_loss(model, cross_entropy, state=state)
    data = st.data()
    h = ejx.hessian(loss_fn, params, data, **KW)
    st.assert_matches(h, st.dense_hessian(params, to_manual, data, train))


def test_mlp_ggn_equals_dense():
    model = eqx.nn.MLP(4, 3, 5, 1, activation=jnp.tanh, dtype=F64, key=jax.random.key(0))
    model_fn, params = ejx.equinox_model(model)
    data = st.data()
    g = ejx.ggn(model_fn, cross_entropy, params, data, **KW)

    v = jnp.asarray(np.random.default_rng(0).standard_normal((g.shape[0], 2)))
    static = eqx.filter(model, eqx.is_inexact_array, inverse=True)
    dense = ref.dense_ggn(lambda p, x: jax.vmap(eqx.combine(p, static))(x), cross_entropy, params, data)
    assert float(jnp.max(jnp.abs(g @ v - dense @ v))) <= 1e-10 * float(jnp.max(jnp.abs(dense @ v)))


def test_state_and_whole_module_refused():
    model, state = make()
    with pytest.raises(ValueError, match=r"Equinox nn.State.*ejx.equinox_loss.*allow_state=True"):
        ejx.hessian(lambda p, x, y: 0.0, (eqx.filter(model, eqx.is_inexact_array), state), st.data())
    mlp = eqx.nn.MLP(4, 3, 5, 1, dtype=F64, key=jax.random.key(0))
    with pytest.raises(TypeError, match=r"not an array; pass only the trainable arrays: .*ejx.equinox_loss"):
        ejx.hessian(lambda p, x, y: 0.0, mlp, st.data())
