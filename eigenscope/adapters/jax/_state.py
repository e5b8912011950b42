"""Parameters that are not all trainable: detected and refused with the one-line fix.

The curvature is taken with respect to every leaf of ``params``. A pytree that also holds a
model's state (Flax NNX ``BatchStat`` or RNG variables, the Flax linen ``batch_stats``
collection beside ``params``, an Equinox ``State``) would turn running statistics into
parameters and silently give another matrix, so it is refused unless the caller passes
``allow_state=True``. Flax and Equinox are looked up only if the caller imported them
(``sys.modules``): this package never imports them.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from typing import Any

import jax

from ... import backends

_FIX_NNX = (
    "pass only the trainable parameters: loss_fn, params = ejx.nnx_loss(model, output_loss) "
    "(or graphdef, params, rest = nnx.split(model, nnx.Param, ...) and nnx.merge(graphdef, params, rest, copy=True) "
    "inside the loss)"
)
_FIX_LINEN = (
    "pass variables['params'] only: loss_fn, params = ejx.linen_loss(model, variables, output_loss) "
    "(add mutable=['batch_stats'], train=True for train mode)"
)
_FIX_EQX = (
    "pass only the trainable arrays: loss_fn, params = ejx.equinox_loss(model, output_loss, state=state) "
    "(or params, static = eqx.partition(model, eqx.is_inexact_array))"
)
_INTENDED = "; pass allow_state=True if differentiating with respect to it is intended"


def check_concrete(params: Any, who: str) -> None:
    """Raise :class:`eigenscope.backends.TracedCallError` if ``params`` are traced (the
    constructor was called inside ``jax.jit``): an operator is built on concrete arrays."""
    if any(isinstance(leaf, jax.core.Tracer) for leaf in jax.tree_util.tree_leaves(params)):
        raise backends.TracedCallError(backends.TRACED_MESSAGE.format(who=who))


def _nnx_state(params: Any) -> str | None:
    nnx = sys.modules.get("flax.nnx")
    if nnx is None:
        return None
    found = jax.tree_util.tree_leaves_with_path(params, is_leaf=lambda x: isinstance(x, nnx.Variable))
    other = [
        (jax.tree_util.keystr(path), type(v).__name__)
        for path, v in found
        if isinstance(v, nnx.Variable) and not isinstance(v, nnx.Param)
    ]
    if not other:
        return None
    shown = ", ".join(f"{p} ({t})" for p, t in other[:3]) + (f" and {len(other) - 3} more" if len(other) > 3 else "")
    return f"params holds Flax NNX state that is not an nnx.Param: {shown}; {_FIX_NNX}"


def _linen_state(params: Any) -> str | None:
    if not isinstance(params, Mapping) or "params" not in params:
        return None
    others = sorted(str(k) for k in params if k != "params")
    if not others:
        return None
    return (
        f"params looks like a Flax linen variables dict: beside 'params' it holds the collections {others} "
        f"(running statistics, caches), which would become parameters; {_FIX_LINEN}"
    )


def _equinox_state(params: Any) -> str | None:
    eqx = sys.modules.get("equinox")
    if eqx is None:
        return None
    nodes = jax.tree_util.tree_leaves(params, is_leaf=lambda x: isinstance(x, eqx.nn.State))
    if any(isinstance(x, eqx.nn.State) for x in nodes):
        return f"params holds an Equinox nn.State (BatchNorm statistics), which would become parameters; {_FIX_EQX}"
    return None


def check_trainable(params: Any, allow_state: bool) -> None:
    """Raise ``ValueError`` if ``params`` holds a model's non-trainable state (NNX variables
    other than ``nnx.Param``, a linen variables dict with collections beside ``params``, an
    Equinox ``nn.State``), naming it and the one-line fix; nothing with ``allow_state``."""
    if allow_state:
        return
    for check in (_nnx_state, _linen_state, _equinox_state):
        problem = check(params)
        if problem:
            raise ValueError(problem + _INTENDED)


def non_array_hint(params: Any) -> str:
    """The fix to suggest when a leaf of ``params`` is not an array (a function or a module
    field of an Equinox or NNX model passed whole)."""
    eqx = sys.modules.get("equinox")
    if eqx is not None and isinstance(params, eqx.Module):
        return _FIX_EQX
    nnx = sys.modules.get("flax.nnx")
    if nnx is not None and isinstance(params, nnx.Module):
        return _FIX_NNX
    return "keep only the arrays to differentiate in params (Equinox: ejx.equinox_loss or eqx.partition)"
