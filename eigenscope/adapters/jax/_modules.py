"""Flax NNX, Flax linen and Equinox models as ``model_fn(params, inputs)`` of their
trainable parameters, with their state held fixed: one line before any constructor.

Each helper returns ``(model_fn, params)`` (``*_model``) or ``(loss_fn, params)``
(``*_loss``). ``params`` holds the trainable parameters only; the model's state (BatchNorm
running statistics, RNG state) is held fixed, and in train mode the batch statistics are
used and never written back. The returned functions are pytrees whose leaves are that state
(and the dropout key): the compiled products take them as arguments, so rebuilding an
operator for a trained model each step reuses the compiled code.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import jax

OutputLoss = Callable[[Any, Any], jax.Array]


@jax.tree_util.register_pytree_node_class
class ModelFunction:
    """``model_fn(params, inputs) -> outputs``: ``apply(fixed, params, inputs)`` with the
    model's fixed part ``fixed`` (a pytree: its arrays are the state, its other leaves the
    model's structure)."""

    def __init__(self, apply: Callable[[Any, Any, Any], Any], fixed: Any) -> None:
        self.apply = apply
        self.fixed = fixed

    def __call__(self, params: Any, inputs: Any) -> Any:
        return self.apply(self.fixed, params, inputs)

    def tree_flatten(self) -> tuple[tuple[Any], Any]:
        return (self.fixed,), self.apply

    @classmethod
    def tree_unflatten(cls, apply: Any, children: Any) -> ModelFunction:
        return cls(apply, children[0])


@jax.tree_util.register_pytree_node_class
class LossFunction:
    """``loss_fn(params, inputs, targets) = output_loss(model_fn(params, inputs), targets)``."""

    def __init__(self, model_fn: Callable[[Any, Any], Any], output_loss: OutputLoss) -> None:
        self.model_fn = model_fn
        self.output_loss = output_loss

    def __call__(self, params: Any, inputs: Any, targets: Any) -> jax.Array:
        return self.output_loss(self.model_fn(params, inputs), targets)

    def tree_flatten(self) -> tuple[tuple[Any, Any], None]:
        return (self.model_fn, self.output_loss), None

    @classmethod
    def tree_unflatten(cls, _: Any, children: Any) -> LossFunction:
        return cls(*children)


# ---- Flax NNX ---------------------------------------------------------------------------
def _nnx_apply(fixed: Any, params: Any, inputs: Any) -> Any:
    from flax import nnx

    graphdef, rest, key = fixed
    # copy=True: a fresh module inside every trace; BatchNorm in train mode writes its running
    # statistics (and dropout its RNG count) into that copy only, never into ``rest``.
    model = nnx.merge(graphdef, params, rest, copy=True)
    if key is not None:
        nnx.reseed(model, dropout=key)
    return model(inputs)


def _active_dropout(model: Any) -> list[str]:
    from flax import nnx

    return [
        ".".join(map(str, path)) or "<model>"
        for path, module in nnx.iter_modules(model)
        if isinstance(module, nnx.Dropout) and not module.deterministic and module.rate > 0
    ]


def nnx_model(model: Any, *, key: jax.Array | None = None, wrt: Any = None) -> tuple[ModelFunction, Any]:
    """A Flax NNX module as ``(model_fn, params)``: ``params`` its ``nnx.Param`` state,
    ``model_fn(params, inputs)`` the module called on ``inputs`` with the rest held fixed.

    The module runs in the mode it is in: after ``model.eval()``, BatchNorm uses its running
    statistics and dropout is off; after ``model.train()``, BatchNorm uses the statistics of
    each batch (the running ones are never updated: every call merges a copy) and dropout
    needs ``key``.

    Parameters
    ----------
    model
        An ``nnx.Module``; it is not modified.
    key
        The dropout key, required when a ``nnx.Dropout`` is active (train mode, rate > 0):
        every evaluation reseeds the dropout streams with it, so the masks are the same at
        every product (one deterministic matrix: the curvature with those masks fixed).
        An active dropout without a key is refused: the operator would be random.
    wrt
        The NNX filter of the trainable variables (default ``nnx.Param``).

    Returns
    -------
    (model_fn, params)
        ``params`` an ``nnx.State`` of the trainable variables (what ``unflatten`` returns).
    """
    from flax import nnx

    if not isinstance(model, nnx.Module):
        raise TypeError(f"model must be a flax.nnx.Module, got {type(model).__name__}")
    active = _active_dropout(model)
    if active and key is None:
        raise ValueError(
            f"dropout is active ({', '.join(active[:3])}: train mode, rate > 0), so the operator would be random; "
            "pass key=jax.random.key(0) to fix the masks, or call model.eval() first"
        )
    graphdef, params, rest = nnx.split(model, nnx.Param if wrt is None else wrt, ...)
    return ModelFunction(_nnx_apply, (graphdef, rest, key)), params


def nnx_loss(
    model: Any, output_loss: OutputLoss, *, key: jax.Array | None = None, wrt: Any = None
) -> tuple[LossFunction, Any]:
    """``(loss_fn, params)`` of a Flax NNX module: ``loss_fn(params, inputs, targets) =
    output_loss(model(inputs), targets)`` with the model of :func:`nnx_model` (same
    arguments)."""
    model_fn, params = nnx_model(model, key=key, wrt=wrt)
    return LossFunction(model_fn, output_loss), params


# ---- Flax linen -------------------------------------------------------------------------
def _linen_apply(fixed: Any, params: Any, inputs: Any) -> Any:
    module, state, rngs, mutable, kwargs = fixed
    out = module.apply({"params": params, **state}, inputs, rngs=rngs, mutable=mutable, **dict(kwargs))
    # With ``mutable`` apply also returns the updated collections: dropped, never written back.
    return out[0] if mutable else out


def linen_model(
    model: Any,
    variables: Mapping[str, Any],
    *,
    mutable: bool | str | Sequence[str] = False,
    rngs: Mapping[str, jax.Array] | None = None,
    **apply_kwargs: Any,
) -> tuple[ModelFunction, Any]:
    """A Flax linen module and its variables as ``(model_fn, params)``: ``params =
    variables["params"]`` and ``model_fn(params, inputs) = model.apply({"params": params,
    **other collections}, inputs, **apply_kwargs)``.

    Train mode: pass the module's own flag (``train=True``, say, in ``apply_kwargs``) and
    ``mutable=["batch_stats"]``: BatchNorm then uses each batch's statistics, and the updated
    collections ``apply`` returns are dropped (the variables are never changed). Dropout:
    ``rngs={"dropout": key}``, the same key at every product (one deterministic matrix).

    Returns
    -------
    (model_fn, params)
        ``params`` is ``variables["params"]``.
    """
    if not isinstance(variables, Mapping) or "params" not in variables:
        raise TypeError("variables must be the mapping model.init returns, with a 'params' collection")
    state = {k: v for k, v in variables.items() if k != "params"}
    if isinstance(mutable, Sequence) and not isinstance(mutable, str):
        mutable = tuple(mutable)
    kwargs = tuple(sorted(apply_kwargs.items()))
    return ModelFunction(_linen_apply, (model, state, rngs, mutable, kwargs)), variables["params"]


def linen_loss(
    model: Any,
    variables: Mapping[str, Any],
    output_loss: OutputLoss,
    *,
    mutable: bool | str | Sequence[str] = False,
    rngs: Mapping[str, jax.Array] | None = None,
    **apply_kwargs: Any,
) -> tuple[LossFunction, Any]:
    """``(loss_fn, params)`` of a Flax linen module: :func:`linen_model` (same arguments)
    composed with ``output_loss``."""
    model_fn, params = linen_model(model, variables, mutable=mutable, rngs=rngs, **apply_kwargs)
    return LossFunction(model_fn, output_loss), params


# ---- Equinox ----------------------------------------------------------------------------
def _equinox_apply(fixed: Any, params: Any, inputs: Any) -> Any:
    import equinox as eqx

    static, state, key, axis_name = fixed
    model = eqx.combine(params, static)
    if state is not None:  # a fresh copy per call: Equinox refuses a state object used twice
        leaves, treedef = jax.tree_util.tree_flatten(state)
        state = jax.tree_util.tree_unflatten(treedef, leaves)
    n = jax.tree_util.tree_leaves(inputs)[0].shape[0]
    keys = None if key is None else jax.random.split(key, n)  # one key per sample, the same every product

    def one(x: Any, k: Any) -> Any:
        kw = {} if k is None else {"key": k}
        if state is None:
            return model(x, **kw)
        return model(x, state, **kw)[0]  # the updated state is dropped

    return jax.vmap(one, in_axes=(0, None if keys is None else 0), axis_name=axis_name)(inputs, keys)


def equinox_model(
    model: Any,
    *,
    state: Any = None,
    key: jax.Array | None = None,
    filter_spec: Callable[[Any], bool] | None = None,
    axis_name: str = "batch",
) -> tuple[ModelFunction, Any]:
    """An Equinox module as ``(model_fn, params)``: ``params, static = eqx.partition(model,
    eqx.is_inexact_array)`` and ``model_fn(params, inputs)`` the module mapped over the
    samples of ``inputs`` (``jax.vmap`` with ``axis_name``, as ``eqx.nn.BatchNorm`` expects).

    Parameters
    ----------
    model
        An ``eqx.Module`` acting on one sample. Its mode is its own: ``eqx.nn.inference_mode
        (model)`` for evaluation, the default for training.
    state
        The ``eqx.nn.State`` of a stateful model (``eqx.nn.make_with_state``): called as
        ``model(x, state)``; the updated state is dropped, so the state never changes.
        Training-mode ``eqx.nn.BatchNorm`` normalises as Equinox does: with ``mode="ema"``,
        by each batch's statistics on a fresh state, mixed with the running ones once the
        state has been updated.
    key
        For dropout in training mode: split into one key per sample, the same at every
        product (one deterministic matrix).
    filter_spec
        What is trainable (default ``eqx.is_inexact_array``).
    axis_name
        The ``vmap`` axis name (``eqx.nn.BatchNorm(axis_name=...)``).
    """
    import equinox as eqx

    if not isinstance(model, eqx.Module):
        raise TypeError(f"model must be an equinox.Module, got {type(model).__name__}")
    params, static = eqx.partition(model, eqx.is_inexact_array if filter_spec is None else filter_spec)
    return ModelFunction(_equinox_apply, (static, state, key, axis_name)), params


def equinox_loss(
    model: Any,
    output_loss: OutputLoss,
    *,
    state: Any = None,
    key: jax.Array | None = None,
    filter_spec: Callable[[Any], bool] | None = None,
    axis_name: str = "batch",
) -> tuple[LossFunction, Any]:
    """``(loss_fn, params)`` of an Equinox module: :func:`equinox_model` (same arguments)
    composed with ``output_loss``."""
    model_fn, params = equinox_model(model, state=state, key=key, filter_spec=filter_spec, axis_name=axis_name)
    return LossFunction(model_fn, output_loss), params
