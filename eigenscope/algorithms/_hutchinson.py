"""Hutchinson's trace estimator: the mean of ``zᵢᵀ A zᵢ`` over random probes (see :func:`eigenscope.trace`)."""

from __future__ import annotations

import numpy as np

from ..backends import Array
from ._common import (
    DEFAULT_NUM_MATVECS,
    Draws,
    Estimator,
    Products,
    Run,
    Target,
    column_dots,
    mean_and_error,
)


class Hutchinson:
    """Plain Hutchinson: streams blocks, keeps only the per-probe scalars."""

    def __init__(self, prod: Products, draw: Draws) -> None:
        self.prod, self.draw = prod, draw
        self.samples = np.zeros(0)

    def add(self, p: int, block: int) -> None:
        """``p`` more samples ``zᵀAz``, drawn ``block`` at a time (p products)."""
        done = 0
        while done < p:
            b = min(block, p - done)
            z = self.draw(b)
            values = column_dots(z, self.prod.matmat(z))
            self.prod.check_finite(values, "a probe value zᵀAz")
            self.samples = np.concatenate([self.samples, values])
            done += b

    def result(self) -> Run:
        """``(mean, standard error, samples)``."""
        est, err = mean_and_error(self.samples)
        return est, err, self.samples


def fixed(
    prod: Products, draw: Draws, num_matvecs: int | None, probes: Array | None, block_size: int | None, who: str
) -> Run:
    """One sample per product: all the probes given, else ``num_matvecs`` (default 100)."""
    est = Hutchinson(prod, draw)
    p = probes.shape[1] if probes is not None else (num_matvecs or DEFAULT_NUM_MATVECS)
    if probes is not None and num_matvecs is not None and num_matvecs != p:
        raise ValueError(f"{who}: {p} probes give {p} products, but num_matvecs={num_matvecs}")
    est.add(p, block_size or p)
    return est.result()


def adaptive(prod: Products, draw: Draws, first: int, cap: int, step: int, target: Target) -> Run:
    """``first`` samples, then ``step`` more per round until ``target`` or ``cap`` products."""
    est = Hutchinson(prod, draw)
    est.add(first, step)
    while True:
        estimate, std_error, samples = est.result()
        left = cap - prod.count
        if target.reached(std_error, estimate) or left <= 0:
            return estimate, std_error, samples
        est.add(min(step, left), step)


ESTIMATOR = Estimator(minimum=1, hint="", fixed=fixed, adaptive=adaptive)
