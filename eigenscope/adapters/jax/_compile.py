"""The compiled per-batch functions, shared by every operator built from equal functions.

A new operator for new parameters of the same model (tracking sharpness during training,
say) reuses the compiled code of the previous one: the ``jax.jit``-ed functions are cached
on the kind (and its ``per=``), the user's functions (equal code and closure, see
:mod:`._keys`; the arrays they carry are arguments, not constants), the parameters' tree
structure, shapes and dtype, ``vectorize`` and the compiler options. ``jax.jit`` itself
then compiles once per batch shape and block width. The cache keeps the last
:data:`CACHE_SIZE` entries (and with them the user's functions and whatever they close
over). Compiling again for a function whose code was compiled before under another key is
reported once per code object with a :class:`RecompilationWarning`.
"""

from __future__ import annotations

import math
import types
import warnings
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp

from ..._warnings import EigenscopeWarning
from . import _kernels
from ._keys import Split, describe, split

CACHE_SIZE = 16


class RecompilationWarning(EigenscopeWarning):
    """A constructor compiled its per-batch functions again for a function whose code it
    compiled before (a new ``lambda`` closing over an array each step, say)."""


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

    ``step(acc, status, i, weight, θ, arrays, inputs, targets, V) -> (acc + weight · A_i V, status)``
    with row ``i`` of ``status`` set to ``(L_i, 1 if A_i V is finite else 0)``, and
    ``value_and_grad(acc, status, i, weight, θ, arrays, inputs, targets)`` the same for ``∇L_i``;
    ``per_sample_and_mean(θ, arrays, inputs, targets) -> ((ℓ₁..ℓ_n), L)`` for per-sample kinds;
    ``data_pass(status, θ, arrays, groups, V) -> (Σ_i w_i A_i V, status)`` the whole pass over
    the data in one program (``groups``: batches of one shape stacked, with their indices and
    weights; see :func:`._data.stacked_groups`).
    ``arrays`` are the array leaves of the user's functions (:class:`._keys.Split`): the
    functions are rebuilt around them while JAX traces, so new state compiles nothing. The
    weighted accumulation and the bookkeeping happen inside the compiled function: a product
    costs one dispatch per batch and one transfer to the host (``status``), nothing else that
    would compile. ``traces`` counts the traces of ``step`` (each one a compilation);
    ``widths`` holds the block widths that ran.
    """

    def __init__(
        self,
        kind: str,
        per: str | None,
        fns: Split,
        structure: Structure,
        vectorize: bool,
        options: dict[str, Any] | None,
    ):
        unravel = structure.unravel()
        self.traces = 0
        self.widths: set[int] = set()  # block widths that ran (compiled), for the operators sharing this

        def build(arrays: Any) -> _kernels.Built:
            return _kernels.build(kind, per, fns.rebuild(arrays), unravel, vectorize)

        def record(status: jax.Array, index: jax.Array, value: jax.Array, y: jax.Array) -> jax.Array:
            row = jnp.stack([value.astype(status.dtype), jnp.all(jnp.isfinite(y)).astype(status.dtype)])
            return status.at[index].set(row)

        def step(acc, status, index, weight, theta, arrays, inputs, targets, v_block):
            # A Python side effect runs only while JAX traces: it counts compilations.
            self.traces += 1
            y, value = build(arrays).kernel(theta, inputs, targets, v_block)
            return acc + weight * y.astype(acc.dtype), record(status, index, value, y)

        def value_and_grad(acc, status, index, weight, theta, arrays, inputs, targets):
            value, g = jax.value_and_grad(build(arrays).loss)(theta, inputs, targets)
            return acc + weight * g.astype(acc.dtype), record(status, index, value, g)

        def data_pass(status, theta, arrays, groups, v):
            # The whole pass over the data in one program: one dispatch and one transfer
            # (the status) per product, where a call per batch costs a dispatch each (for a
            # small model, most of a product). Batches of one shape go through a lax.scan
            # (compiled once per shape, as the per-batch step is); v may be (n,) or (n, b).
            self.traces += 1
            built = build(arrays)
            block = v.reshape(v.shape[0], -1)
            acc = jnp.zeros(block.shape, dtype=v.dtype)

            def body(carry, item):
                acc, status = carry
                index, weight, inputs, targets = item
                y, value = built.kernel(theta, inputs, targets, block)
                return (acc + weight * y.astype(acc.dtype), record(status, index, value, y)), None

            for group in groups:
                (acc, status), _ = jax.lax.scan(body, (acc, status), group)
            return acc.reshape(v.shape), status

        self.step = jax.jit(step, compiler_options=options)
        self.data_pass = jax.jit(data_pass, compiler_options=options)
        self.value_and_grad = jax.jit(value_and_grad, compiler_options=options)
        self.per_sample_and_mean: Callable[..., tuple[jax.Array, jax.Array]] | None = None
        if kind == "gradient_covariance" and per == "sample":

            def per_sample_and_mean(theta, arrays, inputs, targets):
                built = build(arrays)
                return built.per_sample(theta, inputs, targets), built.loss(theta, inputs, targets)

            # Checks a batch: the per-sample losses and the batch loss, in one forward pass each.
            self.per_sample_and_mean = jax.jit(per_sample_and_mean, compiler_options=options)


_CACHE: OrderedDict[Any, Compiled] = OrderedDict()
_KEYS_BY_CODE: dict[types.CodeType, set[int]] = {}
_WARNED: set[types.CodeType] = set()


def _report(fns: Split, who: str) -> None:
    """Warn (once per code object) when a function whose code was compiled before is compiled
    again because it could only be keyed by identity (it closes over an array, say). A new
    function that differs in a value it closes over (another model, another constant) is
    another function: compiling it is expected, and not reported."""
    for fk in fns.functions:
        if fk.unsafe is None:
            continue
        seen = _KEYS_BY_CODE.setdefault(fk.code, set())
        seen.add(hash(fk.key))
        if len(seen) < 2 or fk.code in _WARNED:
            continue
        _WARNED.add(fk.code)
        warnings.warn(
            f"{who}: {describe(fk.code)} was compiled again: it is a new function with the same code as one "
            f"compiled before, but {fk.unsafe}, which cannot be compared by value, so only the same function "
            "object reuses compiled code. Each such operator compiles its products anew. Define the function "
            "once, outside the loop, and pass what changes as arguments (params, or the arrays of a pytree such "
            "as jax.tree_util.Partial(fn, state)); for Flax and Equinox models ejx.nnx_loss, ejx.linen_loss and "
            "ejx.equinox_loss keep the model's state out of the compiled code",
            RecompilationWarning,
            stacklevel=5,  # the user's call of the constructor
        )


def compiled(
    kind: str,
    per: str | None,
    fns: tuple[Any, ...],
    structure: Structure,
    vectorize: bool,
    compiler_options: Mapping[str, Any] | None,
) -> tuple[Compiled, tuple[Any, ...]]:
    """The shared :class:`Compiled` for this kind (a name of :data:`eigenscope.adapters.KINDS`
    and its ``per=``), functions and structure, and the array leaves of ``fns`` to pass it
    (a fresh one when the key cannot be hashed, e.g. a compiler option value that is a
    list)."""
    parts = split(fns)
    options = tuple(sorted((compiler_options or {}).items()))
    key = (kind, per, parts.key, structure, vectorize, options)
    try:
        hash(key)
    except TypeError:  # unhashable: no sharing, but still compiled once for this operator
        return Compiled(kind, per, parts, structure, vectorize, dict(options) or None), parts.arrays
    hit = _CACHE.get(key)
    if hit is not None:
        _CACHE.move_to_end(key)
        return hit, parts.arrays
    _report(parts, f"ejx.{kind}")
    made = _CACHE[key] = Compiled(kind, per, parts, structure, vectorize, dict(options) or None)
    while len(_CACHE) > CACHE_SIZE:
        _CACHE.popitem(last=False)
    return made, parts.arrays
