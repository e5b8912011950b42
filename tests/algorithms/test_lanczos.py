"""Lanczos: the Krylov relation, exact identities and breakdown, on every backend."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import eigenscope as es
from eigenscope.testing import orthogonal_matrix, symmetric_with_spectrum, tolerance
from tests._helpers import asarray, host, max_examples


def _rel_tol(dtype) -> float:
    return 1e-4 if es.backends.dtype_name(dtype) == "float32" else 1e-10


def test_krylov_relation_and_orthonormal_basis(xp, dtype):
    @settings(max_examples=max_examples(xp))
    @given(pair=symmetric_with_spectrum(min_n=6, max_n=30), m=st.integers(1, 6), seed=st.integers(0, 2**16))
    def check(pair, m, seed):
        _check_krylov(xp, dtype, pair, m, seed)

    check()


def _check_krylov(xp, dtype, pair, m, seed):
    a, lam = pair
    n = a.shape[0]
    r = es.lanczos(asarray(a, xp, dtype), m, seed=seed)
    q = host(r.basis)
    k = r.num_steps
    scale = max(1.0, np.abs(lam).max())
    assert q.shape == (n, k) and r.num_matvecs == k
    np.testing.assert_allclose(q.T @ q, np.eye(k), atol=tolerance(dtype, n=n, factor=100))
    # A Q = Q T + β q_{k+1} e_kᵀ  ⇒  ‖AQ − QT‖ = β on the last column only
    resid = a @ q - q @ r.tridiagonal
    np.testing.assert_allclose(resid[:, :-1], 0, atol=tolerance(dtype, n=n, scale=scale, factor=200))
    np.testing.assert_allclose(
        np.linalg.norm(resid[:, -1]), r.residual_norm, atol=tolerance(dtype, n=n, scale=scale, factor=200)
    )
    # Ritz values interlace the spectrum: inside [λ_min, λ_max]
    assert r.ritz_values.min() >= lam.min() - tolerance(dtype, n=n, scale=scale, factor=200)
    assert r.ritz_values.max() <= lam.max() + tolerance(dtype, n=n, scale=scale, factor=200)
    np.testing.assert_allclose(r.weights.sum(), 1.0, atol=tolerance(dtype, n=n, factor=100))


@given(pair=symmetric_with_spectrum(min_n=8, max_n=24, min_gap=0.05, low=-3, high=1), seed=st.integers(0, 2**16))
def test_gauss_quadrature_reproduces_moments(pair, seed):
    # m steps integrate polynomials of degree ≤ 2m − 1 exactly: vᵀAʲv = ‖v‖² Σ wᵢ θᵢʲ.
    a, lam = pair
    a = a / np.abs(lam).max()
    m = 4
    v = np.random.default_rng(seed).standard_normal(a.shape[0])
    r = es.lanczos(a, m, v0=v)
    for j in range(2 * m):
        exact = v @ np.linalg.matrix_power(a, j) @ v
        assert abs(r.quadrature(lambda t, j=j: t**j) - exact) <= 1e-11 * (v @ v)


def test_breakdown_after_d_distinct_eigenvalues(xp, dtype):
    @settings(max_examples=max_examples(xp))
    @given(distinct=st.lists(st.integers(-8, 8), min_size=1, max_size=6, unique=True), seed=st.integers(0, 2**16))
    def check(distinct, seed):
        _check_breakdown(xp, dtype, distinct, seed)

    check()


def _check_breakdown(xp, dtype, distinct, seed):
    # Gaps ≥ 0.5: in float32 the rounding noise grows by 1/gap per step, and with gaps
    # near 0.1 it reaches the breakdown threshold only a few steps late.
    vals = np.sort(np.array(distinct, dtype=float)) / 2
    d = vals.size
    # A diagonal matrix keeps the repeated eigenvalues exactly repeated in float32 too;
    # a rotated one would split them by rounding (and the Krylov space would grow).
    lam = np.repeat(vals, 4)
    r = es.lanczos(asarray(np.diag(lam), xp, dtype), lam.size, seed=seed)
    assert r.breakdown and np.all(np.isfinite(r.ritz_values))
    if es.backends.dtype_name(dtype) == "float64":
        assert r.num_steps == d and r.num_matvecs == d
        np.testing.assert_allclose(r.ritz_values, vals, atol=1e-10 * max(1, np.abs(vals).max()))
    else:
        # float32 rounding can leave β a little above the noise threshold for a few
        # more steps; the d eigenvalues are still all there and nothing else is spurious.
        gaps = np.abs(r.ritz_values[:, None] - vals[None, :])
        assert np.all(gaps.min(axis=0) <= 1e-3 * max(1, np.abs(vals).max()))
        assert r.ritz_values.min() >= vals.min() - 1e-4 and r.ritz_values.max() <= vals.max() + 1e-4


def test_breakdown_with_rotated_repeated_eigenvalues():
    lam = np.repeat([-2.0, 1.0, 1.5, 1.625], 5)
    q = orthogonal_matrix(lam.size, 0)
    r = es.lanczos((q * lam) @ q.T, lam.size, seed=0)
    assert r.breakdown and r.num_steps == 4
    np.testing.assert_allclose(r.ritz_values, [-2.0, 1.0, 1.5, 1.625], atol=1e-12)


def test_zero_operator_breaks_down_without_nan(xp, dtype):
    r = es.lanczos(asarray(np.zeros((5, 5)), xp, dtype), 3, seed=0)
    assert r.breakdown and r.num_steps == 1
    np.testing.assert_array_equal(r.ritz_values, [0.0])
    assert np.all(np.isfinite(r.weights))


def test_full_space_gives_exact_spectrum(xp, dtype):
    lam = np.linspace(-2, 3, 12)
    q = orthogonal_matrix(12, 3)
    r = es.lanczos(asarray((q * lam) @ q.T, xp, dtype), 12, seed=1)
    np.testing.assert_allclose(r.ritz_values, lam, atol=_rel_tol(dtype) * 30)


def test_ritz_vectors_and_residuals():
    lam = np.linspace(0, 1, 40) ** 2
    q = orthogonal_matrix(40, 0)
    a = (q * lam) @ q.T
    r = es.lanczos(a, 10, seed=0, return_ritz_vectors=True)
    y = r.ritz_vectors
    np.testing.assert_allclose(np.linalg.norm(a @ y - y * r.ritz_values, axis=0), r.ritz_residuals, atol=1e-12)


def test_local_reorth_matches_full_for_few_steps():
    lam = np.linspace(-1, 1, 60)
    a = (orthogonal_matrix(60, 1) * lam) @ orthogonal_matrix(60, 1).T
    full = es.lanczos(a, 8, seed=4)
    local = es.lanczos(a, 8, seed=4, reorth="local")
    assert local.basis is None
    np.testing.assert_allclose(local.alpha, full.alpha, atol=1e-12)
    np.testing.assert_allclose(local.beta, full.beta, atol=1e-12)


def test_same_seed_same_numbers(xp):
    a = asarray(np.diag(np.arange(1.0, 21.0)), xp)
    r1, r2 = es.lanczos(a, 6, seed=11), es.lanczos(a, 6, seed=11)
    np.testing.assert_array_equal(r1.alpha, r2.alpha)
    np.testing.assert_array_equal(r1.beta, r2.beta)


def test_errors():
    a = np.diag(np.arange(1.0, 6.0))
    with pytest.warns(es.EigenscopeWarning, match="clamped to 5"):
        assert es.lanczos(a, 9, seed=0).num_steps <= 5
    with pytest.raises(ValueError, match="num_steps must be an integer >= 1, got 0"):
        es.lanczos(a, 0)
    with pytest.raises(ValueError, match="the matrix is not symmetric"):
        es.lanczos(np.triu(np.ones((4, 4))), 2)
    liar = es.LinearOperator.from_matvec(lambda x: np.triu(np.ones((4, 4))) @ x, shape=(4, 4), dtype=np.float64)
    with pytest.raises(ValueError, match="not symmetric"):
        es.lanczos(liar, 2, check_symmetric=True, seed=0)
    calls = []

    def bad(x):
        calls.append(1)
        return a @ x if len(calls) < 3 else a @ x * np.nan

    nan_op = es.LinearOperator.from_matvec(bad, shape=(5, 5), dtype=np.float64, check_finite=False)
    with pytest.raises(FloatingPointError, match="step 3"):
        es.lanczos(nan_op, 4, seed=0)
    with pytest.raises(ValueError, match="unknown reorth 'selective'"):
        es.lanczos(a, 2, reorth="selective")
    with pytest.raises(ValueError, match="lanczos v0 expected 5 rows"):
        es.lanczos(a, 2, v0=np.ones(3))


def test_host_basis_matches_device_basis(xp, dtype):
    lam = np.linspace(-1, 2, 30)
    q = orthogonal_matrix(30, 5)
    a = asarray((q * lam) @ q.T, xp, dtype)
    dev = es.lanczos(a, 12, seed=2)
    host_r = es.lanczos(a, 12, seed=2, reorth="host", return_ritz_vectors=True)
    assert isinstance(host_r.basis, np.ndarray)
    np.testing.assert_allclose(host_r.alpha, dev.alpha, atol=_rel_tol(dtype) * 10)
    np.testing.assert_allclose(host_r.beta, dev.beta, atol=_rel_tol(dtype) * 10)
    y = host(host_r.ritz_vectors)
    np.testing.assert_allclose(y.T @ y, np.eye(12), atol=_rel_tol(dtype) * 100)


@pytest.mark.parametrize("dtype_name", ["float64", "float32"])
def test_long_runs_stay_orthogonal_without_ghosts(dtype_name):
    # Converged outliers are where plain Lanczos loses orthogonality and repeats Ritz values;
    # the three-term step + CGS with the DGKS second pass must keep Q orthonormal to working
    # precision over many steps.
    rng = np.random.default_rng(0)
    n, m = 600, 200
    outliers = np.array([50.0, 40.0, 30.0, 20.0, 10.0, 5.0])
    lam = np.concatenate([0.01 * rng.standard_normal(n - outliers.size), outliers])
    q, _ = np.linalg.qr(rng.standard_normal((n, n)))
    a = ((q * lam) @ q.T).astype(dtype_name)
    r = es.lanczos(a, m, seed=0)
    basis = np.asarray(r.basis, dtype=np.float64)
    eps = np.finfo(dtype_name).eps
    assert np.abs(basis.T @ basis - np.eye(r.num_steps)).max() <= 1e3 * eps
    for value in outliers:  # each outlier exactly once among the Ritz values: no ghost copies
        assert np.sum(np.abs(r.ritz_values - value) <= 1e-3 * value) == 1


def test_host_basis_runs_the_arithmetic_of_the_device_basis():
    # Both strategies take the three-term step, then the same Gram–Schmidt (``_orth``) against
    # the stored basis: on NumPy, where host and device are one, the numbers are identical.
    lam = np.linspace(-1, 2, 50) ** 3
    q = orthogonal_matrix(50, 7)
    a = (q * lam) @ q.T
    dev = es.lanczos(a, 30, seed=3)
    host_r = es.lanczos(a, 30, seed=3, reorth="host")
    np.testing.assert_array_equal(host_r.alpha, dev.alpha)
    np.testing.assert_array_equal(host_r.beta, dev.beta)
    np.testing.assert_array_equal(host_r.basis, dev.basis)


def test_check_symmetric_leaves_the_start_vector_alone(xp):
    a = asarray(np.diag(np.arange(1.0, 21.0)), xp)
    plain, checked = es.lanczos(a, 6, seed=11), es.lanczos(a, 6, seed=11, check_symmetric=True)
    np.testing.assert_array_equal(checked.alpha, plain.alpha)
    assert checked.num_matvecs == plain.num_matvecs + 2
