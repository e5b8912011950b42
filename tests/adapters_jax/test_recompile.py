"""Sharpness tracking: a new but equal loss function each step reuses the compiled code; one
that can only be compared by identity is reported once; model state is an argument."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from tests.conftest import load_backend

jnp = load_backend("jax")

import jax  # noqa: E402

from eigenscope.adapters import jax as ejx  # noqa: E402

from ._models import KW, mlp, random_block  # noqa: E402


def _step(params):
    return [(w * 0.99, b + 0.01) for w, b in params]


def test_new_equal_lambda_each_step_compiles_once():
    params, model_fn, output_loss, batches = mlp(seed=11)
    v = random_block(sum(w.size + b.size for w, b in params), 1)[:, 0]
    traces = []
    for _ in range(3):
        h = ejx.hessian(lambda p, x, y: output_loss(model_fn(p, x), y), params, batches, **KW)
        h @ v
        traces.append(h.num_traces)
        params = _step(params)
    assert traces == [1, 0, 0]  # the pass over the data (two batch shapes), compiled at the first step only


def test_closure_over_arrays_warns_once():
    params, model_fn, output_loss, batches = mlp(seed=12)
    scale = jnp.asarray(2.0)
    v = random_block(sum(w.size + b.size for w, b in params), 1)[:, 0]

    def build(scale):
        return ejx.hessian(lambda p, x, y: scale * output_loss(model_fn(p, x), y), params, batches, **KW)

    build(scale) @ v
    with pytest.warns(ejx.RecompilationWarning, match=r"closes over 'scale', an array.*Define the function once"):
        build(scale + 1.0) @ v
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        build(scale + 2.0) @ v  # once per code object


def test_pytree_state_is_an_argument():
    """A function carrying arrays as a pytree (jax.tree_util.Partial, or the helpers'
    ModelFunction) is rebuilt around new arrays without compiling."""
    params, model_fn, output_loss, batches = mlp(seed=13)

    def scaled(scale, p, x, y):
        return scale * output_loss(model_fn(p, x), y)

    v = random_block(sum(w.size + b.size for w, b in params), 1)[:, 0]
    h1 = ejx.hessian(jax.tree_util.Partial(scaled, jnp.asarray(1.0)), params, batches, **KW)
    y1 = h1 @ v
    h3 = ejx.hessian(jax.tree_util.Partial(scaled, jnp.asarray(3.0)), params, batches, **KW)
    y3 = h3 @ v
    assert h1.num_traces == 1 and h3.num_traces == 0
    np.testing.assert_allclose(np.asarray(y3), 3.0 * np.asarray(y1), rtol=1e-12)


def test_closure_over_a_mutable_object_is_not_reused():
    """An object compared by identity may have changed: the new function is compiled again
    (and reported), never evaluated with the old object's values baked in."""
    params, model_fn, output_loss, batches = mlp(seed=14)

    class Settings:
        scale = 1.0

    settings = Settings()
    v = random_block(sum(w.size + b.size for w, b in params), 1)[:, 0]

    def build():
        return ejx.hessian(lambda p, x, y: settings.scale * output_loss(model_fn(p, x), y), params, batches, **KW)

    y1 = build() @ v
    settings.scale = 2.0
    with pytest.warns(ejx.RecompilationWarning, match="compared by identity"):
        y2 = build() @ v
    np.testing.assert_allclose(np.asarray(y2), 2.0 * np.asarray(y1), rtol=1e-12)
