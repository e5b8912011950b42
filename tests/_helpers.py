"""Small helpers shared by the tests."""

from __future__ import annotations

import numpy as np

import eigenscope.backends as eb


def asarray(a, xp, dtype=None):
    """A float64 (or ``dtype``) copy of NumPy ``a`` on backend ``xp``'s default device."""
    dtype = xp.float64 if dtype is None else dtype
    return eb.from_numpy(np.asarray(a), xp=xp, dtype=dtype, device=eb.default_device(xp))


def host(x) -> np.ndarray:
    """NumPy float64 copy of any backend array."""
    return eb.to_numpy(x).astype(np.float64)


def rtol_for(dtype) -> float:
    """Relative tolerance for a few dense products of size ≤ 64 in ``dtype``."""
    return 1e-5 if eb.dtype_name(dtype) == "float32" else 1e-12
