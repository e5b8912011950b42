"""The per-batch product is traced (compiled) once per batch shape and block width, never per
call, and shared by operators built from the same functions."""

from __future__ import annotations

import pytest

from tests.conftest import load_backend

jnp = load_backend("jax")

from eigenscope.adapters import jax as ejx  # noqa: E402

from ._models import KW, mlp, random_block  # noqa: E402


def test_traced_once_per_block_width_for_the_whole_pass():
    params, model_fn, output_loss, batches = mlp(n=10, batch=4)  # shapes 4, 4, 2: two signatures
    calls = {"loss": 0}

    def loss_fn(p, x, y):
        calls["loss"] += 1  # runs only while JAX traces loss_fn
        return output_loss(model_fn(p, x), y)

    h = ejx.hessian(loss_fn, params, batches, **KW)
    assert h.num_batch_shapes == 2 and h.num_traces == 0
    v = random_block(h.shape[0], 3)
    h @ v
    assert h.num_traces == 1  # one program for the pass over the data (a scan per batch shape)
    after_first = calls["loss"]
    for _ in range(3):
        h @ (2.0 * v)
    assert h.num_traces == 1 and calls["loss"] == after_first  # no retrace on later calls
    h @ v[:, 0]  # a vector is a new signature: one trace
    h @ v[:, 1]
    assert h.num_traces == 2
    traced = calls["loss"]

    # A new operator at new parameters of the same model reuses the compiled code.
    shifted = [(w + 0.1, b) for w, b in params]
    h2 = ejx.hessian(loss_fn, shifted, batches, **KW)
    y = h2 @ v
    assert h2.num_traces == 0 and calls["loss"] == traced + 1  # + 1: the shape check of batch 0 (eval_shape)
    assert float(jnp.max(jnp.abs(y - h @ v))) > 0  # and it is evaluated at the new parameters


def test_gradient_compiled_once():
    params, model_fn, output_loss, batches = mlp()
    calls = {"loss": 0}

    def loss_fn(p, x, y):
        calls["loss"] += 1
        return output_loss(model_fn(p, x), y)

    m = ejx.gradient_covariance(loss_fn, params, batches, per="batch", centered=True, **KW)
    v = random_block(m.shape[0], 1)[:, 0]
    m @ v
    first = calls["loss"]
    m @ v
    m.clear_cache()
    m @ v  # recomputes ḡ with the compiled gradient: no new trace
    assert calls["loss"] == first


def test_batch_by_batch_traced_once_per_batch_shape(monkeypatch):
    # Data of many shapes (or sharded) goes batch by batch: one trace per batch shape and width.
    from eigenscope.adapters.jax import _data

    monkeypatch.setattr(_data, "FUSE_MAX_GROUPS", 1)
    params, model_fn, output_loss, batches = mlp(n=10, batch=4)  # shapes 4, 4, 2: two runs

    def loss_fn(p, x, y):
        return output_loss(model_fn(p, x), y)

    h = ejx.hessian(loss_fn, params, batches, **KW)
    fused = ejx.hessian(lambda p, x, y: loss_fn(p, x, y), params, batches[:2], **KW)  # one run: fused
    v = random_block(h.shape[0], 3)
    h @ v
    assert not h.fused and fused.fused
    assert h.num_traces == 2  # one per batch shape: the uneven last batch adds one
    h @ v[:, 0]
    assert h.num_traces == 4
    fused @ v
    assert fused.num_traces == 1


KINDS = {
    "hessian": lambda w, **kw: ejx.hessian(lambda p, x, y: w.loss_fn(p, x, y), w.params, w.batches, **kw),
    "ggn": lambda w, **kw: ejx.ggn(lambda p, x: w.model_fn(p, x), w.output_loss, w.params, w.batches, **kw),
    "per-sample covariance": lambda w, **kw: ejx.gradient_covariance(
        lambda p, x, y: w.loss_fn(p, x, y), w.params, w.batches, centered=True, **kw
    ),
    "per-batch covariance": lambda w, **kw: ejx.gradient_covariance(
        lambda p, x, y: w.loss_fn(p, x, y), w.params, w.batches, per="batch", **kw
    ),
}


def test_convolutions_on_cpu_keep_the_per_batch_program():
    from eigenscope.zoo import jax as zoo_jax

    cnn = zoo_jax.workload("W1", "tiny", dtype=jnp.float64)
    assert not ejx.hessian(cnn.loss_fn, cnn.params, cnn.batches).fused  # XLA's CPU convolutions are slow in loops


@pytest.mark.parametrize("kind", list(KINDS))
@pytest.mark.filterwarnings("ignore::eigenscope.adapters.jax.RecompilationWarning")  # two operators, one lambda
def test_fused_pass_equals_batch_by_batch(kind, monkeypatch):
    # The zoo's Wide&Deep: dict inputs, batches of 4, 4 and 2 (two runs of shapes).
    from eigenscope.adapters.jax import _data
    from eigenscope.zoo import jax as zoo_jax

    w3 = zoo_jax.workload("W3", "tiny", dtype=jnp.float64)
    fused = KINDS[kind](w3)
    monkeypatch.setattr(_data, "FUSE_MAX_GROUPS", 0)
    single = KINDS[kind](w3)
    assert fused.fused and not single.fused
    v = random_block(fused.shape[0], 3)
    for x in (v, v[:, :1], v[:, 0]):
        assert jnp.allclose(fused @ x, single @ x, rtol=1e-12, atol=1e-14)
    assert fused.num_forward_passes == single.num_forward_passes == 3 * len(w3.batches)
