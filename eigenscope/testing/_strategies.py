"""Hypothesis strategies for symmetric matrices and operators with a prescribed spectrum.

Draw the size, the spectrum and a seed, never raw entries; then rotate a
diagonal matrix by a random orthogonal matrix, so the exact eigenvalues are known.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from hypothesis import strategies as st

from .. import backends
from ..linop import DenseOperator, LinearOperator


def orthogonal_matrix(n: int, seed: int) -> np.ndarray:
    """A Haar-distributed n×n orthogonal matrix (QR of a Gaussian, signs fixed), float64."""
    rng = np.random.default_rng(seed)
    q, r = np.linalg.qr(rng.standard_normal((n, n)))
    return q * np.sign(np.diag(r))


@st.composite
def spectra(
    draw: Any,
    *,
    min_n: int = 2,
    max_n: int = 32,
    min_gap: float = 0.0,
    max_gap: float = 2.0,
    low: float = -10.0,
    high: float = 10.0,
) -> np.ndarray:
    """Sorted float64 eigenvalues; ``min_gap > 0`` keeps neighbours at least that far apart.

    The first eigenvalue is drawn in ``[low, high]``; the gaps follow.
    """
    n = draw(st.integers(min_n, max_n))
    gaps = draw(st.lists(st.floats(min_gap, max(max_gap, min_gap)), min_size=n - 1, max_size=n - 1))
    start = draw(st.floats(low, high))
    return start + np.concatenate([[0.0], np.cumsum(gaps)])


@st.composite
def symmetric_with_spectrum(draw: Any, **kwargs: Any) -> tuple[np.ndarray, np.ndarray]:
    """``(A, λ)``: a float64 NumPy symmetric matrix ``Q diag(λ) Qᵀ`` and its sorted spectrum.

    Keyword arguments go to :func:`spectra`.
    """
    lam = draw(spectra(**kwargs))
    q = orthogonal_matrix(lam.size, draw(st.integers(0, 2**32 - 1)))
    a = (q * lam) @ q.T
    return (a + a.T) / 2, lam


@st.composite
def operators_with_spectrum(
    draw: Any, *, xp: Any, dtype: Any = None, device: Any = None, **kwargs: Any
) -> tuple[LinearOperator, np.ndarray]:
    """``(op, λ)``: a dense operator of backend ``xp`` (float64 by default) with spectrum λ.

    ``xp`` is an array module (``numpy``, ``torch``, ``jax.numpy``, ...);
    keyword arguments go to :func:`spectra`.
    """
    xp = backends.resolve_namespace(xp)
    dtype = xp.float64 if dtype is None else dtype
    device = backends.default_device(xp) if device is None else device
    a, lam = draw(symmetric_with_spectrum(**kwargs))
    return DenseOperator(backends.from_numpy(a, xp=xp, dtype=dtype, device=device), symmetric=True), lam
