"""Seeded probes, column writes and host transfers on every backend."""

from __future__ import annotations

import numpy as np
import pytest

import eigenscope.backends as eb
from tests._helpers import host


def _source(seed, xp):
    return eb.random_source(seed, xp=xp, device=eb.default_device(xp))


def test_same_seed_same_numbers(xp, dtype):
    a = _source(3, xp).normal((5, 2), dtype)
    b = _source(3, xp).normal((5, 2), dtype)
    c = _source(4, xp).normal((5, 2), dtype)
    assert a.dtype == dtype and tuple(a.shape) == (5, 2)
    np.testing.assert_array_equal(host(a), host(b))
    assert not np.array_equal(host(a), host(c))


def test_successive_draws_differ(xp, dtype):
    src = _source(0, xp)
    assert not np.array_equal(host(src.normal((4,), dtype)), host(src.normal((4,), dtype)))


def test_rademacher_values_and_balance(xp, dtype):
    r = host(_source(1, xp).rademacher((4000,), dtype))
    assert set(np.unique(r)) == {-1.0, 1.0}
    assert abs(r.mean()) < 4 / np.sqrt(4000)  # 4 sigma


def test_normal_moments(xp):
    z = host(_source(2, xp).normal((20000,), xp.float64))
    assert abs(z.mean()) < 4 / np.sqrt(20000)
    assert abs(z.var() - 1) < 4 * np.sqrt(2 / 20000)


def test_native_generators_are_accepted():
    torch = pytest.importorskip("torch")
    g = torch.Generator().manual_seed(5)
    xt = eb.resolve_namespace(torch)
    a = eb.random_source(g, xp=xt, device=torch.device("cpu")).normal((3,), torch.float64)
    b = torch.randn(3, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    assert torch.equal(a, b)
    xn = eb.resolve_namespace(np)
    r1 = eb.random_source(np.random.default_rng(9), xp=xn, device="cpu").normal((3,), np.float64)
    r2 = eb.random_source(np.random.default_rng(9), xp=xn, device="cpu").normal((3,), np.float64)
    np.testing.assert_array_equal(r1, r2)


def test_jax_key_is_accepted():
    jax = pytest.importorskip("jax")
    import jax.numpy as jnp

    xj = eb.resolve_namespace(jnp)
    dev = eb.default_device(xj)
    a = eb.random_source(jax.random.key(1), xp=xj, device=dev).normal((3,), jnp.float32)
    b = eb.random_source(jax.random.key(1), xp=xj, device=dev).normal((3,), jnp.float32)
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_bad_seed_and_distribution():
    xn = eb.resolve_namespace(np)
    with pytest.raises(TypeError, match="seed must be"):
        eb.random_source("abc", xp=xn, device="cpu")
    with pytest.raises(ValueError, match="non-negative"):
        eb.random_source(-1, xp=xn, device="cpu")
    with pytest.raises(ValueError, match="rademacher, normal, gaussian, sphere"):
        eb.random_source(0, xp=xn, device="cpu").probes((2,), np.float64, "uniform")
    with pytest.raises(TypeError, match="float32 or float64"):
        eb.random_source(0, xp=xn, device="cpu").normal((2,), np.float16)


def test_set_columns(xp, dtype):
    basis = xp.zeros((4, 3), dtype=dtype, device=eb.default_device(xp))
    col = xp.ones((4,), dtype=dtype, device=eb.default_device(xp))
    basis = eb.set_column(basis, 1, col)
    basis = eb.set_columns(basis, 2, 2 * col[:, None])
    np.testing.assert_array_equal(host(basis), np.array([[0.0, 1.0, 2.0]] * 4))


def test_host_round_trip(xp, dtype):
    a = np.arange(6.0).reshape(2, 3)
    x = eb.from_numpy(a, xp=xp, dtype=dtype, device=eb.default_device(xp))
    assert eb.namespace(x) is xp and x.dtype == dtype
    back = eb.to_numpy(x)
    assert isinstance(back, np.ndarray)
    np.testing.assert_array_equal(back, a)


def test_backend_names(xp):
    assert eb.backend_name(xp) in {"numpy", "array_api_strict", "torch", "jax", "cupy"}


def test_namespace_mixing_is_refused():
    torch = pytest.importorskip("torch")
    with pytest.raises(TypeError, match="one supported backend"):
        eb.namespace(np.ones(2), torch.ones(2))


def test_spawned_streams_are_reproducible_and_independent(xp, dtype):
    parent = _source(5, xp)
    child = parent.spawn()
    after = parent.normal((6,), dtype)
    again = _source(5, xp)
    child_again = again.spawn()
    np.testing.assert_array_equal(host(child.normal((6,), dtype)), host(child_again.normal((6,), dtype)))
    np.testing.assert_array_equal(host(after), host(again.normal((6,), dtype)))
    # The child is not the parent's continuation.
    assert not np.array_equal(host(_source(5, xp).spawn().normal((6,), dtype)), host(after))


def test_sphere_probes_have_norm_sqrt_n(xp, dtype):
    z = host(_source(1, xp).probes((50, 4), dtype, "sphere")).astype(np.float64)
    tol = 100 * np.finfo(np.dtype(eb.dtype_name(dtype))).eps
    np.testing.assert_allclose(np.linalg.norm(z, axis=0), np.sqrt(50), rtol=tol)


def test_a_random_source_is_a_seed(xp):
    src = _source(2, xp)
    assert eb.random_source(src, xp=xp, device=eb.default_device(xp)) is src
    other = np if eb.backend_name(xp) != "numpy" else None
    if other is not None:
        with pytest.raises(TypeError, match="random source"):
            eb.random_source(src, xp=eb.resolve_namespace(np), device="cpu")


def test_one_framework_object_per_namespace(xp):
    fw = eb.framework_of(xp)
    assert fw is eb.framework_of(xp)
    assert fw.name == eb.backend_name(xp)
    assert eb.prefers_static_shapes(xp) == (fw.name == "jax")


def test_all_finite(xp, dtype):
    good = xp.asarray(np.arange(12.0).reshape(3, 4), dtype=dtype)
    assert eb.all_finite(good) and eb.all_finite(xp.zeros((0, 3), dtype=dtype))
    for bad in (np.nan, np.inf, -np.inf):
        a = np.arange(12.0)
        a[7] = bad
        assert not eb.all_finite(xp.asarray(a, dtype=dtype))


def test_subtract_product(xp, dtype):
    rng = np.random.default_rng(0)
    w, a, b = rng.standard_normal((50, 2)), rng.standard_normal((50, 3)), rng.standard_normal((3, 2))
    out = eb.subtract_product(xp.asarray(w.copy(), dtype=dtype), xp.asarray(a, dtype=dtype), xp.asarray(b, dtype=dtype))
    tol = 1e-5 if eb.dtype_name(dtype) == "float32" else 1e-12
    np.testing.assert_allclose(host(out), w - a @ b, rtol=tol, atol=tol)
    w3, a3, b3 = rng.standard_normal((2, 1, 50)), rng.standard_normal((2, 1, 3)), rng.standard_normal((2, 3, 50))
    x3 = xp.asarray(w3.copy(), dtype=dtype)
    out3 = eb.subtract_product(x3[:, 0, :][:, None, :], xp.asarray(a3, dtype=dtype), xp.asarray(b3, dtype=dtype))
    np.testing.assert_allclose(host(out3), w3 - a3 @ b3, rtol=tol, atol=tol)
    if eb.framework_of(xp).name in ("numpy", "torch"):  # in place: the caller's array holds the result
        np.testing.assert_allclose(host(x3), w3 - a3 @ b3, rtol=tol, atol=tol)
