"""Dtype-aware tolerances for comparing computed spectra with ground truth."""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import backends


def tolerance(dtype: Any, *, n: int = 1, scale: float = 1.0, factor: float = 50.0) -> float:
    """``factor · ε(dtype) · sqrt(n) · scale``: the absolute error a backward-stable
    computation of size ``n`` on data of magnitude ``scale`` stays below."""
    eps = float(np.finfo(backends.dtype_name(dtype)).eps)
    return factor * eps * float(np.sqrt(max(n, 1))) * float(scale)
