"""One wanted pair: the main run's own start vector certifies the answer when it can, and the
fresh-start verification runs whenever it cannot."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import eigenscope as es
from eigenscope.algorithms import _christoffel, _verify
from tests._helpers import asarray, expected_eigenvalues, host


def _rotated(lam: np.ndarray, seed: int) -> np.ndarray:
    q, _ = np.linalg.qr(np.random.default_rng(seed).standard_normal((lam.size, lam.size)))
    return (q * lam) @ q.T


def _network_like(n: int, seed: int) -> np.ndarray:
    """A bulk near zero (both signs) and a few outliers, as a network's Hessian."""
    rng = np.random.default_rng(seed)
    bulk = rng.standard_normal(n - 4) * 0.05 + rng.standard_normal(n - 4) ** 3 * 0.01
    return np.concatenate([bulk, [4.0, 2.5, 1.7, -0.9]])


def _direct_log_sum(alpha, beta, x):
    p = [1.0, (x - alpha[0]) / beta[0]]
    for i in range(1, len(alpha)):
        p.append(((x - alpha[i]) * p[i] - beta[i - 1] * p[i - 1]) / beta[i])
    return math.log(sum(v * v for v in p))


def test_log_christoffel_sum_matches_the_recurrence_and_never_overflows():
    rng = np.random.default_rng(0)
    alpha, beta = rng.standard_normal(12), rng.uniform(0.5, 1.0, 12)
    for x in (3.0, 10.0, -7.0):
        now, before = _christoffel.log_christoffel_sum(alpha, beta, x)
        assert now == pytest.approx(_direct_log_sum(alpha, beta, x), rel=1e-12)
        assert before == pytest.approx(_direct_log_sum(alpha[:-1], beta[:-1], x), rel=1e-12)
    # Growth ≈ 200 per step (ρ + 1/ρ = x/β) for 500 steps: far beyond float64's range, still finite.
    now, before = _christoffel.log_christoffel_sum(np.zeros(500), np.full(500, 0.5), 100.0)
    assert math.isfinite(now) and now > 5000 and now - before == pytest.approx(2 * math.log(200), rel=1e-3)


def _no_scan(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("the fresh-start scan ran")

    monkeypatch.setattr(_verify, "_scan", refuse)


@pytest.mark.parametrize("which", ["LA", "SA", "LM", "BE"])
def test_the_main_run_certifies_one_separated_pair(xp, dtype_name, which, monkeypatch):
    lam = _network_like(300, 1)
    if which == "SA":
        lam = -lam  # the separated outlier at the low end
    a = _rotated(lam, 2)
    _no_scan(monkeypatch)
    r = es.eigsh(asarray(a, xp, getattr(xp, dtype_name)), 1, which=which, seed=3)
    assert r.converged.all()
    want = expected_eigenvalues(lam, 1, which)
    tol = math.sqrt(float(np.finfo(dtype_name).eps))
    np.testing.assert_allclose(r.eigenvalues, want, rtol=2 * tol)
    # The products after convergence are reported as the verification's.
    assert 0 <= r.verification_matvecs < r.num_matvecs
    x = host(r.eigenvectors)
    assert np.linalg.norm(a @ x - x * r.eigenvalues) <= r.residual_norms[0] * 1.01 + 1e-5 * np.abs(lam).max()


@pytest.mark.parametrize("tol", [1e-3, 1e-4, None])
def test_fewer_products_than_main_run_plus_scan(tol):
    a = _rotated(_network_like(1500, 4), 5)
    ours = es.eigsh(a, 1, seed=0, tol=tol)
    assert ours.converged.all()
    # The same run with the start vector given (the same draw): the start cannot certify, the scan runs.
    start = es.backends.random_source(0, xp=np, device=None).normal((1500, 1), np.float64)[:, 0]
    scanned = es.eigsh(a, 1, v0=start, seed=0, tol=tol)
    assert scanned.converged.all()
    # Both main runs are the same sequence up to convergence: what follows is verification.
    assert ours.num_matvecs - ours.verification_matvecs == scanned.num_matvecs - scanned.verification_matvecs
    for r in (ours, scanned):  # the continued run is the more accurate one
        np.testing.assert_allclose(r.eigenvalues, [4.0], rtol=(tol or 1e-8) ** 2 * 100)
    if tol is None:
        # At √ε the wanted atom must be resolved to 1e-8: the start gives up at once, nothing is wasted.
        assert ours.num_matvecs == scanned.num_matvecs
    else:
        assert ours.num_matvecs <= scanned.num_matvecs - 3


@pytest.mark.parametrize(
    "case",
    ["explicit_start", "two_pairs", "block", "restarted"],
)
def test_the_scan_runs_where_the_start_cannot_certify(case, monkeypatch):
    lam = _network_like(400, 6)
    a = _rotated(lam, 7)
    kwargs: dict = {"seed": 0}
    k = 1
    if case == "explicit_start":
        kwargs["v0"] = np.ones(400)
    elif case == "two_pairs":
        k = 2  # a repeated eigenvalue's copy is invisible to one sequence
    elif case == "block":
        kwargs["method"] = "block"
    elif case == "restarted":
        lam = np.linspace(0, 1, 400) ** 2  # a small gap: restarts before convergence
        a = _rotated(lam, 8)
    calls = []
    original = _verify._scan

    def counted(*args, **kw):
        calls.append(1)
        return original(*args, **kw)

    monkeypatch.setattr(_verify, "_scan", counted)
    r = es.eigsh(a, k, **kwargs)
    assert r.converged.all() and calls
    assert (r.num_restarts > 0) is (case == "restarted")
    np.testing.assert_allclose(np.sort(r.eigenvalues), np.sort(expected_eigenvalues(lam, k, "LA")), rtol=1e-6)


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(40, 160),
    top=st.sampled_from(["single", "double", "near_tie", "tiny_gap", "flat"]),
    which=st.sampled_from(["LA", "SA", "LM", "BE"]),
    seed=st.integers(0, 2**16),
    dtype_name=st.sampled_from(["float64", "float32"]),
)
def test_one_pair_is_the_extreme_eigenvalue(n, top, which, seed, dtype_name):
    rng = np.random.default_rng(seed)
    lam = rng.uniform(-1, 1, n)
    if top == "double":
        lam[:2] = 3.0
    elif top == "near_tie":
        lam[:2] = [3.0, 3.0 * (1 - 1e-9)]
    elif top == "tiny_gap":
        lam[0] = lam.max() + 1e-3
    elif top == "flat":
        lam = np.sign(lam) * np.abs(lam) ** 0.2
    if which == "SA":
        lam = -lam
    a = _rotated(lam, seed + 1)
    eps = float(np.finfo(dtype_name).eps)
    r = es.eigsh(a.astype(dtype_name), 1, which=which, seed=seed)
    assert r.converged.all()
    want = expected_eigenvalues(lam, 1, which)
    bound = r.residual_norms[0] + 2 * math.sqrt(eps) * np.abs(lam).max() + 200 * eps * np.abs(lam).max() * math.sqrt(n)
    if which == "LM":
        np.testing.assert_allclose(np.abs(r.eigenvalues), np.abs(want), rtol=0, atol=bound)
    else:
        np.testing.assert_allclose(r.eigenvalues, want, rtol=0, atol=bound)
