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


ADVERSARIAL_KINDS = ("low_rank", "psd_rank_deficient", "indefinite_null", "exact_cluster", "near_cluster", "separated")


@st.composite
def adversarial_spectra(
    draw: Any,
    *,
    min_n: int = 24,
    max_n: int = 64,
    kinds: tuple[str, ...] = ADVERSARIAL_KINDS,
    scales: tuple[float, ...] = (1.0,),
) -> np.ndarray:
    """Sorted float64 spectra of the kinds users hit and single-vector Krylov methods miss.

    - ``"low_rank"``: rank r ≤ 8 (most eigenvalues exactly 0), both signs;
    - ``"psd_rank_deficient"``: a GGN-like positive part of rank r and a null space;
    - ``"indefinite_null"``: negative and positive parts with a null space between;
    - ``"exact_cluster"``: values repeated 2–5 times (exact multiplicities), at either end;
    - ``"near_cluster"``: clusters whose members differ by a relative gap in [1e-8, 1e-4];
    - ``"separated"``: distinct values (the baseline).

    Every spectrum is multiplied by one of ``scales`` (e.g. ``(1e-150, 1, 1e150)``
    for float64, ``(1e-18, 1, 1e18)`` for float32).
    """
    n = draw(st.integers(min_n, max_n))
    kind = draw(st.sampled_from(kinds))
    scale = draw(st.sampled_from(scales))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    if kind == "low_rank":
        r = draw(st.integers(1, max(1, min(8, n - 2))))
        lam = np.zeros(n)
        lam[:r] = rng.uniform(0.5, 5.0, r) * rng.choice([-1.0, 1.0], r)
    elif kind == "psd_rank_deficient":
        r = draw(st.integers(1, max(1, n // 2)))
        lam = np.zeros(n)
        lam[:r] = rng.uniform(0.01, 1.0, r) ** 2 * 10
    elif kind == "indefinite_null":
        p, q = draw(st.integers(1, max(1, n // 3))), draw(st.integers(1, max(1, n // 3)))
        lam = np.zeros(n)
        lam[:p] = rng.uniform(0.1, 3.0, p)
        lam[p : p + q] = -rng.uniform(0.1, 3.0, q)
    elif kind in ("exact_cluster", "near_cluster"):
        lam = rng.uniform(-1.0, 1.0, n)
        pos = 0
        while pos < n // 2:
            size = int(rng.integers(2, 6))
            value = rng.uniform(1.5, 4.0) * rng.choice([-1.0, 1.0])
            block = np.full(min(size, n - pos), value)
            if kind == "near_cluster":
                gap = 10.0 ** rng.uniform(-8, -4)
                block = block * (1.0 + gap * np.arange(block.size))
            lam[pos : pos + block.size] = block
            pos += block.size
    else:
        lam = rng.uniform(-3.0, 3.0, n)
    return np.sort(lam * scale)


@st.composite
def adversarial_matrices(draw: Any, **kwargs: Any) -> tuple[np.ndarray, np.ndarray]:
    """``(A, λ)``: ``Q diag(λ) Qᵀ`` with λ from :func:`adversarial_spectra` (float64 NumPy)."""
    lam = draw(adversarial_spectra(**kwargs))
    q = orthogonal_matrix(lam.size, draw(st.integers(0, 2**32 - 1)))
    a = (q * lam) @ q.T
    return (a + a.T) / 2, lam
