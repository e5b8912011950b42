"""The lazy algebra equals the dense result, on every backend and dtype."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import eigenscope as es
from eigenscope.testing import check_operator, orthogonal_matrix, symmetric_with_spectrum
from tests._helpers import asarray, host, rtol_for


def _close(got, want, dtype):
    want = np.asarray(want, dtype=np.float64)
    scale = max(1.0, float(np.max(np.abs(want))))
    np.testing.assert_allclose(host(got), want, rtol=0, atol=rtol_for(dtype) * scale * 10)


@given(
    pair=symmetric_with_spectrum(max_n=12), other=symmetric_with_spectrum(min_n=12, max_n=12), seed=st.integers(0, 99)
)
def test_algebra_matches_dense(xp, dtype, pair, other, seed):
    a, _ = pair
    n = a.shape[0]
    b = other[0][:n, :n]
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 3))
    alpha = float(rng.uniform(-2, 2))
    A = es.aslinearoperator(asarray(a, xp, dtype))
    B = es.aslinearoperator(asarray(b, xp, dtype))
    X = asarray(x, xp, dtype)

    _close((A + B) @ X, (a + b) @ x, dtype)
    _close((A - B) @ X, (a - b) @ x, dtype)
    _close((alpha * A) @ X, alpha * a @ x, dtype)
    _close((A * alpha) @ X, alpha * a @ x, dtype)
    _close((A / 4) @ X, a @ x / 4, dtype)
    _close((-A) @ X, -a @ x, dtype)
    _close((A @ B) @ X, a @ b @ x, dtype)
    _close(A.T @ X, a.T @ x, dtype)
    _close(es.shift(A, alpha) @ X, a @ x - alpha * x, dtype)
    _close(es.block_diag(A, B) @ asarray(np.vstack([x, x]), xp, dtype), np.vstack([a @ x, b @ x]), dtype)
    # matvec agrees with matmat, and the adjoint identity holds for a non-symmetric product
    _close(A.matvec(X[:, 0]), a @ x[:, 0], dtype)
    _close((A @ B).rmatmat(X), (a @ b).T @ x, dtype)
    _close((A @ B).T @ X, (a @ b).T @ x, dtype)


def test_deflate_removes_the_given_eigenvectors(xp, dtype):
    n, k = 10, 3
    q = orthogonal_matrix(n, 7)
    lam = np.arange(1.0, n + 1)
    a = (q * lam) @ q.T
    A = es.aslinearoperator(asarray(a, xp, dtype))
    V = asarray(q[:, -k:], xp, dtype)
    D = es.deflate(A, V)
    expected = (q[:, :-k] * lam[:-k]) @ q[:, :-k].T
    _close(D.to_dense(), expected, dtype)
    assert D.symmetric


def test_symmetry_flags():
    a = np.arange(9.0).reshape(3, 3)
    A = es.aslinearoperator(a)
    assert not A.symmetric
    assert (A.T @ A).symmetric and (A @ A.T).symmetric
    assert not (A @ A).symmetric
    S = es.aslinearoperator(a + a.T)
    assert S.symmetric and S.T is S and (S @ S).symmetric and (S + S).symmetric
    assert A.T.T is A


def test_low_rank_and_diagonal_and_identity(xp, dtype):
    n, r = 9, 3
    q = orthogonal_matrix(n, 3)[:, :r]
    s = np.array([5.0, -2.0, 0.5])
    L = es.LowRankOperator(asarray(q, xp, dtype), asarray(s, xp, dtype))
    _close(L.to_dense(), (q * s) @ q.T, dtype)
    d = np.linspace(-1, 1, n)
    _close(es.DiagonalOperator(asarray(d, xp, dtype)).to_dense(), np.diag(d), dtype)
    I = es.IdentityOperator(n, xp=xp, dtype=dtype)
    _close(I.to_dense(), np.eye(n), dtype)
    _close((L + I).to_dense(), (q * s) @ q.T + np.eye(n), dtype)


def test_conformance_of_every_concrete_operator(xp, dtype):
    n = 8
    a = orthogonal_matrix(n, 1)
    sym = a + a.T
    ops = [
        es.aslinearoperator(asarray(sym, xp, dtype)),
        es.DiagonalOperator(asarray(np.arange(n, dtype=float), xp, dtype)),
        es.IdentityOperator(n, xp=xp, dtype=dtype),
        es.shift(es.aslinearoperator(asarray(sym, xp, dtype)), 0.5),
        es.block_diag(es.aslinearoperator(asarray(sym[:4, :4], xp, dtype)), es.IdentityOperator(4, xp=xp, dtype=dtype)),
    ]
    for op in ops:
        check_operator(op)


def test_scipy_view_matches():
    a = orthogonal_matrix(6, 2)
    sym = a + a.T
    A = es.aslinearoperator(sym)
    view = A.to_scipy()
    x = np.arange(6.0)
    np.testing.assert_allclose(view @ x, sym @ x)
    np.testing.assert_allclose(view.matmat(np.eye(6)), sym)


def test_scipy_view_of_a_torch_operator_uses_numpy():
    torch = pytest.importorskip("torch")
    a = orthogonal_matrix(5, 4)
    T = es.aslinearoperator(torch.tensor(a + a.T))
    out = T.to_scipy() @ np.ones(5)
    assert isinstance(out, np.ndarray)
    np.testing.assert_allclose(out, (a + a.T) @ np.ones(5))
