"""Flax linen: ``variables["params"]`` only, BatchNorm in eval mode and in train mode with
``mutable``, dropout through ``rngs``; the whole variables dict is refused with the fix."""

from __future__ import annotations

import numpy as np
import pytest

from tests.conftest import load_backend

jnp = load_backend("jax")
nn = pytest.importorskip("flax.linen", reason="flax is not installed (extra 'flax')")

import jax  # noqa: E402

from eigenscope.adapters import jax as ejx  # noqa: E402
from eigenscope.zoo.jax import cross_entropy  # noqa: E402

from . import _stateful as st  # noqa: E402
from ._models import KW  # noqa: E402

F64 = jnp.float64


class Net(nn.Module):
    rate: float = 0.0

    @nn.compact
    def __call__(self, x, train=False):
        h = nn.Dense(5, param_dtype=F64, dtype=F64)(x)
        h = nn.BatchNorm(use_running_average=not train, epsilon=st.EPS, param_dtype=F64, dtype=F64)(h)
        h = nn.Dropout(self.rate, deterministic=not train)(jnp.tanh(h))
        return nn.Dense(3, param_dtype=F64, dtype=F64)(h)


def make(rate=0.0):
    model = Net(rate)
    variables = model.init(jax.random.key(0), jnp.zeros((1, 4), F64))
    params = jax.tree_util.tree_map(lambda a: a + 0.1, variables["params"])
    stats = {"BatchNorm_0": {"mean": jnp.asarray(st.RUNNING_MEAN), "var": jnp.asarray(st.RUNNING_VAR)}}
    return model, {"params": params, "batch_stats": stats}


def to_manual(p):
    return {
        "w1": p["Dense_0"]["kernel"],
        "b1": p["Dense_0"]["bias"],
        "scale": p["BatchNorm_0"]["scale"],
        "bias": p["BatchNorm_0"]["bias"],
        "w2": p["Dense_1"]["kernel"],
        "b2": p["Dense_1"]["bias"],
    }


@pytest.mark.parametrize("train", [False, True], ids=["eval", "train"])
def test_batchnorm_hessian(train):
    model, variables = make()
    extra = {"mutable": ["batch_stats"], "train": True} if train else {}
    loss_fn, params = ejx.linen_loss(model, variables, cross_entropy, **extra)
    data = st.data()
    h = ejx.hessian(loss_fn, params, data, **KW)
    st.assert_matches(h, st.dense_hessian(params, to_manual, data, train))
    assert np.array_equal(variables["batch_stats"]["BatchNorm_0"]["mean"], st.RUNNING_MEAN)  # never written back


def test_dropout_with_rngs_is_deterministic():
    model, variables = make(rate=0.5)
    loss_fn, params = ejx.linen_loss(
        model, variables, cross_entropy, mutable=["batch_stats"], rngs={"dropout": jax.random.key(1)}, train=True
    )
    h = ejx.hessian(loss_fn, params, st.data(), **KW)
    v = jnp.asarray(np.random.default_rng(0).standard_normal((53, 2)))
    assert float(jnp.max(jnp.abs(h @ v - h @ v))) == 0.0


def test_variables_dict_is_refused():
    model, variables = make()
    with pytest.raises(ValueError, match=r"linen variables dict.*\['batch_stats'\].*ejx.linen_loss.*allow_state=True"):
        ejx.hessian(lambda p, x, y: 0.0, variables, st.data())
    h = ejx.hessian(lambda v, x, y: cross_entropy(model.apply(v, x), y), variables, st.data(), allow_state=True, **KW)
    assert h.shape == (63, 63)  # running statistics included, as asked
