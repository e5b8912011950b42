"""Stochastic diagonal estimators: exactness, unbiasedness, error estimates, budgets, errors."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import eigenscope as es
import eigenscope.backends as eb
from eigenscope import DiagonalResult, diagonal
from eigenscope.testing import orthogonal_matrix, spectra, tolerance
from tests._helpers import Counting, asarray, dense, host


@pytest.fixture(scope="module")
def matrix():
    """n = 12, eigenvalues in [-1, 2]."""
    q = orthogonal_matrix(12, 4)
    a = (q * np.linspace(-1.0, 2.0, 12)) @ q.T
    return (a + a.T) / 2


def is_jax(xp):
    # JAX compiles every new shape (~0.1 s per operation here): its examples keep one shape.
    return eb.backend_name(xp) == "jax"


def test_rademacher_hutchinson_exact_on_diagonal(xp, dtype):
    jax = is_jax(xp)

    @settings(max_examples=4 if jax else 10)
    @given(
        spectra(min_n=12 if jax else 1, max_n=12 if jax else 30), st.integers(4, 4 if jax else 8), st.integers(0, 2**16)
    )
    def inner(d, p, seed):
        op = es.DiagonalOperator(asarray(d, xp, dtype))
        r = diagonal(op, p, seed=seed, block_size=2)
        tol = tolerance(dtype, n=p, scale=float(np.abs(d).max()) + 1.0)
        assert isinstance(r, DiagonalResult) and r.method == "hutchinson" and r.num_matvecs == p
        np.testing.assert_allclose(host(r.estimate), d, atol=tol)
        assert float(np.max(host(r.std_error))) <= tol

    inner()


def test_diag_plus_plus_exact_on_low_rank(xp, dtype):
    jax = is_jax(xp)

    @settings(max_examples=4 if jax else 10)
    @given(st.integers(0, 2**32 - 1), st.integers(0, 2**16), st.data())
    def inner(basis_seed, seed, data):
        r = 2 if jax else data.draw(st.integers(1, 4))
        n = 12 if jax else data.draw(st.integers(3 * r + 4, 30))
        extra = 2 if jax else data.draw(st.integers(0, 3))
        s = data.draw(spectra(min_n=r, max_n=r, low=-5.0, high=5.0))
        u = orthogonal_matrix(n, basis_seed)[:, :r]
        op = es.LowRankOperator(asarray(u, xp, dtype), asarray(s, xp, dtype))
        budget = 3 * r + 1 + extra  # sketch k = budget // 3 >= r
        res = diagonal(op, budget, method="diag++", seed=seed)
        tol = tolerance(dtype, n=n, scale=float(np.abs(s).sum()) + 1.0, factor=200)
        np.testing.assert_allclose(host(res.estimate), (u**2) @ s, atol=tol)
        assert float(np.max(host(res.std_error))) <= tol
        assert res.num_matvecs == budget

    inner()


def test_diag_plus_plus_nonsymmetric_low_rank():
    rng = np.random.default_rng(1)
    a = rng.standard_normal((15, 2)) @ rng.standard_normal((2, 15))
    r = diagonal(es.DenseOperator(a, symmetric=False), 9, method="diag++", seed=0)
    np.testing.assert_allclose(r.estimate, np.diag(a), atol=1e-12 * np.abs(a).sum())


@pytest.mark.parametrize("method", ["hutchinson", "diag++"])
def test_unbiased_and_error_estimate_matches_spread(xp, dtype, matrix, method):
    op = dense(matrix, xp, dtype)
    runs = [diagonal(op, 9, method=method, seed=seed) for seed in range(20)]
    est = np.stack([host(r.estimate) for r in runs])
    se = np.stack([host(r.std_error) for r in runs])
    spread = np.std(est, axis=0, ddof=1)
    if method == "hutchinson":
        # Rademacher: Var(entry j) = Σ_{l≠j} A_jl² / p.
        sigma = np.sqrt((np.sum(matrix**2, axis=1) - np.diag(matrix) ** 2) / 9)
        np.testing.assert_allclose(spread, sigma, rtol=0.5)
    else:
        sigma = spread
    z = (est.mean(axis=0) - np.diag(matrix)) / (sigma / np.sqrt(est.shape[0]))
    assert np.max(np.abs(z)) <= 4.5  # 12 entries, each within a CLT bound
    ratio = np.sqrt(np.mean(se**2, axis=0)) / spread
    assert 0.5 <= float(np.median(ratio)) <= 2.0


@pytest.mark.parametrize("distribution", ["normal", "sphere"])
def test_rotation_invariant_probes_unbiased(matrix, distribution):
    runs = [diagonal(matrix, 8, seed=seed, distribution=distribution) for seed in range(60)]
    est = np.stack([r.estimate for r in runs])
    se = np.sqrt(np.mean(np.stack([r.std_error for r in runs]) ** 2, axis=0))
    z = (est.mean(axis=0) - np.diag(matrix)) / (np.std(est, axis=0, ddof=1) / np.sqrt(60))
    assert np.max(np.abs(z)) <= 4.5
    assert 0.5 <= float(np.median(se / np.std(est, axis=0, ddof=1))) <= 2.0


def test_same_seed_same_numbers(xp, dtype, matrix):
    op = dense(matrix, xp, dtype)
    for method in ("hutchinson", "diag++"):
        a = diagonal(op, 9, method=method, seed=3)
        b = diagonal(op, 9, method=method, seed=3)
        np.testing.assert_array_equal(host(a.estimate), host(b.estimate))
        np.testing.assert_array_equal(host(a.std_error), host(b.std_error))
        assert eb.namespace(a.estimate) is xp and a.estimate.dtype == dtype and a.estimate.shape == (12,)


@pytest.mark.parametrize(
    ("method", "kwargs"),
    [
        ("hutchinson", {"num_matvecs": 7, "block_size": 3}),
        ("hutchinson", {"rtol": 1e-6, "max_matvecs": 23, "block_size": 5}),
        ("diag++", {"num_matvecs": 10, "block_size": 2}),
        ("diag++", {"atol": 1e-9, "max_matvecs": 22, "block_size": 4}),
    ],
)
def test_num_matvecs_counts_products(xp, dtype, matrix, method, kwargs):
    counter = Counting(asarray(matrix, xp, dtype))
    if "num_matvecs" in kwargs:
        r = diagonal(counter.operator(xp, dtype), method=method, seed=0, **kwargs)
    else:  # the target is out of reach: the budget is spent, with a warning
        with pytest.warns(es.ConvergenceWarning, match="did not reach"):
            r = diagonal(counter.operator(xp, dtype), method=method, seed=0, **kwargs)
    assert r.num_matvecs == counter.columns and counter.vector_calls == 0
    assert r.num_matvecs == kwargs.get("num_matvecs", kwargs.get("max_matvecs"))
    assert r.converged is (None if "num_matvecs" in kwargs else False)


def test_adaptive_converges(xp, dtype, matrix):
    truth = np.diag(matrix)
    for method in ("hutchinson", "diag++"):
        r = diagonal(dense(matrix, xp, dtype), method=method, rtol=0.05, seed=2, max_matvecs=2000)
        err, se = host(r.estimate) - truth, host(r.std_error)
        rms = lambda x: float(np.sqrt(np.mean(x**2)))  # noqa: E731
        assert r.converged is True
        assert rms(se) <= 0.05 * rms(host(r.estimate))
        assert rms(err) <= 3 * rms(se)


def test_explicit_probes_and_exact_sketch():
    q = orthogonal_matrix(6, 1)
    a = (q * np.arange(1.0, 7.0)) @ q.T
    z = np.sign(np.random.default_rng(0).standard_normal((6, 4)))
    r = diagonal(a, probes=z)
    np.testing.assert_allclose(r.estimate, np.mean(z * (a @ z), axis=1))
    assert r.num_matvecs == 4
    # A sketch as wide as the matrix gives the diagonal exactly, with zero error.
    r = diagonal(a, 30, method="diag++", seed=0)
    np.testing.assert_allclose(r.estimate, np.diag(a), atol=1e-12)
    assert r.num_matvecs == 12 and np.all(r.std_error == 0)


def test_errors(matrix):
    with pytest.raises(ValueError, match="square"):
        diagonal(np.ones((3, 4)), 5)
    with pytest.raises(ValueError, match="'hutchinson', 'diag\\+\\+'"):
        diagonal(matrix, 5, method="hutch++")
    with pytest.raises(ValueError, match="must be an integer >= 3"):
        diagonal(matrix, 2, method="diag++")
    with pytest.raises(ValueError, match="num_matvecs"):
        diagonal(matrix, 0)
    with pytest.raises(ValueError, match="distribution"):
        diagonal(matrix, 5, distribution="cauchy")
    with pytest.raises(ValueError, match="adaptive"):
        diagonal(matrix, probes=np.ones((12, 2)), atol=1.0)
    with pytest.raises(ValueError, match="probes"):
        diagonal(matrix, 5, probes=np.ones((12, 4)))
    bad = matrix.copy()
    bad[3, 3] = np.nan
    with pytest.raises(FloatingPointError, match="NaN"):
        diagonal(es.DenseOperator(bad, symmetric=True), 4)
