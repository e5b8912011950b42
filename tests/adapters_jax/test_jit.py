"""The algorithms and the constructors under ``jax.jit``: a clear error, not a tracer error."""

from __future__ import annotations

import numpy as np
import pytest

from tests.conftest import load_backend

jnp = load_backend("jax")

import jax  # noqa: E402

import eigenscope as es  # noqa: E402
from eigenscope.adapters import jax as ejx  # noqa: E402

from ._models import KW, mlp  # noqa: E402

CALLS = {
    "eigsh": lambda a: es.eigsh(a, k=2, seed=0).eigenvalues,
    "trace": lambda a: es.trace(a, 6, seed=0).estimate,
    "spectral_density": lambda a: es.spectral_density(a, num_steps=4, seed=0).nodes,
    "lanczos": lambda a: es.lanczos(a, num_steps=3, seed=0).alpha,
}


@pytest.mark.parametrize("name", list(CALLS))
def test_algorithms_under_jit_raise_a_clear_error(name):
    a = es.aslinearoperator(jnp.diag(jnp.arange(1.0, 9.0)))
    with pytest.raises(ejx.TracedCallError, match=rf"^{name} was called inside jax.jit .*host-driven loops"):
        jax.jit(lambda x: CALLS[name](a))(jnp.zeros(()))
    CALLS[name](a)  # eager: fine


def test_operator_of_traced_array_and_constructor_under_jit():
    with pytest.raises(ejx.TracedCallError, match="Call it outside the jitted function"):
        jax.jit(lambda m: es.eigsh(es.aslinearoperator(m), k=1).eigenvalues)(jnp.eye(4))
    params, model_fn, output_loss, batches = mlp()

    def loss_fn(p, x, y):
        return output_loss(model_fn(p, x), y)

    with pytest.raises(ejx.TracedCallError, match=r"^ejx.hessian was called inside jax.jit"):
        jax.jit(lambda p: ejx.hessian(loss_fn, p, batches, **KW).shape[0])(params)
    assert isinstance(ejx.TracedCallError("x"), TypeError)
    assert np.isfinite(es.eigsh(ejx.hessian(loss_fn, params, batches, **KW), k=1, seed=0).eigenvalues[0])
