"""The generic API on CuPy: dense and ``cupyx.scipy.sparse`` operators, eigsh, trace,
spectral density, Lanczos, diagonal, the conformance checks.

Skips the whole module, saying why, without cupy or without a CUDA GPU.
"""

from __future__ import annotations

import numpy as np
import pytest

cp = pytest.importorskip("cupy", reason="cupy is not installed (extra 'cupy'); these tests need a CUDA GPU")
try:
    _num_gpus = cp.cuda.runtime.getDeviceCount()
except Exception as exc:  # no driver, no runtime
    pytest.skip(f"cupy is installed but no CUDA GPU is usable ({type(exc).__name__}: {exc})", allow_module_level=True)
if _num_gpus < 1:
    pytest.skip("cupy is installed but no CUDA GPU is present", allow_module_level=True)

import cupyx.scipy.sparse as csp  # noqa: E402

import eigenscope as es  # noqa: E402
import eigenscope.backends as eb  # noqa: E402
from eigenscope.testing import check_operator  # noqa: E402

N = 120


def _symmetric(n=N, seed=0, dtype=np.float64):
    """A dense symmetric matrix with a known, well separated spectrum (both signs)."""
    rng = np.random.default_rng(seed)
    lam = np.concatenate([np.linspace(-3.0, -1.0, 10), np.linspace(-0.5, 0.5, n - 20), np.linspace(1.0, 4.0, 10)])
    q, _ = np.linalg.qr(rng.standard_normal((n, n)))
    return ((q * lam) @ q.T).astype(dtype), np.sort(lam)


def _laplacian(n=200, dtype=np.float64):
    """The 1-d Laplacian as a cupyx CSR matrix; eigenvalues 2 − 2 cos(kπ/(n+1))."""
    dense = 2.0 * np.eye(n) - np.eye(n, k=1) - np.eye(n, k=-1)
    lam = np.sort(2.0 - 2.0 * np.cos(np.arange(1, n + 1) * np.pi / (n + 1)))
    return csp.csr_matrix(cp.asarray(dense, dtype=dtype)), lam


def _host(x):
    return eb.to_numpy(x).astype(np.float64)


def _rtol(dtype):
    return 1e-4 if np.dtype(dtype) == np.float32 else 1e-9


@pytest.fixture(params=["float32", "float64"])
def dtype(request):
    return np.dtype(request.param)


def test_dense_operator_declares_cupy(dtype):
    a, _ = _symmetric(dtype=dtype)
    op = es.aslinearoperator(cp.asarray(a))
    assert op.backend == "cupy" and op.dtype == dtype and op.symmetric
    y = op @ cp.ones(N, dtype=dtype)
    assert isinstance(y, cp.ndarray) and y.dtype == dtype
    np.testing.assert_allclose(_host(y), a.astype(np.float64) @ np.ones(N), rtol=_rtol(dtype) * 10, atol=1e-4)
    check_operator(op)
    with pytest.raises(TypeError, match="cupy array"):
        op @ np.ones(N, dtype=dtype)
    view = op.to_scipy()  # NumPy in, NumPy out
    np.testing.assert_allclose(view.matvec(np.ones(N)), _host(y), rtol=1e-6)


def test_eigsh(dtype):
    a, lam = _symmetric(dtype=dtype)
    op = es.aslinearoperator(cp.asarray(a))
    tol = 10 * _rtol(dtype)
    top = es.eigsh(op, k=3, seed=0)
    assert np.all(top.converged) and isinstance(top.eigenvectors, cp.ndarray)
    np.testing.assert_allclose(np.sort(top.eigenvalues), lam[-3:], rtol=tol)
    low = es.eigsh(op, k=3, which="SA", seed=0)
    np.testing.assert_allclose(np.sort(low.eigenvalues), lam[:3], rtol=tol)
    both = es.eigsh(op, k=4, which="BE", method="block", seed=0)
    np.testing.assert_allclose(np.sort(both.eigenvalues), np.sort(np.r_[lam[:2], lam[-2:]]), rtol=tol)
    # Eigenvectors: ‖A x − λ x‖ small, on the GPU.
    x = top.eigenvectors
    resid = cp.linalg.norm(cp.asarray(a) @ x - x * cp.asarray(top.eigenvalues, dtype=dtype), axis=0)
    assert float(resid.max()) <= 1e-2 if dtype == np.float32 else float(resid.max()) <= 1e-6


def test_same_seed_same_numbers():
    a, _ = _symmetric()
    op = es.aslinearoperator(cp.asarray(a))
    r1 = es.eigsh(op, k=2, seed=7, tol=1e-3)
    r2 = es.eigsh(op, k=2, seed=7, tol=1e-3)
    assert r1.num_matvecs == r2.num_matvecs
    np.testing.assert_array_equal(r1.eigenvalues, r2.eigenvalues)
    t1, t2 = es.trace(op, 30, method="hutchinson", seed=3), es.trace(op, 30, method="hutchinson", seed=3)
    assert t1.estimate == t2.estimate


def test_eigsh_power():
    a, lam = _symmetric()
    r = es.eigsh(cp.asarray(a), k=1, method="power", seed=0, max_matvecs=5000)
    np.testing.assert_allclose(r.eigenvalues, lam[-1:], rtol=1e-6)


def test_trace(dtype):
    a, lam = _symmetric(dtype=dtype)
    op = es.aslinearoperator(cp.asarray(a))
    exact = float(lam.sum())
    for method in ("hutchinson", "hutch++", "xtrace"):
        t = es.trace(op, 60, method=method, seed=0)
        assert t.num_matvecs <= 60
        assert abs(t.estimate - exact) <= 5 * t.std_error + 100 * _rtol(dtype) * np.abs(lam).sum(), method
    # Hutch++ is exact once the sketch spans the space.
    low_rank = cp.asarray((np.eye(N)[:, :5] * np.arange(1.0, 6.0)) @ np.eye(N)[:, :5].T, dtype=dtype)
    t = es.trace(low_rank, 30, method="hutch++", seed=0)
    assert abs(t.estimate - 15.0) <= 1e3 * _rtol(dtype)


def test_spectral_density_and_lanczos(dtype):
    a, lam = _symmetric(dtype=dtype)
    op = es.aslinearoperator(cp.asarray(a))
    d = es.spectral_density(op, num_steps=30, num_probes=4, seed=0)
    np.testing.assert_allclose(d.weights.sum(axis=1), 1.0, rtol=1e-10)
    lo, hi = d.support
    assert lam[0] - 1e-3 <= lo and hi <= lam[-1] + 1e-3
    # SLQ's moments of degree < 2m are exact quadrature on the probes: the trace within noise.
    assert abs(d.trace() - lam.sum()) <= 0.5 * np.abs(lam).sum()

    lz = es.lanczos(op, 20, seed=0)
    q = _host(lz.basis)
    assert lz.basis is not None and isinstance(lz.basis, cp.ndarray)
    np.testing.assert_allclose(q.T @ q, np.eye(q.shape[1]), atol=100 * _rtol(dtype))
    t = np.diag(lz.alpha) + np.diag(lz.beta, 1) + np.diag(lz.beta, -1)
    np.testing.assert_allclose(q.T @ a.astype(np.float64) @ q, t, atol=1e3 * _rtol(dtype) * np.abs(lam).max())
    assert lam[0] - 1e-6 <= lz.ritz_values.min() and lz.ritz_values.max() <= lam[-1] + 1e-6


def test_diagonal():
    a, _ = _symmetric()
    d = es.diagonal(cp.asarray(a), 3 * N, seed=0)
    assert isinstance(d.estimate, cp.ndarray)
    err = np.abs(_host(d.estimate) - np.diag(a))
    assert float(np.median(err)) <= 0.5


def test_cupyx_sparse(dtype):
    mat, lam = _laplacian(dtype=dtype)
    op = es.aslinearoperator(mat)
    assert op.backend == "cupy" and op.symmetric and op.dtype == dtype
    n = mat.shape[0]
    v = cp.arange(n, dtype=dtype)
    y = op @ v
    assert isinstance(y, cp.ndarray)
    np.testing.assert_allclose(_host(y), _host(mat @ v), rtol=1e-6)
    np.testing.assert_allclose(_host(op.rmatvec(v)), _host(y), rtol=1e-6)
    check_operator(op)
    top = es.eigsh(op, k=3, seed=0)
    np.testing.assert_allclose(np.sort(top.eigenvalues), lam[-3:], rtol=10 * _rtol(dtype))
    t = es.trace(op, 30, method="hutch++", seed=0)
    assert abs(t.estimate - 2.0 * n) <= 5 * t.std_error + 1e-3 * n
    d = es.spectral_density(op, num_steps=20, num_probes=2, seed=0)
    assert d.support[0] >= -1e-3 and d.support[1] <= 4.0 + 1e-3
    asym = csp.csr_matrix(cp.asarray(np.triu(np.ones((4, 4))), dtype=dtype))
    assert not es.aslinearoperator(asym).symmetric


def test_cupyx_linear_operator_is_matrix_free():
    import cupyx.scipy.sparse.linalg as csla

    a, lam = _laplacian()
    op = es.aslinearoperator(csla.aslinearoperator(a))
    assert op.backend == "cupy" and op.symmetric
    r = es.eigsh(op, k=3, seed=0, tol=1e-8)
    np.testing.assert_allclose(r.eigenvalues, lam[::-1][:3], rtol=1e-6)


@pytest.mark.skipif(_num_gpus < 2, reason="needs two GPUs")
def test_probes_are_drawn_on_the_operator_device():
    a, lam = _symmetric()
    with cp.cuda.Device(1):
        op = es.aslinearoperator(cp.asarray(a))
    with cp.cuda.Device(0):  # another current device: draws must still land on GPU 1
        r = es.eigsh(op, k=2, seed=0, tol=1e-6)
        t = es.trace(op, 30, method="hutch++", seed=0)
    np.testing.assert_allclose(r.eigenvalues, lam[::-1][:2], rtol=1e-5)
    assert np.isfinite(t.estimate)
