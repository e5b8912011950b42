"""The compiled per-batch functions, shared by every operator built from the same functions.

A new operator for new parameters of the same model (tracking sharpness during training,
say) reuses the compiled code of the previous one: the ``jax.jit``-ed functions are cached
on the kind (and its ``per=``), the user's functions (by identity), the parameters' tree structure, shapes and
dtype, ``vectorize`` and the compiler options. ``jax.jit`` itself then compiles once per batch shape and
block width. The cache keeps the last :data:`CACHE_SIZE` entries (and with them the
user's functions and whatever they close over).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp

from . import _kernels

CACHE_SIZE = 16


@dataclass(frozen=True)
class Structure:
    """What the flat vector maps back to: the tree structure, leaf shapes and dtype."""

    treedef: Any
    shapes: tuple[tuple[int, ...], ...]
    dtype: str

    def unravel(self) -> Callable[[jax.Array], Any]:
        """The inverse of ``ravel_pytree`` for this structure: slices of the flat vector
        reshaped to the leaves (row-major, ``tree_leaves`` order)."""
        sizes = [math.prod(s) for s in self.shapes]
        starts = [sum(sizes[:i]) for i in range(len(sizes))]
        treedef, shapes = self.treedef, self.shapes

        def unravel(theta: jax.Array) -> Any:
            leaves = [theta[a : a + n].reshape(s) for a, n, s in zip(starts, sizes, shapes, strict=True)]
            return jax.tree_util.tree_unflatten(treedef, leaves)

        return unravel


class Compiled:
    """The jitted per-batch product and per-batch gradient of one kind of operator.

    ``step(acc, status, i, weight, θ, inputs, targets, V) -> (acc + weight · A_i V, status)``
    with row ``i`` of ``status`` set to ``(L_i, 1 if A_i V is finite else 0)``, and
    ``value_and_grad(acc, status, i, weight, θ, inputs, targets)`` the same for ``∇L_i``;
    ``per_sample_and_mean(θ, inputs, targets) -> ((ℓ₁..ℓ_n), L)`` for per-sample kinds. The
    weighted accumulation and the bookkeeping happen inside the compiled function: a product
    costs one dispatch per batch and one transfer to the host (``status``), nothing else that
    would compile. ``traces`` counts the traces of ``step`` (each one a compilation).
    """

    def __init__(
        self,
        kind: str,
        per: str | None,
        fns: tuple[Any, ...],
        structure: Structure,
        vectorize: bool,
        options: dict[str, Any] | None,
    ):
        unravel = structure.unravel()
        kernel, loss, per_sample = _kernels.build(kind, per, fns, unravel, vectorize)
        self.traces = 0

        def record(status: jax.Array, index: jax.Array, value: jax.Array, y: jax.Array) -> jax.Array:
            row = jnp.stack([value.astype(status.dtype), jnp.all(jnp.isfinite(y)).astype(status.dtype)])
            return status.at[index].set(row)

        def step(acc, status, index, weight, theta, inputs, targets, v_block):
            # A Python side effect runs only while JAX traces: it counts compilations.
            self.traces += 1
            y, value = kernel(theta, inputs, targets, v_block)
            return acc + weight * y.astype(acc.dtype), record(status, index, value, y)

        def value_and_grad(acc, status, index, weight, theta, inputs, targets):
            value, g = jax.value_and_grad(loss)(theta, inputs, targets)
            return acc + weight * g.astype(acc.dtype), record(status, index, value, g)

        self.step = jax.jit(step, compiler_options=options)
        self.value_and_grad = jax.jit(value_and_grad, compiler_options=options)
        self.per_sample_and_mean: Callable[..., tuple[jax.Array, jax.Array]] | None = None
        if per_sample is not None:

            def per_sample_and_mean(theta, inputs, targets):
                return per_sample(theta, inputs, targets), loss(theta, inputs, targets)

            # Checks a batch: the per-sample losses and the batch loss, in one forward pass each.
            self.per_sample_and_mean = jax.jit(per_sample_and_mean, compiler_options=options)


@functools.lru_cache(maxsize=CACHE_SIZE)
def _cached(
    kind: str,
    per: str | None,
    fns: tuple[Any, ...],
    structure: Structure,
    vectorize: bool,
    options: tuple[tuple[str, Any], ...],
) -> Compiled:
    return Compiled(kind, per, fns, structure, vectorize, dict(options) or None)


def compiled(
    kind: str,
    per: str | None,
    fns: tuple[Any, ...],
    structure: Structure,
    vectorize: bool,
    compiler_options: Mapping[str, Any] | None,
) -> Compiled:
    """The shared :class:`Compiled` for this kind (a name of :data:`eigenscope.adapters.KINDS`
    and its ``per=``), functions and structure (a fresh one when the key cannot be hashed,
    e.g. a compiler option value that is a list)."""
    options = tuple(sorted((compiler_options or {}).items()))
    try:
        hash((kind, per, fns, structure, vectorize, options))
    except TypeError:  # unhashable: no sharing, but still compiled once for this operator
        return Compiled(kind, per, fns, structure, vectorize, dict(options) or None)
    return _cached(kind, per, fns, structure, vectorize, options)
