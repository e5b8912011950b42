"""A pair marked converged is never wrong: low rank, clusters, null spaces and extreme scales,
every method, every ``which``, every backend (property-based, thousands of examples in all)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import eigenscope as es
from eigenscope.testing import adversarial_matrices
from tests._helpers import asarray, expected_eigenvalues, host

_EXAMPLES = {"numpy": 60, "torch": 30, "jax": 12, "array_api_strict": 12, "cupy": 20}
_SCALES = {"float64": (1e-150, 1.0, 1e150), "float32": (1e-18, 1.0, 1e18)}


def check_never_wrong(a: np.ndarray, lam: np.ndarray, r: es.EigshResult, k: int, which: str, eps: float) -> None:
    """Every converged pair: true residual within the claimed bound, and the set is the truth."""
    scale = float(np.abs(lam).max()) or 1.0
    floor = 200 * eps * scale * np.sqrt(lam.size)
    x = host(r.eigenvectors)
    true_resid = np.linalg.norm(a @ x - x * r.eigenvalues, axis=0)
    np.testing.assert_array_less(true_resid, r.residual_norms + floor)
    if not r.converged.any():
        return
    assert r.converged.all(), "the set is verified as a whole: all or none"
    # Kahan: the k Ritz values of an orthonormal X are within ‖R‖ of k eigenvalues; when they are the
    # k most extreme, sorted values match sorted truth to that bound. Eigenvalues closer than the
    # convergence threshold (tol·|λ|, tol = √ε) cannot be told apart by residuals: which of two such
    # near-copies a pair converged to, or the verification counted as a tie, moves a value by up to
    # that threshold, twice (the pair's and the verification's).
    tol = np.sqrt(eps)
    bound = np.sqrt(np.sum(r.residual_norms**2)) + 2 * tol * np.abs(r.eigenvalues).max() + floor
    got, want = np.sort(r.eigenvalues), np.sort(expected_eigenvalues(lam, k, which))
    if which == "LM":  # magnitudes may tie between ±λ: compare magnitudes
        got, want = np.sort(np.abs(r.eigenvalues)), np.sort(np.abs(expected_eigenvalues(lam, k, which)))
    np.testing.assert_allclose(got, want, rtol=0, atol=bound)
    np.testing.assert_allclose(x.T @ x, np.eye(k), atol=1e3 * eps * np.sqrt(lam.size))


@pytest.mark.parametrize("method", ["lanczos", "block", "power"])
@pytest.mark.parametrize("which", ["LA", "SA", "LM", "BE"])
def test_converged_pairs_are_never_wrong(xp, dtype_name, method, which):
    if method == "power" and which == "BE":
        pytest.skip("power iteration has no 'BE'")
    backend = es.backends.backend_name(xp)
    dtype = getattr(xp, dtype_name)
    eps = float(np.finfo(dtype_name).eps)

    @settings(max_examples=_EXAMPLES.get(backend, 10) // (2 if method == "power" else 1))
    @given(
        pair=adversarial_matrices(min_n=30, max_n=70, scales=_SCALES[dtype_name]),
        k=st.integers(1, 6),
        small_basis=st.booleans(),
        seed=st.integers(0, 2**16),
    )
    def check(pair, k, small_basis, seed):
        a, _ = pair
        a32 = host(asarray(a, xp, dtype))  # the matrix the operator holds, rounded to the dtype
        opts = {}
        if method == "block":
            opts = {"block_size": 2, "ncv": 16} if small_basis else {}
        elif method == "lanczos" and small_basis:
            opts = {"ncv": max(12, 2 * k + 2)}
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            r = es.eigsh(asarray(a, xp, dtype), k, which=which, method=method, seed=seed, **opts)
        if not r.converged.all():
            assert any(issubclass(w.category, es.ConvergenceWarning) for w in caught)
        check_never_wrong(a32, np.linalg.eigvalsh(a32), r, k, which, eps)

    check()


def test_rank_one_smallest_are_zeros():
    u = np.random.default_rng(3).standard_normal(200)
    r = es.eigsh(np.outer(u, u), 2, which="SA", seed=0)
    assert r.converged.all()
    np.testing.assert_allclose(r.eigenvalues, [0.0, 0.0], atol=1e-12 * (u @ u))


def test_k_cuts_through_a_repeated_eigenvalue():
    lam = np.concatenate([[10.0, 9.0, 9.0, 8.0], np.linspace(0.0, 7.0, 56)])
    q = es.testing.orthogonal_matrix(60, 1)
    a = (q * lam) @ q.T
    for method in ("lanczos", "block"):
        r = es.eigsh((a + a.T) / 2, 3, seed=0, method=method)
        assert r.converged.all()
        np.testing.assert_allclose(r.eigenvalues, [10.0, 9.0, 9.0], atol=1e-10)


@pytest.mark.parametrize("dtype_name", ["float32", "float64"])
def test_scale_invariance(xp, dtype_name):
    lam = np.concatenate([[3.0, 2.5, 2.0], np.linspace(-1.0, 1.0, 97)])
    q = es.testing.orthogonal_matrix(100, 2)
    a = (q * lam) @ q.T
    a = (a + a.T) / 2
    dtype = getattr(xp, dtype_name)
    base = es.eigsh(asarray(a, xp, dtype), 2, seed=0)
    exponents = (-140, -60, 60, 140) if dtype_name == "float64" else (-24, -12, 12, 24)
    for e in exponents:
        c = 10.0**e
        r = es.eigsh(asarray(a * c, xp, dtype), 2, seed=0)
        assert r.converged.all()
        np.testing.assert_allclose(r.eigenvalues / c, base.eigenvalues, rtol=1e-5 if dtype_name == "float32" else 1e-12)
        rho = es.spectral_density(asarray(a * c, xp, dtype), 30, 1, seed=0)
        assert np.all(np.isfinite(rho.nodes)) and rho.nodes.max() / c == pytest.approx(3.0, rel=1e-3)
    # a power of two changes nothing but the scale
    r = es.eigsh(asarray(a * 2.0**40, xp, dtype), 2, seed=0)
    np.testing.assert_array_equal(r.eigenvalues, base.eigenvalues * 2.0**40)


def test_overflowing_products_are_reported():
    def overflowing(x):
        with np.errstate(over="ignore"):
            return (x * np.float32(1e30)) * np.float32(1e30)  # A = 1e60 I: beyond float32

    op = es.LinearOperator.from_matvec(overflowing, shape=(100, 100), dtype=np.float32, check_finite=False)
    with pytest.raises(FloatingPointError, match=r"NaN or Inf \(product 1\).*range of float32"):
        es.eigsh(op, 2, seed=0)
    with pytest.raises(FloatingPointError, match=r"NaN or Inf \(product \d+.*range of float32"):
        es.spectral_density(op, 10, seed=0)


def test_float32_at_millions_of_parameters():
    # A diagonal operator of 4·10⁶ float32 entries: norms taken by the libraries themselves are off
    # by up to 1e-3 here; eigsh's residuals must still be the true ones and its vectors orthonormal.
    torch = pytest.importorskip("torch")
    n = 4_000_000
    d = torch.rand(n, generator=torch.Generator().manual_seed(0))
    d[:5] += torch.tensor([9.0, 8.0, 7.0, 6.0, 5.0])
    op = es.LinearOperator.from_matvec(
        lambda x: d * x, shape=(n, n), dtype=torch.float32, matmat=lambda x: d[:, None] * x
    )
    r = es.eigsh(op, 5, seed=0)
    assert r.converged.all()
    truth = torch.sort(d.double(), descending=True).values[:5].numpy()
    x = r.eigenvectors.double()
    true_resid = torch.linalg.vector_norm(d.double()[:, None] * x - x * torch.from_numpy(r.eigenvalues), dim=0).numpy()
    np.testing.assert_allclose(r.residual_norms, true_resid, rtol=0.05, atol=1e-5)
    tol = np.sqrt(np.finfo(np.float32).eps)
    assert np.all(true_resid <= 1.01 * tol * np.abs(r.eigenvalues))
    np.testing.assert_allclose(r.eigenvalues, truth, rtol=tol)
    np.testing.assert_allclose((x.T @ x).numpy(), np.eye(5), atol=1e-5)


def test_low_rank_ggn_smallest_are_zeros():
    torch = pytest.importorskip("torch")
    from eigenscope.adapters import torch as est

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(10, 16), torch.nn.Tanh(), torch.nn.Linear(16, 3)).double()
    data = [(torch.randn(4, 10, dtype=torch.float64), torch.randint(0, 3, (4,)))]  # N·C = 12 < n = 243
    G = est.ggn(model, torch.nn.functional.cross_entropy, data)
    dense = host(G.to_dense())
    lam = np.linalg.eigvalsh((dense + dense.T) / 2)
    bottom = es.eigsh(G, 3, which="SA", seed=0)
    assert bottom.converged.all()
    np.testing.assert_allclose(bottom.eigenvalues, 0.0, atol=1e-10 * lam.max())
    top = es.eigsh(G, 3, which="LA", seed=0)
    np.testing.assert_allclose(top.eigenvalues, lam[::-1][:3], rtol=1e-8)


def test_long_float32_jax_vectors_without_x64():
    # The chunked float32 Gram–Schmidt sums in float64 where the backend has it; JAX without
    # jax_enable_x64 has not, and must neither warn nor fail (a fresh process: the tests enable x64).
    pytest.importorskip("jax")
    code = """
import warnings; warnings.simplefilter("error")
import jax.numpy as jnp, numpy as np, eigenscope as es
n = 5000
d = jnp.asarray(np.random.default_rng(0).random(n).astype(np.float32)).at[:3].add(jnp.array([5.0, 4.0, 3.0]))
op = es.LinearOperator.from_matvec(
    lambda x: d * x, shape=(n, n), dtype=jnp.float32, xp=jnp, matmat=lambda x: d[:, None] * x
)
r = es.eigsh(op, 3, seed=0)
assert r.converged.all() and abs(r.eigenvalues[0] - float(d.max())) < 1e-3, r
s = es.spectral_density(op, 20, 2, seed=0)
assert abs(s.support[1] - float(d.max())) < 1e-3
"""
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr


@settings(max_examples=60)
@given(
    pair=adversarial_matrices(min_n=2, max_n=40, scales=(1e-150, 1e-20, 1.0, 1e20, 1e150)),
    k=st.integers(1, 8),
    which=st.sampled_from(["LA", "SA", "LM", "BE"]),
    seed=st.integers(0, 2**16),
)
def test_every_public_function_on_adversarial_inputs(pair, k, which, seed):
    # Small sizes (the dense paths included), every scale: results finite, converged pairs right.
    a, lam = pair
    n = lam.size
    k = min(k, n - 1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", es.ConvergenceWarning)
        warnings.simplefilter("ignore", es.EigenscopeWarning)
        r = es.eigsh(a, k, which=which, seed=seed)
        lanczos = es.lanczos(a, min(10, n), seed=seed)
        density = es.spectral_density(a, min(20, n), 2, seed=seed, deflate_outliers=1 if n > 2 else 0)
    check_never_wrong(a, np.linalg.eigvalsh(a), r, k, which, float(np.finfo(np.float64).eps))
    assert np.all(np.isfinite(lanczos.ritz_values)) and np.all(np.isfinite(density.nodes))
    np.testing.assert_allclose(density.weights.sum(axis=1), 1.0, atol=1e-12)
    assert np.isfinite(es.trace(a, 12, seed=seed).estimate)
    assert np.all(np.isfinite(es.diagonal(a, 12, seed=seed).estimate))
