"""Cold starts, counted in XLA compilations rather than timed: the first call of each
algorithm compiles its small per-step operations once, a later call (a new operator at new
parameters of the same model, as in sharpness tracking) compiles nothing."""

from __future__ import annotations

import pytest

from tests.conftest import load_backend

jnp = load_backend("jax")

import jax  # noqa: E402

import eigenscope as es  # noqa: E402
from eigenscope.adapters import jax as ejx  # noqa: E402

from ._compilations import count_compilations  # noqa: E402
from ._models import KW, mlp  # noqa: E402

RUNS = {
    "eigsh": lambda h: es.eigsh(h, k=2, seed=0),
    "lanczos": lambda h: es.lanczos(h, num_steps=6, seed=0),
    "trace": lambda h: es.trace(h, 6, seed=0),
    "spectral_density": lambda h: es.spectral_density(h, num_steps=6, seed=0),
}


@pytest.mark.parametrize("name", list(RUNS))
def test_second_run_compiles_nothing(name):
    params, model_fn, output_loss, batches = mlp(seed=21)

    def loss_fn(p, x, y):
        return output_loss(model_fn(p, x), y)

    with count_compilations() as first:
        RUNS[name](ejx.hessian(loss_fn, params, batches, **KW))
    moved = [(w + 0.05, b) for w, b in params]
    with count_compilations() as second:
        h = ejx.hessian(loss_fn, moved, batches, **KW)
        RUNS[name](h)
    with count_compilations() as sanity:
        jax.jit(lambda v: v * 3.0 + 1.0)(jnp.ones(7))
    assert sanity["n"] >= 1  # the counter sees compilations
    assert second["n"] == 0 and h.num_traces == 0
    # The first call's compilations are the product (per batch shape and block width) and a
    # few reshapes; the per-step arithmetic runs on the host and compiles nothing (it compiled
    # 30-100 small programs before): a bound, not a timing.
    assert first["n"] <= 12, first["n"]


def test_uncommitted_vectors_share_the_compilation():
    """A vector made by ``jnp.ones`` (not committed to a device) and the algorithms' vectors
    (committed) run the same compiled product."""
    params, model_fn, output_loss, batches = mlp(seed=22)
    h = ejx.hessian(lambda p, x, y: output_loss(model_fn(p, x), y), params, batches, **KW)
    es.lanczos(h, num_steps=3, seed=0)
    with count_compilations() as counted:
        h @ jnp.ones((h.shape[0], 1), dtype=h.dtype)
    assert counted["n"] <= 1  # (at most the ones, never the product)


def test_short_runs_do_not_compile_a_block_program():
    """Inside an announced short run a block goes column by column through the single-vector
    program; outside any run (a user's own ``matmat``) the block program is compiled."""
    from eigenscope import linop

    params, model_fn, output_loss, batches = mlp(seed=23)
    h = ejx.hessian(lambda p, x, y: output_loss(model_fn(p, x), y), params, batches, **{**KW, "vectorize": False})
    block = jnp.ones((h.shape[0], 4), dtype=h.dtype) * jnp.arange(1, 5, dtype=h.dtype)
    with linop.planned_products(12):
        looped = h @ block
    single = h.num_traces  # the single-vector program (once per batch shape)
    with linop.planned_products(12):
        h @ block[:, :3]
    assert h.num_traces == single
    unrolled = h @ block  # nothing announced: the 4-wide program
    assert h.num_traces > single
    assert jnp.allclose(looped, unrolled, rtol=1e-10, atol=1e-12)
