"""Ritz pairs and how they are judged: the vocabulary ``eigsh``'s engines share.

Thick-restart Lanczos, power iteration and the verification all return :class:`Pairs`,
rank eigenvalues by ``which`` with :func:`ranking` and test residuals against
:func:`threshold`; keeping these here means none of them imports another's internals.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..backends import Array

WHICH_CHOICES = ("LA", "SA", "LM", "BE")


@dataclass
class Pairs:
    """Ritz pairs of a run, most wanted first (internal)."""

    values: np.ndarray  # (k,)
    vectors: Array  # (n, k)
    residuals: np.ndarray  # (k,)
    converged: np.ndarray  # (k,) bool
    restarts: int
    anorm: float  # a lower bound on ‖A‖ (of the normalized operator)
    certified: bool = False  # the run's own start vector verified the set (k = 1, see _christoffel)
    certificate_matvecs: int = 0  # products spent after convergence to get that certificate


def ranking(theta: np.ndarray, which: str) -> np.ndarray:
    """Indices of ``theta`` from most to least wanted."""
    if which == "LA":
        return np.argsort(-theta, kind="stable")
    if which == "SA":
        return np.argsort(theta, kind="stable")
    if which == "LM":
        return np.argsort(-np.abs(theta), kind="stable")
    asc = np.argsort(theta, kind="stable")  # BE: alternate ends, the high end first (as ARPACK)
    order = np.empty_like(asc)
    order[0::2] = asc[::-1][: (asc.size + 1) // 2]
    order[1::2] = asc[: asc.size // 2]
    return order


def threshold(theta: np.ndarray, tol: float, eps: float, anorm: float) -> np.ndarray:
    """The residual bound of the convergence test: ``tol · max(|θ|, ε^{1/3}‖A‖)``.

    Relative to |θ|, floored so that θ ≈ 0 (a null space) can converge: the floor
    stays above the ~ε‖A‖ a residual can reach in either dtype.
    """
    return tol * np.maximum(np.abs(theta), eps ** (1 / 3) * anorm)
