"""Recognizing SciPy-style inputs: sparse matrices and ``sparse.linalg`` operators of SciPy or CuPy."""

from __future__ import annotations

from types import ModuleType
from typing import Any, NamedTuple

import numpy as np

from ._namespace import default_device, resolve_namespace


class ScipyLike(NamedTuple):
    """Where a SciPy-style input lives and what it is."""

    stores_entries: bool
    """A sparse matrix (its entries can be read), not a matrix-free ``LinearOperator``."""
    xp: ModuleType
    """The Array API namespace of the vectors it multiplies."""
    device: Any
    """The device of those vectors."""


def scipy_like(a: Any) -> ScipyLike | None:
    """Describe ``a`` if it is a SciPy or ``cupyx.scipy`` sparse matrix or ``sparse.linalg``
    operator; ``None`` for anything else. Reads the type only (imports CuPy only for a CuPy object)."""
    module = type(a).__module__
    if module.startswith("scipy.sparse"):
        import scipy.sparse

        return ScipyLike(bool(scipy.sparse.issparse(a)), resolve_namespace(np), "cpu")
    if module.startswith("cupyx"):
        import cupy
        import cupyx.scipy.sparse

        xp = resolve_namespace(cupy)
        if cupyx.scipy.sparse.issparse(a):
            return ScipyLike(True, xp, a.data.device)
        return ScipyLike(False, xp, default_device(xp))
    return None
