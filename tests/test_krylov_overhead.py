"""The Krylov loops' bookkeeping: how many Gram–Schmidt passes they run, and that updating
their scratch arrays in place never touches an operator's own arrays (counts, never times)."""

from __future__ import annotations

import numpy as np
import pytest

import eigenscope as es
from eigenscope.algorithms import _orth, _thick_restart, _verify
from eigenscope.linop import LinearOperator


class _ReturnsInput(LinearOperator):
    """``diag(d)`` that returns its operand itself when d is all ones, and keeps a copy of
    every operand it was given, to check that none was modified afterwards."""

    def __init__(self, d: np.ndarray) -> None:
        n = d.size
        super().__init__(shape=(n, n), dtype=d.dtype, device="cpu", xp=np, symmetric=True)
        self.d = d
        self.seen: list[tuple[np.ndarray, np.ndarray]] = []

    def _matmat(self, x: np.ndarray) -> np.ndarray:
        y = x if np.all(self.d == 1) else self.d[:, None] * x
        self.seen.append((x, x.copy()))
        return y


def _spectrum(n: int) -> np.ndarray:
    rng = np.random.default_rng(0)
    return np.concatenate([np.geomspace(50.0, 2.0, 10), rng.uniform(0, 1, n - 10) ** 2])


def _count_passes(monkeypatch, module, *, min_basis: int) -> list[int]:
    """Passes of ``project_out`` (against more than ``min_basis`` vectors) in each call of
    ``module.reorthogonalize``, i.e. per step of the loop that module runs."""
    passes: list[int] = []
    inside = [False]
    original, reorth = _orth.project_out, _orth.reorthogonalize

    def counting(w, basis, **kw):
        if inside[0] and basis is not None and basis.shape[1] > min_basis:
            passes[-1] += 1
        return original(w, basis, **kw)

    def step(xp, w, against, **kw):
        passes.append(0)
        inside[0] = True
        try:
            return reorth(xp, w, against, **kw)
        finally:
            inside[0] = False

    monkeypatch.setattr(_orth, "project_out", counting)
    monkeypatch.setattr(module, "reorthogonalize", step)
    return passes


def test_thick_restart_runs_one_full_pass_per_step(monkeypatch):
    # The local pass against the last two blocks leaves the full pass little to remove, so
    # the DGKS test asks for a second one only after a restart or near convergence.
    passes = _count_passes(monkeypatch, _thick_restart, min_basis=2)  # full passes per step
    lam = _spectrum(2000)
    res = es.eigsh(es.linop.DiagonalOperator(lam), k=5, seed=0)
    assert res.converged.all()
    np.testing.assert_allclose(res.eigenvalues, np.sort(lam)[::-1][:5], rtol=1e-10)
    steps_past_basis_of_two = [p for p in passes if p]
    assert len(steps_past_basis_of_two) >= 10
    assert sum(p == 2 for p in steps_past_basis_of_two) <= 0.25 * len(steps_past_basis_of_two)


def test_verification_scan_projects_once_per_step(monkeypatch):
    passes = _count_passes(monkeypatch, _verify, min_basis=0)  # passes off the locked vectors
    res = es.eigsh(es.linop.DiagonalOperator(_spectrum(2000)), k=5, seed=0)
    assert res.converged.all()
    assert res.verification_matvecs == len(passes) > 0
    assert sum(passes) <= 1.25 * len(passes)  # one pass per step, rarely two


@pytest.mark.parametrize("reorth", ["full", "partial", "local", "host"])
def test_lanczos_never_modifies_an_operators_arrays(reorth):
    op = _ReturnsInput(np.ones(300))
    res = es.lanczos(op, 5, seed=0, reorth=reorth)
    assert res.breakdown and res.num_steps == 1
    np.testing.assert_allclose(res.ritz_values, [1.0], rtol=1e-14)
    for x, copy in op.seen:
        np.testing.assert_array_equal(x, copy)


def test_eigsh_and_density_never_modify_an_operators_arrays():
    lam = _spectrum(400)
    op = _ReturnsInput(lam)
    res = es.eigsh(op, k=3, seed=0)
    np.testing.assert_allclose(res.eigenvalues, np.sort(lam)[::-1][:3], rtol=1e-10)
    es.spectral_density(op, num_steps=20, num_probes=2, seed=0)
    for x, copy in op.seen:
        np.testing.assert_array_equal(x, copy)
    ones = _ReturnsInput(np.ones(400))
    res = es.eigsh(ones, k=3, seed=0)
    np.testing.assert_allclose(res.eigenvalues, 1.0, rtol=1e-12)
    for x, copy in ones.seen:
        np.testing.assert_array_equal(x, copy)


@pytest.mark.parametrize("n", [100, 2048, 2049, 1_000_003])
def test_long_inner_products_and_norms_are_accurate_on_every_backend(xp, n):
    # Chunked sums (no n-length temporary) on torch and JAX, NumPy's pairwise sum on NumPy:
    # float32 to a few ε at any n, where one float32 dot product is off by 1e-4 at 10⁷.
    from eigenscope import backends

    rng = np.random.default_rng(n)
    x32 = (rng.standard_normal(n) + 0.5).astype(np.float32)
    y32 = (rng.standard_normal(n) + 0.5).astype(np.float32)
    exact_dot = float(np.dot(x32.astype(np.float64), y32.astype(np.float64)))
    exact_norm = float(np.linalg.norm(x32.astype(np.float64)))
    x, y = xp.asarray(x32), xp.asarray(y32)
    dot = float(backends.to_numpy(_orth.dot(xp, x, y)))
    norm = float(backends.to_numpy(_orth.column_norms(xp, xp.stack([x, y], axis=1))[0]))
    assert abs(dot - exact_dot) <= 1e-6 * float(np.dot(np.abs(x32), np.abs(y32)))
    assert abs(norm / exact_norm - 1) <= 1e-6


class _Fresh(es.LinearOperator):
    """``diag(d)`` declaring fresh products; records each product it returned, and a copy."""

    fresh_products = True

    def __init__(self, d: np.ndarray) -> None:
        super().__init__(shape=(d.size, d.size), dtype=d.dtype, device="cpu", xp=np, symmetric=True)
        self.d = d
        self.returned: list[tuple[np.ndarray, np.ndarray]] = []

    def _matmat(self, x):
        y = self.d[:, None] * x
        self.returned.append((y, y.copy()))
        return y


def test_fresh_products_are_scaled_in_place_and_results_unchanged():
    # An operator that declares fresh products gets them divided by the scale in place (no
    # copy); the answers are the same numbers as without the declaration.
    lam = _spectrum(400) * 1000.0  # a scale far from 1: the division is not a no-op
    fresh = _Fresh(lam)
    res = es.eigsh(fresh, k=3, seed=0)
    plain = es.eigsh(es.DiagonalOperator(lam), k=3, seed=0)
    np.testing.assert_array_equal(res.eigenvalues, plain.eigenvalues)
    assert any(not np.array_equal(y, copy) for y, copy in fresh.returned)  # scaled in place
    assert not es.DiagonalOperator.fresh_products and not es.LinearOperator.fresh_products


def test_restarts_rotate_long_bases_piece_by_piece(xp):
    # n spans several pieces of the restart's in-place rotation (2¹⁶ columns each); a small
    # ncv forces many restarts. The answer must be the exact top eigenvalues.
    n = 150_001
    lam = np.concatenate([[9.0, 8.5, 8.0, 7.9], np.linspace(0.0, 7.0, n - 4)])
    op = es.DiagonalOperator(xp.asarray(lam))
    res = es.eigsh(op, k=3, ncv=12, seed=0)
    assert res.num_restarts >= 2 and res.converged.all()
    np.testing.assert_allclose(res.eigenvalues, [9.0, 8.5, 8.0], rtol=1e-10)
    vectors = np.asarray(es.backends.to_numpy(res.eigenvectors))
    np.testing.assert_allclose(np.abs(vectors[:3, :]), np.eye(3), atol=1e-6)
