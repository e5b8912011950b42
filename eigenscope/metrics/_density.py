"""Discrete spectral measures: what every density metric reads.

A *discrete measure* ``μ = Σᵢ wᵢ δ(λ − θᵢ)`` (weights summing to 1) is the stem of a
spectral density from stochastic Lanczos quadrature (one row of nodes and weights per probe
vector, as in :class:`eigenscope.SpectralDensity`) or the exact eigenvalue distribution of a
small matrix (each eigenvalue with mass ``1/n``, see :func:`density_from_eigenvalues`).
Any object with ``nodes`` and ``weights`` (:class:`DiscreteMeasure`) will do; it is read as
an :class:`eigenscope.SpectralDensity`, whose methods (stem, smoothing, moments) the metrics
use. NumPy only; the inputs are small.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np

from ..algorithms import SpectralDensity


@runtime_checkable
class DiscreteMeasure(Protocol):
    """Anything holding a discrete spectral measure: an :class:`eigenscope.SpectralDensity`
    or a user's own object.

    ``nodes`` and ``weights`` are arrays of one shape, ``(num_probes, m)`` (or ``(m,)`` for
    one probe): per probe, atoms ``θᵢ`` with masses ``wᵢ`` summing to 1. An optional integer
    attribute ``dimension`` (n, the size of the matrix) is read when present.
    """

    @property
    def nodes(self) -> Any:
        """The atoms, shape ``(num_probes, m)`` or ``(m,)``."""
        ...

    @property
    def weights(self) -> Any:
        """Their masses, the shape of ``nodes``; each row sums to 1."""
        ...


DensityLike = DiscreteMeasure | np.ndarray | Sequence[float] | tuple[Any, Any]
"""What the density metrics accept: a :class:`DiscreteMeasure` (an
:class:`~eigenscope.SpectralDensity`, say), a 1-D array of eigenvalues (mass ``1/n`` each),
or a pair ``(nodes, weights)`` of 1-D arrays."""


def density_from_eigenvalues(eigenvalues: Any, weights: Any = None) -> SpectralDensity:
    """The discrete measure of known eigenvalues as a :class:`~eigenscope.SpectralDensity`.

    Parameters
    ----------
    eigenvalues : array_like, shape (n,)
        The atoms ``θᵢ`` (for an exact spectrum: all n eigenvalues).
    weights : array_like, shape (n,), optional
        Their masses ``wᵢ`` (non-negative, normalized here to sum to 1); default ``1/n`` each,
        which is the eigenvalue distribution ``μ = (1/n) Σᵢ δ(λ − λᵢ)`` of a matrix.

    Returns
    -------
    SpectralDensity
        One "probe" holding the measure; ``dimension = n``, ``num_matvecs = 0``. Every metric
        of :mod:`eigenscope.metrics` and every method of ``SpectralDensity`` applies.
    """
    nodes = np.asarray(eigenvalues, dtype=np.float64).reshape(-1)
    if nodes.size == 0:
        raise ValueError("density_from_eigenvalues needs at least one eigenvalue")
    if not np.all(np.isfinite(nodes)):
        raise ValueError("eigenvalues must be finite")
    if weights is None:
        w = np.full(nodes.size, 1.0 / nodes.size)
    else:
        w = np.asarray(weights, dtype=np.float64).reshape(-1)
        if w.shape != nodes.shape:
            raise ValueError(f"weights have shape {w.shape}, eigenvalues {nodes.shape}")
        if np.any(w < 0) or not np.isfinite(w).all() or w.sum() <= 0:
            raise ValueError("weights must be finite, non-negative and not all zero")
        w = w / w.sum()
    return _measure(nodes[None, :], w[None, :], int(nodes.size))


def _measure(nodes: np.ndarray, weights: np.ndarray, dimension: int) -> SpectralDensity:
    """A measure computed without products, as a :class:`~eigenscope.SpectralDensity`."""
    return SpectralDensity(
        nodes=nodes,
        weights=weights,
        num_matvecs=0,
        dimension=dimension,
        num_steps=np.full(nodes.shape[0], nodes.shape[1]),
    )


def as_density(obj: DensityLike) -> SpectralDensity:
    """Coerce a :data:`DensityLike` into a :class:`~eigenscope.SpectralDensity`.

    A :class:`DiscreteMeasure` (an :class:`~eigenscope.SpectralDensity`, say) keeps its
    rows, weights and ``dimension`` (default: the number of atoms per row); a pair is
    ``(nodes, weights)``; anything else is a list of eigenvalues of mass ``1/n`` each.

    Raises
    ------
    ValueError
        When the measure is empty, not finite, or its nodes and weights differ in shape.
    """
    if isinstance(obj, SpectralDensity):
        return obj
    if isinstance(obj, DiscreteMeasure):
        nodes = np.atleast_2d(np.asarray(obj.nodes, dtype=np.float64))
        weights = np.atleast_2d(np.asarray(obj.weights, dtype=np.float64))
        if nodes.shape != weights.shape or nodes.ndim != 2 or nodes.size == 0:
            raise ValueError(f"a measure needs nodes and weights of one shape, got {nodes.shape} and {weights.shape}")
        if not (np.isfinite(weights).all() and np.all(weights >= 0) and np.any(weights > 0, axis=1).all()):
            raise ValueError("a measure's weights must be finite, non-negative and not all zero in any row")
        dimension = getattr(obj, "dimension", None)
        return _measure(nodes, weights, int(nodes.shape[1] if dimension is None else dimension))
    if isinstance(obj, tuple) and len(obj) == 2:
        return density_from_eigenvalues(obj[0], obj[1])
    return density_from_eigenvalues(obj)
