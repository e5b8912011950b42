"""aslinearoperator on every kind of input it accepts."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import scipy.sparse.linalg as spla

import eigenscope as es
from eigenscope.testing import check_operator, orthogonal_matrix


@pytest.fixture
def sym():
    q = orthogonal_matrix(7, 5)
    return (q * np.arange(7.0)) @ q.T


def test_dense_array_detects_symmetry(sym):
    assert es.aslinearoperator(sym).symmetric
    assert not es.aslinearoperator(sym + np.triu(np.ones((7, 7)), 1)).symmetric
    assert es.aslinearoperator(np.ones((3, 5))).shape == (3, 5)


def test_scipy_sparse(sym):
    A = es.aslinearoperator(sp.csr_matrix(sym))
    assert A.symmetric and A.backend == "numpy"
    np.testing.assert_allclose(A @ np.ones(7), sym @ np.ones(7))
    np.testing.assert_allclose(A.matmat(np.eye(7)), sym)
    check_operator(A)
    assert not es.aslinearoperator(sp.csr_matrix(np.triu(sym))).symmetric


def test_scipy_linear_operator(sym):
    A = es.aslinearoperator(spla.aslinearoperator(sym))
    assert A.symmetric and A.shape == (7, 7)
    np.testing.assert_allclose(A.matmat(np.eye(7)), sym)
    check_operator(A)


def test_duck_typed_object(sym):
    class Mine:
        shape = (7, 7)
        dtype = np.float64

        def matvec(self, x):
            return sym @ x

    A = es.aslinearoperator(Mine())
    np.testing.assert_allclose(A.to_dense(), sym)
    check_operator(A)


def test_nested_lists():
    A = es.aslinearoperator([[2.0, 1.0], [1.0, 3.0]])
    assert A.symmetric
    np.testing.assert_allclose(A @ np.array([1.0, 0.0]), [2.0, 1.0])


def test_from_matvec_with_matmat_and_torch_dtype(sym):
    torch = pytest.importorskip("torch")
    t = torch.tensor(sym)
    A = es.LinearOperator.from_matvec(lambda x: t @ x, matmat=lambda X: t @ X, shape=(7, 7), dtype=torch.float64)
    assert A.backend == "torch"
    check_operator(A)


def test_check_operator_catches_lies(sym):
    from eigenscope.testing import OperatorCheckError

    not_sym = sym + np.triu(np.ones((7, 7)), 1)
    liar = es.LinearOperator.from_matvec(lambda x: not_sym @ x, shape=(7, 7), dtype=np.float64, symmetric=True)
    with pytest.raises(OperatorCheckError, match="declared symmetric"):
        check_operator(liar)
    inconsistent = es.LinearOperator.from_matvec(
        lambda x: sym @ x, matmat=lambda X: 2 * sym @ X, shape=(7, 7), dtype=np.float64
    )
    with pytest.raises(OperatorCheckError, match="matmat differs"):
        check_operator(inconsistent)
    nonlinear = es.LinearOperator.from_matvec(lambda x: sym @ x + 1.0, shape=(7, 7), dtype=np.float64)
    with pytest.raises(OperatorCheckError, match="not linear"):
        check_operator(nonlinear)
