"""Writing into preallocated arrays: in place where the backend allows, functionally for JAX."""

from __future__ import annotations

from ._frameworks import Array, framework_of
from ._namespace import namespace


def set_columns(basis: Array, start: int, block: Array) -> Array:
    """Write ``block`` (n, b) into columns ``start:start + b`` of ``basis`` (n, m).

    Returns the updated basis: the same array, modified in place, for NumPy,
    torch, CuPy and array-api-strict; a new array for JAX (``.at[].set``).
    Callers always use the return value so both cases read alike.
    """
    return framework_of(namespace(basis)).set_columns(basis, start, block)


def set_column(basis: Array, j: int, column: Array) -> Array:
    """Write ``column`` (n,) into column ``j`` of ``basis`` (n, m); see :func:`set_columns`."""
    return set_columns(basis, j, column[:, None])


def set_index(array: Array, index: tuple, value: Array) -> Array:
    """``array[index] = value``, in place where allowed, functionally for JAX; returns the array."""
    return framework_of(namespace(array)).set_index(array, index, value)


def subtract_product(w: Array, a: Array, b: Array) -> Array:
    """``w − a @ b``, in place in ``w`` where the backend allows (``w`` must be the caller's own
    array, not a view of anything kept); returns the result, as :func:`set_index` does."""
    return framework_of(namespace(w)).subtract_product(w, a, b)


def subtract_scaled(w: Array, a: Array, x: Array) -> Array:
    """``w − a · x`` (``a`` broadcast against ``x``), in place in ``w`` where the backend allows;
    ``w`` must be the caller's own array. Returns the result, as :func:`set_index` does."""
    return framework_of(namespace(w)).subtract_scaled(w, a, x)
