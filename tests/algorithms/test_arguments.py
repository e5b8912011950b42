"""Every bad argument gets a message naming the argument and its allowed range."""

from __future__ import annotations

import numpy as np
import pytest

import eigenscope as es
from eigenscope.testing import orthogonal_matrix

A = np.diag(np.linspace(1.0, 2.0, 40))


@pytest.mark.parametrize("bad", [True, 2.5, 2.0, "3", None])
def test_k_must_be_an_integer(bad):
    with pytest.raises(TypeError, match=r"eigsh: k must be an integer in \[1, 39\]"):
        es.eigsh(A, bad)


@pytest.mark.parametrize("bad", [0, -1, 40, np.int64(41)])
def test_k_in_range(bad):
    with pytest.raises(ValueError, match=r"eigsh: k must be an integer in \[1, 39\]"):
        es.eigsh(A, bad)


def test_numpy_integers_are_accepted():
    assert es.eigsh(A, np.int32(2), seed=0).eigenvalues.shape == (2,)


@pytest.mark.parametrize("name", ["max_matvecs", "block_size", "ncv"])
@pytest.mark.parametrize("bad", [True, 2.5, "3", 0])
def test_eigsh_counts(name, bad):
    with pytest.raises((TypeError, ValueError), match=f"eigsh: {name} must be an integer >= 1"):
        es.eigsh(A, 2, method="block", **{name: bad})


@pytest.mark.parametrize("bad", [np.inf, np.nan, 0.0, -1e-3, "1e-3", True])
def test_tol_finite_and_positive(bad):
    with pytest.raises((TypeError, ValueError), match="eigsh: tol must be a finite number > 0"):
        es.eigsh(A, 2, tol=bad)


@pytest.mark.parametrize(
    ("v0", "message"),
    [
        (np.full(40, np.nan), "start vector v0 has NaN or Inf"),
        (np.r_[np.inf, np.ones(39)], "start vector v0 has NaN or Inf"),
        (np.zeros(40), "start vector v0 is zero"),
    ],
)
def test_start_vector(v0, message):
    with pytest.raises(ValueError, match=message):
        es.eigsh(A, 2, v0=v0)
    with pytest.raises(ValueError, match=message):
        es.lanczos(A, 5, v0=v0)


@pytest.mark.parametrize("bad", [True, 2.5, "3", 0])
def test_lanczos_and_density_counts(bad):
    with pytest.raises((TypeError, ValueError), match="lanczos: num_steps must be an integer >= 1"):
        es.lanczos(A, bad)
    with pytest.raises((TypeError, ValueError), match="spectral_density: num_steps must be an integer >= 1"):
        es.spectral_density(A, bad)
    with pytest.raises((TypeError, ValueError), match="spectral_density: num_probes must be an integer >= 1"):
        es.spectral_density(A, 10, bad)


@pytest.mark.parametrize("bad", [-1, 40, True, 1.5])
def test_deflate_outliers_in_range(bad):
    with pytest.raises((TypeError, ValueError), match=r"deflate_outliers must be an integer in \[0, 39\]"):
        es.spectral_density(A, 10, deflate_outliers=bad)


def test_probes_must_be_finite():
    probes = np.ones((40, 2))
    probes[3, 1] = np.nan
    with pytest.raises(ValueError, match="probes have NaN or Inf"):
        es.spectral_density(A, 10, probes=probes)


def test_empty_operator_is_refused():
    with pytest.raises(ValueError, match=r"n ≥ 1|n >= 1"):
        es.eigsh(np.zeros((0, 0)), 1)


def test_torch_seed_over_64_bits():
    torch = pytest.importorskip("torch")
    with pytest.raises(ValueError, match=r"seed must be an integer in \[0, 2\*\*64 - 1\]"):
        es.eigsh(torch.eye(30, dtype=torch.float64), 2, seed=2**70)


def test_tight_budget_marks_nothing_converged():
    lam = np.concatenate([[10.0, 9.0, 9.0, 8.0], np.linspace(0.0, 7.0, 56)])
    q = orthogonal_matrix(60, 1)
    a = (q * lam) @ q.T
    with pytest.warns(es.ConvergenceWarning, match="marked not converged|none is marked converged"):
        r = es.eigsh((a + a.T) / 2, 3, seed=0, max_matvecs=40)
    assert not r.converged.any()


@pytest.mark.parametrize(
    "run",
    [
        lambda op: es.trace(op, 12, method="hutchinson", block_size=4, seed=0),
        lambda op: es.trace(op, 12, method="hutch++", block_size=4, seed=0),
        lambda op: es.diagonal(op, 12, block_size=4, seed=0),
    ],
)
def test_trace_and_diagonal_name_the_product_with_nan(run):
    calls = [0]

    def matmat(x):
        calls[0] += 1
        y = x.copy()
        if calls[0] == 2:
            y[:, 1] = np.nan
        return y

    op = es.LinearOperator.from_matvec(lambda x: x, matmat=matmat, shape=(30, 30), dtype=np.float64, check_finite=False)
    with pytest.raises(FloatingPointError, match=r"product 6 with A \(column 2 of a block of 4\) returned NaN or Inf"):
        run(op)


@pytest.mark.parametrize("who", ["trace", "diagonal"])
@pytest.mark.parametrize("name", ["num_matvecs", "block_size"])
@pytest.mark.parametrize("bad", [True, 2.5, "3", 0])
def test_trace_and_diagonal_counts(who, name, bad):
    run = es.trace if who == "trace" else es.diagonal
    with pytest.raises((TypeError, ValueError), match=f"{who}: {name} must be an integer >= "):
        run(A, **{"num_matvecs": 30, "method": "hutchinson", name: bad})


@pytest.mark.parametrize("bad", [np.inf, np.nan, -1.0, "1e-3", True])
def test_trace_tolerances(bad):
    with pytest.raises((TypeError, ValueError), match="trace: rtol must be a finite number >= 0"):
        es.trace(A, rtol=bad)
