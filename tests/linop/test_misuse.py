"""Misuse is reported where it happens, naming the operator, what was expected and what came:
wrong products, non-finite or non-symmetric matrices, empty operators."""

from __future__ import annotations

import re

import numpy as np
import pytest
import scipy.sparse as sp
import scipy.sparse.linalg as spla

import eigenscope as es
import eigenscope.backends as eb
from tests._helpers import asarray


@pytest.fixture
def sym():
    a = np.arange(16.0).reshape(4, 4)
    return a + a.T


def _user_op(xp, matvec, **kwargs):
    """A 4×4 float64 operator of backend ``xp`` from a user ``matvec``."""
    return es.LinearOperator.from_matvec(matvec, shape=(4, 4), dtype=xp.float64, xp=xp, **kwargs)


def _other_backend(xp):
    """An array module other than ``xp``'s, to return a result of the wrong backend."""
    if eb.backend_name(xp) != "numpy":
        return np
    return pytest.importorskip("torch")


# ---- 1. a product's result must match the operator -------------------------------------


def test_user_matvec_of_wrong_shape_names_the_operator(xp):
    A = _user_op(xp, lambda x: x[:, None])  # (4, 1) would broadcast in `y + A x`
    msg = r"the user matvec of <CallableOperator shape=\(4, 4\).*> returned shape \(4, 1\), expected \(4,\)"
    with pytest.raises(ValueError, match=msg):
        A @ asarray(np.ones(4), xp)


def test_user_matmat_of_wrong_shape_names_the_operator(xp):
    A = _user_op(xp, lambda x: x, matmat=lambda X: X[:, :1])
    with pytest.raises(
        ValueError, match=r"the user matmat of <CallableOperator.*returned shape \(4, 1\), expected \(4, 3\)"
    ):
        A.matmat(asarray(np.ones((4, 3)), xp))


def test_user_matvec_of_wrong_dtype(xp):
    A = _user_op(xp, lambda x: xp.astype(x, xp.float32))
    with pytest.raises(TypeError, match=r"of <CallableOperator.*returned dtype float32, expected float64"):
        A @ asarray(np.ones(4), xp)


def test_user_matvec_of_another_backend(xp):
    other = _other_backend(xp)
    name = eb.backend_name(eb.resolve_namespace(other))
    A = _user_op(xp, lambda x: other.ones(4, dtype=other.float64))
    msg = rf"the user matvec of <CallableOperator.*backend={eb.backend_name(xp)}.*> returned a {name} array, "
    with pytest.raises(TypeError, match=msg + rf"expected a {eb.backend_name(xp)} array"):
        A @ asarray(np.ones(4), xp)


def test_user_rmatvec_of_wrong_shape(xp):
    A = _user_op(xp, lambda x: x, rmatvec=lambda y: y[:3], symmetric=False)
    with pytest.raises(
        ValueError, match=r"the user rmatvec of <CallableOperator.*returned shape \(3,\), expected \(4,\)"
    ):
        A.rmatvec(asarray(np.ones(4), xp))


def test_result_on_the_meta_device_is_refused():
    torch = pytest.importorskip("torch")
    A = es.LinearOperator.from_matvec(
        lambda x: torch.empty(4, dtype=torch.float64, device="meta"), shape=(4, 4), dtype=torch.float64
    )
    with pytest.raises(TypeError, match=r"of <CallableOperator.*returned an array on device meta, expected device cpu"):
        A @ torch.ones(4, dtype=torch.float64)


def test_the_check_reads_metadata_only():
    # Meta tensors have no data: any reduction or host transfer in the check would fail.
    torch = pytest.importorskip("torch")
    A = es.LinearOperator.from_matvec(
        lambda x: 2.0 * x, shape=(4, 4), dtype=torch.float64, device="meta", check_finite=False
    )
    B = es.shift(A + 0.5 * A, 1.0)
    y = B.matmat(torch.ones((4, 2), dtype=torch.float64, device="meta"))
    assert y.device.type == "meta" and tuple(y.shape) == (4, 2)


class _BadSubclass(es.LinearOperator):
    """A user subclass whose ``_matmat`` returns one column whatever the block."""

    def _matmat(self, x):
        return x[:, :1]


def test_user_subclass_checked_by_the_base_class(xp):
    A = _BadSubclass(shape=(4, 4), dtype=xp.float64, device=eb.default_device(xp), xp=xp, symmetric=True)
    with pytest.raises(ValueError, match=r"matmat of <_BadSubclass.*returned shape \(4, 1\), expected \(4, 2\)"):
        A.matmat(asarray(np.ones((4, 2)), xp))
    with pytest.raises(ValueError, match=r"rmatmat of <_BadSubclass.*returned shape \(4, 1\), expected \(4, 2\)"):
        A.rmatmat(asarray(np.ones((4, 2)), xp))


def test_a_wrong_part_is_named_not_broadcast(sym, xp):
    # (4, 2) + (4, 1) would broadcast to the right shape: the part must be caught itself.
    good = es.aslinearoperator(asarray(sym, xp))
    bad = _BadSubclass(shape=(4, 4), dtype=xp.float64, device=eb.default_device(xp), xp=xp, symmetric=True)
    x = asarray(np.ones((4, 2)), xp)
    for op in (good + bad, good @ bad, 2.0 * bad, es.shift(bad, 1.0), es.block_diag(good, bad)):
        with pytest.raises(ValueError, match=r"matmat of <_BadSubclass.*returned shape \(4, 1\), expected \(4, 2\)"):
            op.matmat(x if op.shape[1] == 4 else asarray(np.ones((8, 2)), xp))


def test_scipy_linear_operator_results_are_checked(sym):
    wrong_shape = spla.LinearOperator((4, 4), matvec=lambda v: sym @ v, matmat=lambda X: (sym @ X)[:, :1], dtype=float)
    A = es.aslinearoperator(wrong_shape)
    with pytest.raises(ValueError, match=r"matmat of <ScipyOperator.*returned shape \(4, 1\), expected \(4, 3\)"):
        A.matmat(np.ones((4, 3)))
    wrong_dtype = spla.LinearOperator(
        (4, 4), matvec=lambda v: sym @ v, matmat=lambda X: (sym @ X).astype(np.float32), dtype=np.float64
    )
    with pytest.raises(TypeError, match=r"matmat of <ScipyOperator.*returned dtype float32, expected float64"):
        es.aslinearoperator(wrong_dtype).matmat(np.ones((4, 3)))


def test_scipy_linear_operator_of_another_backend_is_not_converted(sym):
    torch = pytest.importorskip("torch")
    t = torch.tensor(sym)
    other = spla.LinearOperator(
        (4, 4), matvec=lambda v: sym @ v, matmat=lambda X: t @ torch.from_numpy(X), dtype=np.float64
    )
    with pytest.raises(TypeError, match=r"matmat of <ScipyOperator.*returned a torch array, expected a numpy array"):
        es.aslinearoperator(other).matmat(np.ones((4, 2)))


def test_duck_typed_object_results_are_checked(sym, xp):
    a = asarray(sym, xp)

    class Mine:
        shape = (4, 4)
        dtype = xp.float64

        def matvec(self, x):
            return (a @ x)[:2]

    A = es.aslinearoperator(Mine())
    if A.xp is not xp:  # the duck type names a dtype only; backends whose dtype says nothing land on NumPy
        pytest.skip("the dtype does not name the backend")
    with pytest.raises(
        ValueError, match=r"the user matvec of <CallableOperator.*returned shape \(2,\), expected \(4,\)"
    ):
        A @ asarray(np.ones(4), xp)


def test_to_scipy_view_checks_results():
    bad = _BadSubclass(shape=(4, 4), dtype=np.float64, device="cpu", xp=np, symmetric=True)
    with pytest.raises(ValueError, match=r"matmat of <_BadSubclass.*returned shape \(4, 1\), expected \(4, 2\)"):
        bad.to_scipy().matmat(np.ones((4, 2)))


# ---- 2. a matrix with NaN or Inf entries ------------------------------------------------


def _with_non_finite(sym):
    a = sym.copy()
    a[1, 2] = np.nan
    a[3, 0] = np.inf
    a[2, 1] = -np.inf
    return a


NON_FINITE = re.escape("the matrix has 3 non-finite entries (NaN/Inf), first at (1, 2)")


def test_dense_non_finite_entries_are_reported(sym, xp, dtype):
    with pytest.raises(ValueError, match=NON_FINITE):
        es.aslinearoperator(asarray(_with_non_finite(sym), xp, dtype))
    with pytest.raises(ValueError, match=re.escape("the matrix has 1 non-finite entry (NaN/Inf), first at (0, 4)")):
        es.aslinearoperator(asarray(np.hstack([sym, [[np.nan], [0.0], [0.0], [0.0]]]), xp, dtype))


def test_declared_symmetry_leaves_the_entries_unread():
    # A meta tensor has no entries to read: declaring the symmetry must not try.
    torch = pytest.importorskip("torch")
    A = es.aslinearoperator(torch.empty((4, 4), dtype=torch.float64, device="meta"), symmetric=True)
    assert A.symmetric and A.device.type == "meta"


def test_non_finite_rather_than_non_symmetric(sym, xp):
    a = asarray(_with_non_finite(sym), xp)
    with pytest.raises(ValueError, match=NON_FINITE):
        es.eigsh(a, 2, seed=0)
    with pytest.raises(ValueError, match=NON_FINITE):
        es.spectral_density(a, 3, seed=0)


@pytest.mark.parametrize("fmt", ["csr", "csc", "coo", "lil"])
def test_sparse_non_finite_entries_are_reported(sym, fmt):
    a = sp.csr_matrix(_with_non_finite(sym)).asformat(fmt)
    with pytest.raises(ValueError, match=NON_FINITE):
        es.aslinearoperator(a)


# ---- 3. a matrix that is not symmetric --------------------------------------------------


def _nonsymmetric():
    a = np.diag([4.0, 3.0, 2.0, 1.0])
    a[0, 3] = 1.0  # max|A - Aᵀ| / max|A| = 1/4
    return a


ASYMMETRY = re.escape("the matrix is not symmetric: max|A - Aᵀ| / max|A| = 0.25 (rounding allows ")
FIX = re.escape("symmetrize it, e.g. (A + A.T) / 2")


def test_dense_asymmetry_is_measured(xp, dtype):
    A = es.aslinearoperator(asarray(_nonsymmetric(), xp, dtype))
    assert not A.symmetric
    assert re.search(ASYMMETRY + ".*" + FIX, A.nonsymmetric_reason)


def test_sparse_asymmetry_is_measured():
    A = es.aslinearoperator(sp.csr_matrix(_nonsymmetric()))
    assert not A.symmetric
    assert re.search(ASYMMETRY + ".*" + FIX, A.nonsymmetric_reason)
    assert not es.aslinearoperator(sp.csr_matrix(np.ones((3, 5)))).symmetric  # rectangular: nothing to measure


def test_symmetric_and_declared_operators(sym, xp):
    assert es.aslinearoperator(asarray(sym, xp)).nonsymmetric_reason is None
    declared = es.aslinearoperator(asarray(sym, xp), symmetric=False)
    assert declared.nonsymmetric_reason.startswith("it is declared non-symmetric (symmetric=False)")


def test_the_reason_follows_the_algebra(sym, xp):
    A = es.aslinearoperator(asarray(_nonsymmetric(), xp))
    B = es.aslinearoperator(asarray(sym, xp))
    for same in (2.0 * A, es.shift(A, 1.0), A.T):
        assert same.nonsymmetric_reason == A.nonsymmetric_reason
    assert (B + A).nonsymmetric_reason.startswith("in the term 1, the matrix is not symmetric")
    assert es.block_diag(A, B).nonsymmetric_reason.startswith("in the block 0, the matrix is not symmetric")
    assert "product A B" in (A @ B).nonsymmetric_reason


# The message itself comes from the algorithms' symmetry check:
# f"{what} needs a symmetric operator, but {op.nonsymmetric_reason}".
@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_algorithms_report_the_asymmetry(backend):
    from tests.conftest import load_backend

    xp = eb.resolve_namespace(load_backend(backend))
    a = asarray(_nonsymmetric(), xp)
    with pytest.raises(ValueError, match="eigsh needs a symmetric operator, but " + ASYMMETRY + ".*" + FIX):
        es.eigsh(a, 2, seed=0)
    with pytest.raises(ValueError, match="spectral_density needs a symmetric operator, but " + ASYMMETRY + ".*" + FIX):
        es.spectral_density(a, 3, seed=0)


# ---- 4. empty operators -----------------------------------------------------------------


EMPTY = re.escape("an operator needs n ≥ 1, got shape (0, 0)")


def test_empty_dense_matrix_is_refused(xp):
    with pytest.raises(ValueError, match=EMPTY + r" \(DenseOperator\)"):
        es.aslinearoperator(xp.zeros((0, 0), dtype=xp.float64))


def test_empty_user_operator_is_refused(xp):
    with pytest.raises(ValueError, match=EMPTY + r" \(CallableOperator\)"):
        es.LinearOperator.from_matvec(lambda x: x, shape=(0, 0), dtype=xp.float64, xp=xp)


def test_empty_sparse_and_rectangular_shapes_are_refused():
    with pytest.raises(ValueError, match=EMPTY + r" \(sparse matrix\)"):
        es.aslinearoperator(sp.csr_matrix((0, 0)))
    with pytest.raises(ValueError, match=re.escape("an operator needs m ≥ 1 and n ≥ 1, got shape (3, 0)")):
        es.aslinearoperator(np.zeros((3, 0)))
    with pytest.raises(ValueError, match=EMPTY):
        es.aslinearoperator(spla.LinearOperator((0, 0), matvec=lambda v: v, dtype=np.float64))
