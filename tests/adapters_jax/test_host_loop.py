"""The algorithms' host loop on JAX operators (``eigenscope/algorithms/_host.py``): first calls
compile only the operator's products (counted, never timed), results equal the JAX-side loop's
to rounding and dense float64 references, and come back as JAX arrays on the operator's
device with its dtype."""

from __future__ import annotations

import numpy as np
import pytest

from tests.conftest import load_backend

jnp = load_backend("jax")

import jax  # noqa: E402

import eigenscope as es  # noqa: E402
from eigenscope import backends  # noqa: E402
from eigenscope.adapters import jax as ejx  # noqa: E402
from eigenscope.algorithms import _density, _diagonal, _eigsh, _lanczos, _trace  # noqa: E402

from ._compilations import count_compilations  # noqa: E402
from ._models import KW, mlp  # noqa: E402
from ._reference import dense_hessian  # noqa: E402


def _problem(sizes=(5, 7, 3), seed=31, dtype=np.float64, **kw):
    params, model_fn, output_loss, batches = mlp(sizes=sizes, seed=seed, dtype=dtype)

    def loss_fn(p, x, y):
        return output_loss(model_fn(p, x), y)

    return ejx.hessian(loss_fn, params, batches, **{**KW, **kw}), loss_fn, params, batches


@pytest.mark.parametrize(
    "name, run",
    [
        ("eigsh", lambda h: es.eigsh(h, k=3, seed=0)),
        ("lanczos", lambda h: es.lanczos(h, num_steps=8, seed=0, return_ritz_vectors=True)),
        ("spectral_density", lambda h: es.spectral_density(h, num_steps=8, num_probes=3, seed=0)),
        ("trace", lambda h: es.trace(h, 12, seed=0)),
        ("diagonal", lambda h: es.diagonal(h, 12, seed=0)),
    ],
)
def test_first_call_compiles_only_the_products(name, run):
    # A model of its own shape: nothing of it was compiled by another test.
    sizes = {"eigsh": (4, 9, 2), "lanczos": (4, 10, 2), "spectral_density": (4, 11, 2), "trace": (4, 12, 2)}
    h, *_ = _problem(sizes=sizes.get(name, (4, 13, 2)))
    with count_compilations() as counted:
        run(h)
    # The pass over the data (a scan per batch shape, 4 and 2 samples) once per block width,
    # and a tiny program or two (a zero accumulator, a reshape) besides: 2 in all when this
    # was written, where the JAX-side loop compiled 30-70 programs.
    assert h.num_traces == 1
    assert counted["n"] <= h.num_traces + 2, (counted["n"], h.num_traces)


def test_results_equal_the_jax_side_loop_and_dense_references():
    h, loss_fn, params, batches = _problem()
    n = h.shape[0]
    dense = np.asarray(dense_hessian(loss_fn, params, batches))
    exact = np.linalg.eigvalsh(dense)
    rng = np.random.default_rng(5)
    v0 = jnp.asarray(rng.standard_normal(n))
    probes = jnp.asarray(rng.choice([-1.0, 1.0], size=(n, 9)))

    host, jaxside = es.eigsh(h, k=3, v0=v0), _eigsh.eigsh(h, k=3, v0=v0)
    np.testing.assert_allclose(host.eigenvalues, jaxside.eigenvalues, rtol=1e-10)
    np.testing.assert_allclose(host.eigenvalues, exact[::-1][:3], rtol=1e-10)
    overlap = np.abs(np.sum(np.asarray(host.eigenvectors) * np.asarray(jaxside.eigenvectors), axis=0))
    np.testing.assert_allclose(overlap, 1.0, atol=1e-8)

    host, jaxside = es.lanczos(h, 10, v0=v0), _lanczos.lanczos(h, 10, v0=v0)
    np.testing.assert_allclose(host.alpha, jaxside.alpha, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(host.beta, jaxside.beta, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(np.asarray(host.basis), np.asarray(jaxside.basis), atol=1e-10)

    host = es.spectral_density(h, 10, probes=probes[:, :3])
    jaxside = _density.spectral_density(h, 10, probes=probes[:, :3])
    np.testing.assert_allclose(host.nodes, jaxside.nodes, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(host.weights, jaxside.weights, rtol=1e-10, atol=1e-12)

    host, jaxside = es.trace(h, probes=probes), _trace.trace(h, probes=probes)
    np.testing.assert_allclose(host.estimate, jaxside.estimate, rtol=1e-10)
    # n ≤ 3 × rank of the sketch would be exact; here a check against the dense trace's scale.
    assert abs(host.estimate - np.trace(dense)) < 3 * host.std_error + 1e-8

    host, jaxside = es.diagonal(h, probes=probes), _diagonal.diagonal(h, probes=probes)
    np.testing.assert_allclose(np.asarray(host.estimate), np.asarray(jaxside.estimate), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_result_arrays_are_the_operators(dtype):
    h, *_ = _problem(dtype=dtype)
    dev = h.device
    top = es.eigsh(h, k=2, seed=0)
    lz = es.lanczos(h, 6, seed=0, return_ritz_vectors=True)
    diag = es.diagonal(h, 6, seed=0)
    for x in (top.eigenvectors, lz.basis, lz.ritz_vectors, diag.estimate, diag.std_error):
        assert isinstance(x, jax.Array)
        assert x.dtype == h.dtype
        assert backends.same_device(backends.device(x), dev)
    # reorth="host" keeps the basis in host memory, as the JAX-side loop does.
    assert isinstance(es.lanczos(h, 6, seed=0, reorth="host").basis, np.ndarray)


def test_seeds_are_deterministic_and_jax_keys_work():
    h, *_ = _problem()
    a, b = es.eigsh(h, k=2, seed=3), es.eigsh(h, k=2, seed=3)
    np.testing.assert_array_equal(np.asarray(a.eigenvectors), np.asarray(b.eigenvectors))
    first = es.trace(h, 9, seed=jax.random.key(4)).estimate
    assert first == es.trace(h, 9, seed=jax.random.key(4)).estimate
    assert first != es.trace(h, 9, seed=jax.random.key(5)).estimate
    assert es.trace(h, 9, seed=jax.random.PRNGKey(4)).estimate == es.trace(h, 9, seed=jax.random.PRNGKey(4)).estimate
    # A random source of the operator's framework keeps its own (JAX) stream.
    source = backends.random_source(7, xp=h.xp, device=h.device)
    host = es.spectral_density(h, 6, 2, seed=source)
    jaxside = _density.spectral_density(h, 6, 2, seed=backends.random_source(7, xp=h.xp, device=h.device))
    np.testing.assert_allclose(host.nodes, jaxside.nodes, rtol=1e-10, atol=1e-12)


def test_operands_of_another_kind_get_the_usual_errors():
    h, *_ = _problem()
    with pytest.raises(TypeError):
        es.eigsh(h, k=2, v0=np.ones(h.shape[0]))  # a NumPy start vector for a JAX operator
    with pytest.raises(TypeError):
        es.trace(h, probes=jnp.ones((h.shape[0], 3), dtype=jnp.float32))  # float32 probes, float64 operator


def test_products_counted_and_compile_seconds_reported():
    h, loss_fn, params, batches = _problem(sizes=(3, 14, 2))
    result = es.eigsh(h, k=2, seed=0)
    assert h.num_matvecs == result.num_matvecs
    assert h.num_traces >= 1 and h.compile_seconds > 0.0
    again = ejx.hessian(loss_fn, [(w + 0.1, b) for w, b in params], batches, **KW)
    es.eigsh(again, k=2, seed=0)
    assert again.num_traces == 0 and again.compile_seconds == 0.0


def test_host_loop_rule():
    framework = backends.framework_of(jnp)
    cpu = jax.devices("cpu")[0]
    assert framework.host_loop_pays(cpu, 10**6)
    # Several devices (a mesh's replicated vectors: a sharding, not a device) keep the JAX loop.
    sharding = jax.sharding.SingleDeviceSharding(cpu)
    assert not framework.host_loop_pays(sharding, 100)
    assert not backends.framework_of(backends.resolve_namespace(np)).host_loop_pays("cpu", 100)
