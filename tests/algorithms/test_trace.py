"""Stochastic trace estimators: exactness, unbiasedness, error estimates, budgets, errors."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import eigenscope as es
import eigenscope.backends as eb
from eigenscope import TraceResult, trace
from eigenscope.testing import orthogonal_matrix, spectra, tolerance
from tests._helpers import Counting, asarray, dense

METHODS = ["hutchinson", "hutch++", "xtrace"]


def low_rank(u, s, xp, dtype):
    return es.LowRankOperator(asarray(u, xp, dtype), asarray(s, xp, dtype))


@pytest.fixture(scope="module")
def flat_matrix():
    """n = 24, eigenvalues in [0.5, 1.5]: a moderate Hutchinson variance around tr = 24."""
    q = orthogonal_matrix(24, 11)
    lam = np.linspace(0.5, 1.5, 24)
    a = (q * lam) @ q.T
    return (a + a.T) / 2


@st.composite
def low_rank_problems(draw, vary_shapes=True):
    """(n, U (n, r) orthonormal, s (r,), method, budget, distribution) with rank r small enough to be exact.

    ``vary_shapes=False`` fixes n, r, the budget and the distribution: JAX compiles
    every new shape (~0.05 s per operation here), so its examples differ only in values.
    """
    r = draw(st.integers(1, 4)) if vary_shapes else 3
    n = draw(st.integers(2 * r + 6, 32)) if vary_shapes else 24
    s = draw(spectra(min_n=r, max_n=r, low=-5.0, high=5.0, max_gap=3.0))
    u = orthogonal_matrix(n, draw(st.integers(0, 2**32 - 1)))[:, :r]
    method = draw(st.sampled_from(["hutch++", "xtrace"]))
    # Hutch++ is exact once its sketch k = budget // 3 reaches r (and 3r + 1 leaves 2 residual probes
    # for a standard error); XTrace once m - 1 = budget // 2 - 1 does.
    least = 3 * r + 1 if method == "hutch++" else 2 * (r + 1)
    budget = draw(st.integers(least, least + 6)) if vary_shapes else 12
    distribution = draw(st.sampled_from(["rademacher", "normal", "sphere"] if vary_shapes else ["sphere"]))
    return n, u, s, method, budget, distribution


def test_exact_on_low_rank(xp, dtype):
    jax = eb.backend_name(xp) == "jax"

    @settings(max_examples=4 if jax else 10)
    @given(low_rank_problems(vary_shapes=not jax), st.integers(0, 2**16))
    def inner(problem, seed):
        n, u, s, method, budget, distribution = problem
        r = trace(low_rank(u, s, xp, dtype), budget, method=method, seed=seed, distribution=distribution)
        scale = float(np.sum(np.abs(s))) + 1.0
        assert abs(r.estimate - float(np.sum(s))) <= tolerance(dtype, n=n, scale=scale, factor=200)
        assert r.std_error <= tolerance(dtype, n=n, scale=scale, factor=200)
        assert r.num_matvecs <= budget and r.method == method and r.converged is None

    inner()


@pytest.mark.parametrize("method", ["hutch++", "xtrace"])
def test_exact_on_low_rank_nonsymmetric(method):
    rng = np.random.default_rng(3)
    u, v = rng.standard_normal((20, 3)), rng.standard_normal((20, 3))
    op = es.DenseOperator(u @ v.T, symmetric=False)
    r = trace(op, 12, method=method, seed=0)
    assert r.estimate == pytest.approx(np.trace(u @ v.T), abs=1e-10 * np.abs(u @ v.T).sum())


@pytest.mark.parametrize("method", METHODS)
def test_unbiased_and_error_estimate_matches_spread(xp, dtype, flat_matrix, method):
    op = dense(flat_matrix, xp, dtype)
    truth = float(np.trace(flat_matrix))
    runs = [trace(op, 12, method=method, seed=seed) for seed in range(20)]
    est = np.array([r.estimate for r in runs])
    se = np.array([r.std_error for r in runs])
    spread = float(np.std(est, ddof=1))
    if method == "hutchinson":
        # Var(zᵀAz) = 2(‖A‖_F² − Σ A_ii²) for Rademacher z: the CLT bound needs no estimate.
        var = 2 * (np.sum(flat_matrix**2) - np.sum(np.diag(flat_matrix) ** 2)) / 12
        assert spread == pytest.approx(np.sqrt(var), rel=0.35)
        sigma = np.sqrt(var / est.size)
    else:
        sigma = spread / np.sqrt(est.size)
    assert abs(est.mean() - truth) <= 4 * sigma
    # The reported standard error agrees with the observed spread over seeds.
    assert 0.5 <= float(np.sqrt(np.mean(se**2))) / spread <= 2.0


@pytest.mark.parametrize("method", METHODS)
def test_same_seed_same_numbers(xp, dtype, flat_matrix, method):
    op = dense(flat_matrix, xp, dtype)
    a = trace(op, 12, method=method, seed=7)
    b = trace(op, 12, method=method, seed=7)
    c = trace(op, 12, method=method, seed=8)
    assert (a.estimate, a.std_error, a.num_matvecs) == (b.estimate, b.std_error, b.num_matvecs)
    np.testing.assert_array_equal(a.samples, b.samples)
    assert a.estimate != c.estimate


@pytest.fixture(scope="module")
def decaying_matrix():
    """n = 64, eigenvalues 1/i²: the regime where Hutch++ and XTrace pay off."""
    q = orthogonal_matrix(64, 12)
    a = (q / np.arange(1.0, 65.0) ** 2) @ q.T
    return (a + a.T) / 2


@pytest.mark.parametrize(("method", "rtol"), [("hutchinson", 4e-3), ("hutch++", 1e-3), ("xtrace", 1e-3)])
def test_adaptive_stops_converged_and_close(xp, dtype, flat_matrix, decaying_matrix, method, rtol):
    # Hutchinson on the flat spectrum (~450 probes); the low-rank-aware methods on the decaying one.
    a = flat_matrix if method == "hutchinson" else decaying_matrix
    truth = float(np.trace(a))
    r = trace(dense(a, xp, dtype), method=method, rtol=rtol, seed=5, max_matvecs=900, block_size=16)
    assert isinstance(r, TraceResult)
    assert r.converged is True
    assert r.std_error <= rtol * abs(r.estimate)
    assert r.num_matvecs <= 900
    assert abs(r.estimate - truth) <= 5 * r.std_error + tolerance(dtype, n=a.shape[0], scale=truth)


@pytest.mark.parametrize("method", METHODS)
def test_adaptive_reports_budget_exhaustion(flat_matrix, method):
    with pytest.warns(es.ConvergenceWarning, match="did not reach"):
        r = trace(flat_matrix, method=method, atol=1e-12, max_matvecs=40, block_size=4, seed=0)
    assert r.converged is False
    assert 36 <= r.num_matvecs <= 40


def test_adaptive_low_rank_stops_early(xp, dtype):
    u = orthogonal_matrix(24, 2)[:, :3]
    op = low_rank(u, np.array([3.0, 2.0, 1.0]), xp, dtype)
    for method in ("hutch++", "xtrace"):
        # A first round of 12 products already holds the rank-3 range (the shapes of test_exact_on_low_rank).
        r = trace(op, 12, method=method, rtol=1e-3, seed=1)
        assert r.converged and r.num_matvecs <= 12
        assert r.estimate == pytest.approx(6.0, rel=1e-4)


@pytest.mark.parametrize(
    ("method", "kwargs"),
    [
        # Adaptive runs whose first round is wider than block_size: chunked products, then rounds.
        ("hutchinson", {"num_matvecs": 7, "rtol": 1e-3, "max_matvecs": 37, "block_size": 5}),
        ("hutch++", {"num_matvecs": 14, "rtol": 1e-4, "max_matvecs": 45, "block_size": 3}),
        ("xtrace", {"num_matvecs": 14, "atol": 1e-6, "max_matvecs": 31, "block_size": 4}),
        ("xtrace", {"num_matvecs": 15, "block_size": 4}),  # an odd budget leaves one product unspent
    ],
)
def test_num_matvecs_counts_products(xp, dtype, flat_matrix, method, kwargs):
    counter = Counting(asarray(flat_matrix, xp, dtype))
    if "max_matvecs" in kwargs:
        with pytest.warns(es.ConvergenceWarning, match="did not reach"):
            r = trace(counter.operator(xp, dtype), method=method, seed=0, **kwargs)
    else:
        r = trace(counter.operator(xp, dtype), method=method, seed=0, **kwargs)
    assert r.num_matvecs == counter.columns
    assert counter.vector_calls == 0  # blocks go through matmat, never one vector at a time
    if "max_matvecs" in kwargs:  # the targets are out of reach: the budget is spent
        assert r.converged is False
        assert kwargs["max_matvecs"] - 2 * kwargs["block_size"] < r.num_matvecs <= kwargs["max_matvecs"]
    else:
        assert r.num_matvecs == 2 * (kwargs["num_matvecs"] // 2)


def test_explicit_probes(xp, dtype, flat_matrix):
    rng = np.random.default_rng(0)
    z = np.sign(rng.standard_normal((24, 6)))
    op = dense(flat_matrix, xp, dtype)
    probes = asarray(z, xp, dtype)
    r = trace(op, method="hutchinson", probes=probes)
    values = np.einsum("ij,ij->j", z, flat_matrix @ z)
    assert r.num_matvecs == 6
    assert r.estimate == pytest.approx(values.mean(), rel=tolerance(dtype, n=24, factor=20))
    np.testing.assert_allclose(r.samples, values, rtol=tolerance(dtype, n=24, factor=20))
    assert trace(op, method="hutch++", probes=probes).num_matvecs == 6 + 3
    assert trace(op, method="xtrace", probes=probes).num_matvecs == 12
    assert trace(op, 9, method="hutch++", probes=probes).num_matvecs == 9


def test_sketch_spanning_everything_is_exact():
    q = orthogonal_matrix(5, 0)
    a = (q * np.arange(1.0, 6.0)) @ q.T
    r = trace(a, 30, method="hutch++", seed=0)
    assert r.estimate == pytest.approx(15.0, rel=1e-12)
    assert r.std_error == 0.0 and r.num_matvecs == 10 and r.samples.size == 0


def test_accepts_arrays_and_numpy_generator():
    a = np.diag(np.arange(1.0, 9.0))
    # Rademacher Hutchinson is exact on a diagonal matrix: zᵀDz = tr D.
    assert trace(a, 4, method="hutchinson", seed=0).estimate == pytest.approx(36.0)
    assert trace(a, 4, method="hutchinson", seed=np.random.default_rng(1)).std_error == pytest.approx(0.0, abs=1e-12)


def test_errors(flat_matrix):
    with pytest.raises(ValueError, match="square"):
        trace(np.ones((3, 4)), 6)
    with pytest.raises(ValueError, match="'hutchinson', 'hutch\\+\\+', 'xtrace'"):
        trace(flat_matrix, 6, method="hutch+")
    with pytest.raises(ValueError, match="distribution"):
        trace(flat_matrix, 6, distribution="uniform")
    with pytest.raises(ValueError, match="num_matvecs"):
        trace(flat_matrix, 0, method="hutchinson")
    with pytest.raises(ValueError, match="must be an integer >= 3"):
        trace(flat_matrix, 2, method="hutch++")
    with pytest.raises(ValueError, match="must be an integer >= 2"):
        trace(flat_matrix, 1, method="xtrace")
    with pytest.raises(TypeError, match="int"):
        trace(flat_matrix, 6.0)
    with pytest.raises(ValueError, match="rtol"):
        trace(flat_matrix, rtol=-1.0)
    with pytest.raises(ValueError, match="block_size"):
        trace(flat_matrix, 6, block_size=0)
    with pytest.raises(ValueError, match="exceeds max_matvecs"):
        trace(flat_matrix, 30, rtol=0.1, max_matvecs=20)
    probes = np.ones((24, 4))
    with pytest.raises(ValueError, match="adaptive"):
        trace(flat_matrix, probes=probes, rtol=0.1)
    with pytest.raises(ValueError, match="rows"):
        trace(flat_matrix, probes=np.ones((5, 4)))
    with pytest.raises(TypeError, match="dtype"):
        trace(flat_matrix, probes=np.ones((24, 4), dtype=np.float32))
    with pytest.raises(ValueError, match="columns"):
        trace(flat_matrix, 9, method="hutch++", probes=probes)
    bad = flat_matrix.copy()
    bad[0, 0] = np.nan
    with pytest.raises(FloatingPointError, match="NaN"):
        trace(es.DenseOperator(bad, symmetric=True), 6, method="hutchinson")
