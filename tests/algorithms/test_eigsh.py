"""eigsh against dense eigh, for every `which`, method and backend."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import scipy.sparse.linalg as spla
from hypothesis import given
from hypothesis import strategies as st

import eigenscope as es
from eigenscope.testing import orthogonal_matrix, spectra
from tests._helpers import asarray, expected_eigenvalues, host


def _rotated(lam: np.ndarray, seed: int) -> np.ndarray:
    q = orthogonal_matrix(lam.size, seed)
    return (q * lam) @ q.T


def _rel(dtype) -> float:
    return 1e-4 if es.backends.dtype_name(dtype) == "float32" else 1e-10


@pytest.mark.parametrize("method", ["lanczos", "block"])
@pytest.mark.parametrize("which", ["LA", "SA", "LM", "BE"])
def test_matches_dense_on_every_backend(xp, dtype, method, which):
    # Small ncv forces the Krylov path (not the dense one) and a few thick restarts.
    @given(
        lam=spectra(min_n=36, max_n=48, min_gap=0.1, max_gap=1.0, low=-8, high=-2),
        k=st.integers(1, 4),
        seed=st.integers(0, 2**16),
    )
    def check(lam, k, seed):
        if which == "BE" and k == 1:
            k = 2
        a = _rotated(lam, seed)
        opts = {"ncv": 12} if method == "lanczos" else {"ncv": 16, "block_size": 2}
        r = es.eigsh(asarray(a, xp, dtype), k, which=which, method=method, seed=seed, **opts)
        want = expected_eigenvalues(lam, k, which)
        scale = np.abs(lam).max()
        assert r.converged.all() and r.method == method
        np.testing.assert_allclose(r.eigenvalues, want, atol=_rel(dtype) * scale)
        x = host(r.eigenvectors)
        np.testing.assert_allclose(x.T @ x, np.eye(k), atol=_rel(dtype) * 100)
        true_resid = np.linalg.norm(a @ x - x * r.eigenvalues, axis=0)
        # the reported residuals are the true ones (to rounding) and meet the tolerance
        np.testing.assert_allclose(r.residual_norms, true_resid, atol=_rel(dtype) * 100 * scale)
        tol = np.sqrt(np.finfo(es.backends.dtype_name(dtype)).eps)
        assert np.all(true_resid <= 2 * tol * np.maximum(np.abs(r.eigenvalues), 1e-3 * scale) + _rel(dtype) * scale)

    from hypothesis import settings

    settings(max_examples=3 if es.backends.backend_name(xp) in ("jax", "array_api_strict") else 6)(check)()


@given(pair=st.tuples(spectra(min_n=50, max_n=200, min_gap=0.01, low=-3, high=3), st.integers(0, 99)))
def test_power_baseline_finds_largest_magnitude(pair):
    lam, seed = pair
    lam = lam / max(1.0, np.abs(lam).max())
    lam = np.concatenate([lam, [5.0, -3.0]])  # top-2 magnitudes well separated from the bulk in [-1, 1]
    r = es.eigsh(_rotated(lam, seed), 2, which="LM", method="power", seed=seed, tol=1e-6, max_matvecs=4000)
    np.testing.assert_allclose(r.eigenvalues, expected_eigenvalues(lam, 2, "LM"), rtol=1e-6)
    assert r.converged.all()


def test_power_la_and_sa():
    lam = np.linspace(-1, 1, 100) ** 3 * 4 + np.r_[np.zeros(99), 3.0]
    a = _rotated(lam, 0)
    for which in ("LA", "SA"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", es.ConvergenceWarning)
            r = es.eigsh(a, 1, which=which, method="power", seed=0, max_matvecs=3000, tol=1e-6)
        np.testing.assert_allclose(r.eigenvalues, expected_eigenvalues(lam, 1, which), rtol=1e-4)


def test_repeated_eigenvalues_are_found_with_multiplicity():
    lam = np.concatenate([np.full(3, 5.0), np.linspace(-1, 1, 97)])
    r = es.eigsh(_rotated(lam, 1), 4, which="LA", seed=0)
    np.testing.assert_allclose(r.eigenvalues, [5.0, 5.0, 5.0, 1.0], atol=1e-10)
    np.testing.assert_allclose(host(r.eigenvectors).T @ host(r.eigenvectors), np.eye(4), atol=1e-10)


def test_low_rank_operator_breakdown_is_exact():
    q = orthogonal_matrix(200, 3)[:, :3]
    op = es.LowRankOperator(q, np.array([4.0, -2.0, 1.0]))
    r = es.eigsh(op, 2, which="BE", seed=0)
    np.testing.assert_allclose(np.sort(r.eigenvalues), [-2.0, 4.0], atol=1e-12)
    assert np.all(np.isfinite(r.residual_norms))


def test_small_operator_goes_dense():
    lam = np.arange(10.0)
    r = es.eigsh(_rotated(lam, 0), 3, which="SA", seed=0)
    assert r.method == "dense" and r.num_matvecs == 10
    np.testing.assert_allclose(r.eigenvalues, [0.0, 1.0, 2.0], atol=1e-12)


@pytest.mark.parametrize("k", [1, 5, 20])
def test_matvecs_within_arpack_and_far_below_power(k):
    # Finding the pairs costs ≤ 1.5× ARPACK's products at the same tolerance, and ≥ 5× fewer
    # than power iteration with deflation. ARPACK does not verify that nothing more extreme or
    # repeated was missed; eigsh does, and that verification is bounded separately.
    n = 400
    lam = np.linspace(-1, 1.3, n) ** 3 * 10
    a = _rotated(lam, 0)
    tol = np.sqrt(np.finfo(np.float64).eps)
    count = [0]

    def mv(x):
        count[0] += 1
        return a @ x

    spla.eigsh(spla.LinearOperator((n, n), matvec=mv, dtype=np.float64), k, which="LA", tol=tol)
    ours = es.eigsh(a, k, which="LA", tol=tol, seed=0)
    assert ours.num_matvecs - ours.verification_matvecs <= 1.5 * count[0]
    assert ours.verification_matvecs <= 1.2 * (ours.num_matvecs - ours.verification_matvecs)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", es.ConvergenceWarning)
        power = es.eigsh(a, k, which="LA", tol=tol, method="power", seed=0, max_matvecs=200 * k + 1000)
    assert power.num_matvecs >= 5 * ours.num_matvecs


def test_same_seed_same_numbers():
    a = _rotated(np.linspace(0, 1, 80), 2)
    r1, r2 = es.eigsh(a, 3, seed=5), es.eigsh(a, 3, seed=5)
    np.testing.assert_array_equal(r1.eigenvalues, r2.eigenvalues)
    assert r1.num_matvecs == r2.num_matvecs


def test_budget_exhausted_warns_and_reports():
    a = _rotated(np.linspace(0, 1, 300) ** 4, 0)
    with pytest.warns(es.ConvergenceWarning, match="did not reach"):
        r = es.eigsh(a, 5, seed=0, tol=1e-14, max_matvecs=60)
    assert not r.converged.all() and r.num_matvecs <= 60


def test_errors():
    a = _rotated(np.linspace(0, 1, 50), 0)
    with pytest.raises(ValueError, match=r"k must be an integer in \[1, 49\], got 50"):
        es.eigsh(a, 50)
    with pytest.raises(ValueError, match=r"k must be an integer in \[1, 49\], got 0"):
        es.eigsh(a, 0)
    with pytest.raises(ValueError, match="unknown which 'LR'"):
        es.eigsh(a, 2, which="LR")
    with pytest.raises(ValueError, match="unknown method 'arnoldi'"):
        es.eigsh(a, 2, method="arnoldi")
    with pytest.raises(ValueError, match="not 'BE'"):
        es.eigsh(a, 2, which="BE", method="power")
    with pytest.raises(ValueError, match="the matrix is not symmetric"):
        es.eigsh(np.triu(a), 2)
    liar = es.LinearOperator.from_matvec(lambda x: np.triu(a) @ x, shape=(50, 50), dtype=np.float64)
    with pytest.raises(ValueError, match="not symmetric"):
        es.eigsh(liar, 2, check_symmetric=True, seed=0)
    big = _rotated(np.linspace(0, 1, 100), 0)
    nan_op = es.LinearOperator.from_matvec(
        lambda x: big @ x * np.nan, shape=(100, 100), dtype=np.float64, check_finite=False
    )
    with pytest.raises(FloatingPointError, match="NaN or Inf"):
        es.eigsh(nan_op, 2, seed=0)


def test_power_returns_vectors_on_every_backend(xp):
    lam = np.concatenate([np.linspace(-1, 1, 40), [6.0, -4.0]])
    a = _rotated(lam, 3)
    r = es.eigsh(asarray(a, xp), 2, which="LM", method="power", seed=0, tol=1e-6, max_matvecs=2000)
    np.testing.assert_allclose(r.eigenvalues, [6.0, -4.0], rtol=1e-6)
    x = host(r.eigenvectors)
    np.testing.assert_allclose(np.abs(np.sum(x * (a @ x), axis=0)), [6.0, 4.0], rtol=1e-5)


def test_check_symmetric_is_reproducible_on_every_backend(xp):
    # The check draws from a stream spawned off the seed (JAX keys included), so the whole
    # call, check and start vectors, repeats exactly.
    a = asarray(_rotated(np.linspace(0, 1, 60), 1), xp)
    r1 = es.eigsh(a, 2, seed=4, check_symmetric=True)
    r2 = es.eigsh(a, 2, seed=4, check_symmetric=True)
    np.testing.assert_array_equal(r1.eigenvalues, r2.eigenvalues)
    assert r1.num_matvecs == r2.num_matvecs
    assert r1.converged.all()
    np.testing.assert_allclose(r1.eigenvalues, np.linspace(0, 1, 60)[::-1][:2], rtol=1e-6)
