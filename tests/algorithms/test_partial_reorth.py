"""``reorth="partial"``: Simon's partial re-orthogonalization (``lanczos``, ``spectral_density``).

Ground truth: dense ``eigh``, the ``"full"`` strategy on the same start vectors, and the
defining property — Lanczos vectors orthogonal to ``√ε`` (semi-orthogonal), hence no ghost
copies of converged Ritz values — checked on the spectra where plain Lanczos loses
orthogonality fastest (converged outliers above a bulk), on every backend and dtype.
"""

from __future__ import annotations

import numpy as np
import pytest

import eigenscope as es
from eigenscope.algorithms import _recurrence
from eigenscope.algorithms._orth import row_dots, row_norms
from eigenscope.testing import orthogonal_matrix
from tests._helpers import asarray


def _outliers_over_bulk(n: int = 400, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    outliers = np.array([50.0, 40.0, 30.0, 20.0, 10.0, 5.0])
    lam = np.concatenate([0.01 * rng.standard_normal(n - outliers.size), outliers])
    q = orthogonal_matrix(n, seed)
    return (q * lam) @ q.T, outliers


def _count_full_passes(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    calls: list[int] = []
    original = _recurrence.reorthogonalize_rows

    def counted(*args, **kwargs):
        calls.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(_recurrence, "reorthogonalize_rows", counted)
    return calls


def test_semi_orthogonal_without_ghosts(xp, dtype):
    a, outliers = _outliers_over_bulk()
    m = 150
    r = es.lanczos(asarray(a, xp, dtype), m, seed=0, reorth="partial")
    basis = np.asarray(es.backends.to_numpy(r.basis), dtype=np.float64)
    eps = float(np.finfo(es.backends.dtype_name(dtype)).eps)
    assert np.abs(basis.T @ basis - np.eye(r.num_steps)).max() <= np.sqrt(eps)
    for value in outliers:  # each outlier exactly once: no ghost copies
        assert np.sum(np.abs(r.ritz_values - value) <= 1e-3 * value) == 1
    full = es.lanczos(asarray(a, xp, dtype), m, seed=0, reorth="full")
    top = np.sort(r.ritz_values)[-6:]
    np.testing.assert_allclose(top, np.sort(full.ritz_values)[-6:], rtol=100 * eps)
    np.testing.assert_allclose(top, np.sort(outliers), rtol=100 * eps)
    # The Ritz residuals still bound the distance to an eigenvalue.
    lam = np.linalg.eigvalsh(a)
    near = np.abs(r.ritz_values[:, None] - lam[None, :]).min(axis=1)
    assert np.all(near <= r.ritz_residuals + 1e3 * eps * 50)


def test_density_matches_full_reorthogonalization(xp, dtype):
    a, _ = _outliers_over_bulk(300, seed=1)
    ap = asarray(a, xp, dtype)
    partial = es.spectral_density(ap, 60, 3, seed=2, reorth="partial")
    full = es.spectral_density(ap, 60, 3, seed=2)  # the default
    eps = float(np.finfo(es.backends.dtype_name(dtype)).eps)
    for j in range(6):
        m_p, m_f = partial.moments(j), full.moments(j)
        assert abs(m_p - m_f) <= 1e3 * eps * 50.0**j
    np.testing.assert_allclose(partial.support, full.support, rtol=100 * eps, atol=100 * eps)
    np.testing.assert_allclose(partial.weights.sum(axis=1), 1.0, atol=10 * eps)


def test_only_some_steps_pass_over_the_basis(monkeypatch):
    # A Wigner matrix has no outliers to converge: orthogonality is lost slowly, and a
    # handful of the 200 steps need the basis (every step does with reorth="full").
    rng = np.random.default_rng(0)
    w = rng.standard_normal((1000, 1000))
    w = (w + w.T) / np.sqrt(2000)
    calls = _count_full_passes(monkeypatch)
    r = es.lanczos(w, 200, seed=0, reorth="partial")
    assert 0 < len(calls) <= 20
    basis = np.asarray(r.basis)
    assert np.abs(basis.T @ basis - np.eye(200)).max() <= np.sqrt(np.finfo(np.float64).eps)
    calls.clear()
    es.lanczos(w, 200, seed=0, reorth="full")
    assert len(calls) == 200


def test_breakdown_is_found_on_an_orthogonalized_vector(xp, dtype):
    # A rank-deficient operator: the Krylov space of a start vector is invariant after as
    # many steps as distinct eigenvalues; the near-breakdown forces a full pass, so β is
    # tested after Gram–Schmidt as with reorth="full".
    lam = np.repeat([-1.0, 0.5, 2.0, 3.5], 5)
    r = es.lanczos(asarray(np.diag(lam), xp, dtype), lam.size, seed=3, reorth="partial")
    assert r.breakdown and r.num_steps == 4
    np.testing.assert_allclose(r.ritz_values, [-1.0, 0.5, 2.0, 3.5], atol=1e-4)


def test_row_reductions_are_accurate_on_transposed_layouts():
    # The rows of a transposed (n, p) product are strided: NumPy sums them naively, which
    # left 2e-5 relative error in float32 at n = 2·10⁴ (ruining a batched recurrence).
    rng = np.random.default_rng(0)
    w = rng.standard_normal((20000, 2)).astype(np.float32).T  # (2, n), F-ordered
    q = (rng.standard_normal((20000, 2)).astype(np.float32)).T
    xp = es.backends.resolve_namespace(np)
    exact_norms = np.linalg.norm(w.astype(np.float64), axis=1)
    np.testing.assert_allclose(np.asarray(row_norms(xp, w), dtype=np.float64), exact_norms, rtol=2e-7)
    exact_dots = np.sum(q.astype(np.float64) * w.astype(np.float64), axis=1)
    scale = np.sum(np.abs(q.astype(np.float64) * w.astype(np.float64)), axis=1)
    assert np.all(np.abs(np.asarray(row_dots(xp, q, w), dtype=np.float64) - exact_dots) <= 1e-6 * scale)


@pytest.mark.parametrize(("seed", "n", "m"), [(2, 60, 50), (3, 60, 50), (4, 100, 90), (5, 78, 68)])
def test_steep_steps_near_the_end_of_the_krylov_space(seed, n, m):
    # Outliers 10⁶ times the bulk and nearly as many steps as the dimension: late steps have
    # β_j ≪ ‖A‖, where one step multiplies a loss of orthogonality by ‖A‖/β_j and Simon's
    # estimates lag. Without the steep-step guard these runs lost orthogonality to 1e-6–0.7.
    rng = np.random.default_rng(seed)
    lam = np.concatenate([np.geomspace(1e3, 1.0, 20), rng.normal(0.0, 1e-3, n - 20)])
    q = orthogonal_matrix(n, seed)
    a = (q * lam) @ q.T
    a = (a + a.T) / 2
    r = es.lanczos(a, m, seed=seed, reorth="partial")
    basis = np.asarray(r.basis)
    assert np.abs(basis.T @ basis - np.eye(r.num_steps)).max() <= 2 * np.sqrt(np.finfo(np.float64).eps)
    full = es.lanczos(a, m, seed=seed)
    np.testing.assert_allclose(np.sort(r.ritz_values)[-5:], np.sort(full.ritz_values)[-5:], rtol=1e-12)
