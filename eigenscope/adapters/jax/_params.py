"""The parameter pytree as one flat vector (``jax.flatten_util.ravel_pytree``)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from ... import backends
from ._compile import Structure
from ._state import non_array_hint


@dataclass(frozen=True)
class FlatParams:
    """The parameters ``θ`` as a flat ``(n,)`` vector and the map back to the pytree.

    The flat vector concatenates the leaves in ``jax.tree_util.tree_leaves`` order (dict
    keys sorted, lists and tuples in order), each flattened row-major.
    """

    theta: jax.Array
    unravel: Callable[[jax.Array], Any]
    paths: tuple[str, ...]
    shapes: tuple[tuple[int, ...], ...]
    treedef: Any

    @property
    def num_params(self) -> int:
        """``n``, the length of the flat vector."""
        return int(self.theta.shape[0])

    @property
    def dtype(self) -> Any:
        """float32 or float64: the dtype every leaf shares."""
        return self.theta.dtype

    @property
    def structure(self) -> Structure:
        """Tree structure, shapes and dtype: what the compiled functions depend on."""
        return Structure(self.treedef, self.shapes, str(self.dtype))

    @property
    def device(self) -> Any:
        """Where the parameters live (and the operator's vectors, and the data)."""
        return backends.device(self.theta)


def flatten_params(params: Any) -> FlatParams:
    """Check and flatten a parameter pytree.

    Raises
    ------
    ValueError
        If the pytree has no leaf.
    TypeError
        If a leaf is not a floating-point array, or the leaves mix dtypes (the operator has
        one dtype; ``ravel_pytree`` would silently promote them).
    """
    leaves = jax.tree_util.tree_leaves_with_path(params)
    if not leaves:
        raise ValueError("params has no array leaves: pass the pytree of the parameters to differentiate")
    dtypes: dict[str, str] = {}
    for path, leaf in leaves:
        where = jax.tree_util.keystr(path) or "<root>"
        if not isinstance(leaf, (jax.Array, np.ndarray)):
            raise TypeError(f"params leaf {where} is a {type(leaf).__name__}, not an array; {non_array_hint(params)}")
        if not jnp.issubdtype(leaf.dtype, jnp.floating):
            raise TypeError(
                f"params leaf {where} has dtype {leaf.dtype}; only floating-point leaves can be "
                "differentiated: close over integer state in loss_fn instead of passing it in params"
            )
        dtypes.setdefault(str(leaf.dtype), where)
    if len(dtypes) > 1:
        pairs = ", ".join(f"{d} (e.g. {w})" for d, w in dtypes.items())
        raise TypeError(f"params leaves mix dtypes {pairs}; cast them to one of float32 or float64 first")
    dtype = leaves[0][1].dtype
    backends.check_dtype(dtype, what="parameter")
    if dtype == np.float64 and not jax.config.jax_enable_x64:
        # jnp would silently turn float64 NumPy leaves into float32.
        raise TypeError(
            "params are float64 but JAX runs in 32-bit mode: call jax.config.update('jax_enable_x64', True)"
        )
    theta, unravel = ravel_pytree(params)
    return FlatParams(
        theta=theta,
        unravel=unravel,
        paths=tuple(jax.tree_util.keystr(p) for p, _ in leaves),
        shapes=tuple(tuple(leaf.shape) for _, leaf in leaves),
        treedef=jax.tree_util.tree_structure(params),
    )
