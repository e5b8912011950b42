"""Writing into preallocated arrays: in place where the backend allows, functionally for JAX."""

from __future__ import annotations

from ._namespace import Array, backend_name, namespace


def set_columns(basis: Array, start: int, block: Array) -> Array:
    """Write ``block`` (n, b) into columns ``start:start + b`` of ``basis`` (n, m).

    Returns the updated basis: the same array, modified in place, for NumPy,
    torch, CuPy and array-api-strict; a new array for JAX (``.at[].set``).
    Callers always use the return value so both cases read alike.
    """
    stop = start + block.shape[1]
    if backend_name(namespace(basis)) == "jax":
        return basis.at[:, start:stop].set(block)
    basis[:, start:stop] = block
    return basis


def set_column(basis: Array, j: int, column: Array) -> Array:
    """Write ``column`` (n,) into column ``j`` of ``basis`` (n, m); see :func:`set_columns`."""
    return set_columns(basis, j, column[:, None])


def set_index(array: Array, index: tuple, value: Array) -> Array:
    """``array[index] = value``, in place where allowed, functionally for JAX; returns the array."""
    if backend_name(namespace(array)) == "jax":
        return array.at[index].set(value)
    array[index] = value
    return array
