"""The algorithms announce how many products they expect (``linop.planned_products``), so that
an operator with a one-off cost (a compiled product) can decide whether a run pays it back."""

from __future__ import annotations

import numpy as np
import pytest

import eigenscope as es
from eigenscope import linop


def _recording(n=60):
    rng = np.random.default_rng(0)
    a = rng.standard_normal((n, n))
    a = (a + a.T) / 2
    seen: list[int | None] = []

    def matvec(x):
        plan = linop.current_plan()
        seen.append(None if plan is None else plan.count)
        return a @ x

    return es.LinearOperator.from_matvec(matvec, shape=(n, n), dtype=np.float64, symmetric=True), seen


@pytest.mark.parametrize(
    ("run", "count"),
    [
        (lambda op: es.spectral_density(op, 7, 2, seed=0), 14),
        (lambda op: es.lanczos(op, 9, seed=0), 9),
        (lambda op: es.trace(op, 30, seed=0), 30),
        (lambda op: es.diagonal(op, 20, seed=0), 20),
        (lambda op: es.eigsh(op, 3, seed=0), 22),
        (lambda op: es.eigsh(op, 3, max_matvecs=200, seed=0), 22),
        pytest.param(
            lambda op: es.eigsh(op, 1, max_matvecs=12, which="BE", seed=0),
            12,
            marks=pytest.mark.filterwarnings("ignore::eigenscope.ConvergenceWarning"),  # the cap binds
        ),
    ],
)
def test_algorithms_announce_their_product_count(run, count):
    op, seen = _recording()
    run(op)
    assert seen and set(seen) == {count}
    assert linop.current_plan() is None  # nothing left announced after the run


def test_inner_runs_announce_their_own_count_and_restore_the_outer():
    op, seen = _recording()
    es.spectral_density(op, 6, 1, deflate_outliers=2, seed=0)
    outer = 6 * 1 + 10 + 4 * 2
    assert outer in seen and 10 + 4 * 2 in seen  # the deflation's eigsh inside the density
    assert seen[-1] == outer


def test_products_outside_an_algorithm_announce_nothing():
    op, seen = _recording()
    op @ np.ones(op.shape[0])
    with linop.planned_products(5):
        op @ np.ones(op.shape[0])
    assert seen == [None, 5]
