"""Hutch++: the exact trace on a sketched range plus Hutchinson on the rest (see :func:`eigenscope.trace`)."""

from __future__ import annotations

import math

import numpy as np

from ..backends import Array
from ._common import Draws, Estimator, Products, Run, Target, column_dots, mean_and_error, sketch_split
from ._orth import extend_orthonormal, project_out


class HutchPlusPlus:
    """Hutch++: an exact trace on a sketched range plus Hutchinson on the deflated rest."""

    def __init__(self, prod: Products, draw: Draws) -> None:
        self.prod, self.draw = prod, draw
        self.xp = prod.op.xp
        self.n = prod.op.shape[1]
        self.q: Array | None = None
        self.k = 0
        self.exact = 0.0  # tr(Qᵀ A Q), accumulated block by block
        self.residual = np.zeros(0)

    def grow(self, k_add: int) -> None:
        """Add ``k_add`` sketch columns: ``Q ← orth([Q, A S])``, ``tr(QᵀAQ)`` updated (2 k_add products)."""
        s = self.draw(k_add)
        qb, _, _ = extend_orthonormal(self.xp, self.q, self.prod.matmat(s))
        self.exact += float(np.sum(column_dots(qb, self.prod.matmat(qb))))
        self.prod.check_finite(np.asarray(self.exact), "tr(QᵀAQ)")
        self.q = qb if self.q is None else self.xp.concat([self.q, qb], axis=1)
        self.k += k_add
        self.residual = np.zeros(0)  # samples of the old deflation no longer apply

    def add_residual(self, p: int, block: int) -> None:
        """``p`` Hutchinson samples ``gᵀ(I − QQᵀ)A(I − QQᵀ)g`` (p products)."""
        if self.k >= self.n:
            return
        done = 0
        while done < p:
            b = min(block, p - done)
            g, _ = project_out(self.draw(b), self.q)
            values = column_dots(g, self.prod.matmat(g))
            self.prod.check_finite(values, "a residual probe value")
            self.residual = np.concatenate([self.residual, values])
            done += b

    def result(self) -> Run:
        """``(estimate, standard error, samples)``; exact (error 0, no samples) once Q spans everything."""
        if self.k >= self.n:  # Q spans everything: tr(QᵀAQ) = tr(A)
            return self.exact, 0.0, np.zeros(0)
        samples = self.exact + self.residual
        est, err = mean_and_error(self.residual)
        return self.exact + est, err, samples


def fixed(
    prod: Products, draw: Draws, num_matvecs: int | None, probes: Array | None, block_size: int | None, who: str
) -> Run:
    """A sketch of a third of the budget (capped at n), the rest on residual probes."""
    est = HutchPlusPlus(prod, draw)
    k, p = sketch_split(num_matvecs, probes, who, "hutch++")
    est.grow(min(k, est.n))
    est.add_residual(p, block_size or p)
    return est.result()


def adaptive(prod: Products, draw: Draws, first: int, cap: int, step: int, target: Target) -> Run:
    """A balanced first round, then :func:`_next_round` until ``target`` or ``cap`` products."""
    est = HutchPlusPlus(prod, draw)
    k, p = sketch_split(first, None, prod.who, "hutch++")
    est.grow(min(k, est.n))
    est.add_residual(p, step)
    while True:
        estimate, std_error, samples = est.result()
        left = cap - prod.count
        if target.reached(std_error, estimate) or left <= 0:
            return estimate, std_error, samples
        _next_round(est, std_error, target.value(estimate), left, step)


def _next_round(est: HutchPlusPlus, std_error: float, target: float, left: int, step: int) -> None:
    """One adaptive Hutch++ round: top up the residual probes or double the sketch."""
    p = est.residual.size
    if math.isfinite(std_error) and target > 0 and p > 0:
        need = max(math.ceil(p * (std_error / target) ** 2) - p, 1)
    else:
        need = math.inf
    k_add = min(est.k, est.n - est.k)
    p_new = 0 if est.k + k_add >= est.n else 2 * max(p, 1)
    grow_cost = 2 * k_add + p_new
    if k_add > 0 and grow_cost <= left and need > grow_cost:
        est.grow(k_add)
        est.add_residual(p_new, step)
    else:
        # Whole blocks: the prediction is rough anyway, and equal block widths spare
        # backends that compile per shape (JAX) a recompilation every round.
        top = left if math.isinf(need) else step * math.ceil(need / step)
        est.add_residual(int(min(top, left)), step)


ESTIMATOR = Estimator(minimum=3, hint=" (Hutch++ splits it into thirds)", fixed=fixed, adaptive=adaptive)
