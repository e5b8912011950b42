"""Wrong inputs get a clear exception naming what was expected and what came."""

from __future__ import annotations

import numpy as np
import pytest

import eigenscope as es
from tests._helpers import asarray


@pytest.fixture
def sym():
    a = np.arange(16.0).reshape(4, 4)
    return a + a.T


def test_wrong_length(sym):
    A = es.aslinearoperator(sym)
    with pytest.raises(ValueError, match=r"expected 4 rows.*got 3"):
        A @ np.ones(3)
    with pytest.raises(ValueError, match="expected 4 rows"):
        A.matmat(np.ones((5, 2)))


def test_wrong_ndim(sym):
    A = es.aslinearoperator(sym)
    with pytest.raises(ValueError, match="2-d array"):
        A.matmat(np.ones(4))
    with pytest.raises(TypeError, match="1-d/2-d array"):
        A @ np.ones((4, 1, 1))


def test_wrong_dtype(sym):
    A = es.aslinearoperator(sym)
    with pytest.raises(TypeError, match="expected dtype float64, got float32"):
        A @ np.ones(4, dtype=np.float32)


def test_unsupported_dtypes_refused():
    with pytest.raises(TypeError, match="float32 or float64, got int64"):
        es.aslinearoperator(np.eye(3, dtype=np.int64))
    with pytest.raises(TypeError, match="float32 or float64, got float16"):
        es.aslinearoperator(np.eye(3, dtype=np.float16))
    with pytest.raises(TypeError, match="float32 or float64, got complex128"):
        es.aslinearoperator(np.eye(3, dtype=np.complex128))


def test_wrong_backend(sym, xp):
    A = es.aslinearoperator(sym)
    if es.backends.backend_name(xp) == "numpy":
        pytest.skip("same backend")
    with pytest.raises(TypeError, match="expected a numpy array, got a"):
        A @ asarray(np.ones(4), xp)
    B = es.aslinearoperator(asarray(sym, xp))
    with pytest.raises(TypeError, match="different backends"):
        A + B
    with pytest.raises(TypeError, match="different backends"):
        A @ B


def test_not_an_array(sym):
    A = es.aslinearoperator(sym)
    with pytest.raises(TypeError, match=r"expected a numpy array, got builtins\.list"):
        A.matvec([1.0, 2.0, 3.0, 4.0])


def test_mismatched_algebra(sym):
    A = es.aslinearoperator(sym)
    B = es.aslinearoperator(np.eye(3))
    with pytest.raises(ValueError, match="different shapes"):
        A + B
    with pytest.raises(ValueError, match="inner dimensions"):
        A @ B
    C = es.aslinearoperator(sym.astype(np.float32))
    with pytest.raises(TypeError, match="different dtypes"):
        A + C
    with pytest.raises(TypeError, match="use `@`"):
        A * np.ones(4)
    with pytest.raises(ValueError, match="deflate basis V expected 4 rows"):
        es.deflate(A, np.ones((3, 1)))


def test_wrong_device():
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("torch: no CUDA device to mismatch with")
    A = es.aslinearoperator(torch.eye(3, dtype=torch.float64))
    with pytest.raises(TypeError, match="on device"):
        A @ torch.ones(3, dtype=torch.float64, device="cuda")


def test_device_mismatch_is_checked_with_a_declared_device(sym):
    A = es.LinearOperator.from_matvec(lambda x: sym @ x, shape=(4, 4), dtype=np.float64, device="gpu-that-is-not-here")
    with pytest.raises(TypeError, match="expected an array on device gpu-that-is-not-here, got one on cpu"):
        A @ np.ones(4)


def test_user_matvec_non_finite(sym):
    calls = []

    def mv(x):
        calls.append(1)
        return sym @ x if len(calls) < 3 else np.full(4, np.nan)

    A = es.LinearOperator.from_matvec(mv, shape=(4, 4), dtype=np.float64)
    A @ np.ones(4)
    A @ np.ones(4)
    with pytest.raises(FloatingPointError, match=r"NaN or Inf \(call 3"):
        A @ np.ones(4)


def test_user_matvec_wrong_output(sym):
    A = es.LinearOperator.from_matvec(lambda x: np.ones(3), shape=(4, 4), dtype=np.float64)
    with pytest.raises(ValueError, match=r"returned shape \(3,\), expected \(4,\)"):
        A @ np.ones(4)
    B = es.LinearOperator.from_matvec(lambda x: (sym @ x).astype(np.float32), shape=(4, 4), dtype=np.float64)
    with pytest.raises(TypeError, match="returned dtype float32, expected float64"):
        B @ np.ones(4)
    C = es.LinearOperator.from_matvec(lambda x: list(sym @ x), shape=(4, 4), dtype=np.float64)
    with pytest.raises(TypeError, match=r"returned a builtins\.list, expected a numpy array"):
        C @ np.ones(4)


def test_aslinearoperator_rejects_unknown():
    with pytest.raises(TypeError, match="aslinearoperator accepts"):
        es.aslinearoperator(object())


def test_bad_shape_and_subclass():
    with pytest.raises(ValueError, match="symmetric operator must be square"):
        es.LinearOperator.from_matvec(lambda x: x, shape=(3, 4), dtype=np.float64)
    with pytest.raises(TypeError, match="must implement _matmat or _matvec"):

        class Empty(es.LinearOperator):
            pass
