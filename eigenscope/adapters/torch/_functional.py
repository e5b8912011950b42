"""The model and loss as pure functions of the selected parameters."""

from __future__ import annotations

import inspect
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import torch
from torch import nn
from torch.func import functional_call
from torch.nn.attention import SDPBackend, sdpa_kernel

from ._losses import loss_kind
from ._norms import batch_norm_routes, has_batch_norm
from ._outputs import logits, own_loss
from ._routing import rerouted
from ._state import call_buffers, dropout_settings, without_dropout


def _takes_use_cache(model: nn.Module) -> bool:
    """Whether ``model.forward`` has a ``use_cache`` parameter (Hugging Face models)."""
    try:
        return "use_cache" in inspect.signature(model.forward).parameters
    except (TypeError, ValueError):
        return False


class _Forward(nn.Module):
    """``forward(model, inputs)`` as a module, so that ``functional_call`` can replace the
    parameters of ``model`` (registered as ``m``) under a user's calling convention."""

    def __init__(self, model: nn.Module, forward: Callable[[nn.Module, Any], Any]) -> None:
        super().__init__()
        self.m = model
        self.fn = forward

    def forward(self, inputs: Any) -> Any:
        return self.fn(self.m, inputs)


def call_model(
    model: nn.Module,
    state: dict[str, Any],
    inputs: Any,
    *,
    forward: Callable[[nn.Module, Any], Any] | None = None,
    use_cache: bool | None = None,
) -> Any:
    """``model(inputs)`` with ``state`` replacing its parameters and buffers.

    Parameters
    ----------
    model
        The module to call; it is not modified.
    state
        ``name -> tensor`` for parameters and buffers (as ``named_parameters()`` and
        ``named_buffers()`` name them); those not given are the module's own
        (``torch.func.functional_call`` with ``strict=False``).
    inputs
        Passed as ``model(x)`` for a tensor, ``model(*x)`` for a tuple or list and
        ``model(**x)`` for a mapping; with ``forward``, as ``forward(model, x)``.
    forward
        ``forward(model, inputs) -> outputs``, any other calling convention (a model taking
        one dict, extra keyword arguments).
    use_cache
        ``False`` passes ``use_cache=False`` (unless the inputs set it) to a model whose
        ``forward`` takes it: no key-value cache, whose objects ``torch.func`` transforms
        cannot carry. ``None``: whenever the model takes it. Not used with ``forward``.

    Returns
    -------
    Any
        What ``model`` returns (a tensor, a tuple, a mapping, a ``ModelOutput``...).

    Attention runs unfused: with the "math" kernel of ``scaled_dot_product_attention`` and
    without the fused fast path of ``nn.MultiheadAttention``/``nn.TransformerEncoderLayer``
    in eval mode. The fused kernels have no second derivative and no forward-mode rule,
    which the curvature products need. BatchNorm runs as elementwise arithmetic (the same
    function, whose second derivative costs less: see ``_norms``). Cost: one forward pass.
    """
    no_cache = forward is None and use_cache is not True and _takes_use_cache(model)
    return _call(model, state, inputs, forward, no_cache, has_batch_norm(model))


def _call(
    model: nn.Module,
    state: dict[str, Any],
    inputs: Any,
    forward: Callable[[nn.Module, Any], Any] | None,
    no_cache: bool,
    batch_norm: bool,
) -> Any:
    """:func:`call_model` once its settings are known (``batch_norm``: the model has one)."""
    module, state, args, kwargs = _call_arguments(model, state, inputs, forward, no_cache)
    with unfused_attention(), rerouted(batch_norm_routes(batch_norm)):
        return functional_call(module, state, args, kwargs, strict=False)


def _call_arguments(
    model: nn.Module,
    state: dict[str, Any],
    inputs: Any,
    forward: Callable[[nn.Module, Any], Any] | None,
    no_cache: bool,
) -> tuple[nn.Module, dict[str, Any], tuple[Any, ...], dict[str, Any] | None]:
    """The module, state, positional and keyword arguments of :func:`call_model`'s call;
    ``no_cache`` adds ``use_cache=False`` unless the inputs set it."""
    if forward is not None:
        return _Forward(model, forward), {f"m.{k}": v for k, v in state.items()}, (inputs,), None
    if isinstance(inputs, Mapping):
        args, kwargs = (), dict(inputs)
    elif isinstance(inputs, (tuple, list)):
        args, kwargs = tuple(inputs), {}
    else:
        args, kwargs = (inputs,), {}
    if no_cache and "use_cache" not in kwargs:
        kwargs["use_cache"] = False
    return model, state, args, kwargs or None


@contextmanager
def unfused_attention() -> Iterator[None]:
    """Attention without fused kernels inside the block: the "math" kernel of
    ``scaled_dot_product_attention`` and no fast path of ``nn.MultiheadAttention``. The
    fused kernels have no second derivative and no forward-mode rule."""
    fastpath = torch.backends.mha.get_fastpath_enabled()
    torch.backends.mha.set_fastpath_enabled(False)
    try:
        with sdpa_kernel([SDPBackend.MATH]):
            yield
    finally:
        torch.backends.mha.set_fastpath_enabled(fastpath)


class FunctionalModel:
    """A model and its loss as pure functions of the selected parameters.

    ``outputs(θ, x)`` and ``loss(θ, x, y)`` for ``θ`` a list of tensors in :class:`ParamSpec`
    order (the order of ``names``); the other parameters enter detached (no gradient is
    formed for them) and the buffers as the model would use them without ever updating them
    (BatchNorm in train mode normalises with the batch statistics and leaves its running
    statistics alone). The model is never modified.

    Parameters
    ----------
    model
        The ``torch.nn.Module``.
    names
        The selected parameters' names (as :func:`select_params` returns them).
    loss_fn
        ``loss_fn(outputs, targets)`` -> the mean loss of a batch (see :func:`resolve_loss`);
        ``None``: the model's own loss (``outputs.loss``).
    forward
        ``forward(model, inputs) -> outputs`` (see :func:`call_model`), or ``None``.
    select
        ``raw outputs -> what the loss takes`` (see ``output=``); ``None``: the outputs as
        the model returns them; ``"auto"``: the logits for a named or torch loss
        (:func:`resolve_loss`), else the outputs as they are.
    dropout
        ``"off"``: every dropout module has probability 0 during the calls (restored after
        each); ``"on"``: as the model is.
    """

    def __init__(
        self,
        model: nn.Module,
        names: Sequence[str],
        loss_fn: Callable[..., torch.Tensor] | None,
        *,
        forward: Callable[[nn.Module, Any], Any] | None = None,
        select: Callable[[Any], Any] | str | None = "auto",
        dropout: str = "on",
    ) -> None:
        self.model = model
        self.names = tuple(names)
        self.loss_fn = loss_fn
        self.forward = forward
        if select == "auto":
            select = logits if loss_fn is not None and loss_kind(loss_fn) is not None else None
        self.select: Callable[[Any], Any] | None = select  # type: ignore[assignment]
        chosen = set(names)
        self._frozen = {k: p for k, p in model.named_parameters() if k not in chosen}
        self._buffers = call_buffers(model)
        self._quiet = dropout_settings(model) if dropout == "off" else []
        # Read once: inspecting the signature inside a compiled function would break its graph.
        self._no_cache = forward is None and _takes_use_cache(model)
        self._batch_norm = has_batch_norm(model)

    def _state(self, params: Sequence[torch.Tensor]) -> dict[str, Any]:
        state: dict[str, Any] = {k: p.detach() for k, p in self._frozen.items()}
        state.update(self._buffers())
        state.update(zip(self.names, params, strict=True))
        return state

    def raw_outputs(self, params: Sequence[torch.Tensor], inputs: Any) -> Any:
        """The model's outputs at parameters ``params``, as it returns them."""
        with without_dropout(self._quiet):
            return _call(self.model, self._state(params), inputs, self.forward, self._no_cache, self._batch_norm)

    def outputs(self, params: Sequence[torch.Tensor], inputs: Any) -> Any:
        """The outputs the loss takes (the selected tensor, see ``select``)."""
        raw = self.raw_outputs(params, inputs)
        return raw if self.select is None else self.select(raw)

    def loss(self, params: Sequence[torch.Tensor], inputs: Any, targets: Any) -> torch.Tensor:
        """The (mean) loss of one batch at parameters ``params``."""
        if self.loss_fn is None:
            return own_loss(self.raw_outputs(params, inputs))
        return self.loss_fn(self.outputs(params, inputs), targets)

    # ---- for torch.compile: the same calls, with the settings entered by the caller ----
    @contextmanager
    def calling(self) -> Iterator[None]:
        """The settings :meth:`raw_outputs` enters at every call (dropout off if asked,
        unfused attention), entered once around calls of the ``traced_*`` methods."""
        with without_dropout(self._quiet), unfused_attention():
            yield

    def traced_outputs(self, params: Sequence[torch.Tensor], inputs: Any) -> Any:
        """:meth:`outputs` without entering :meth:`calling`'s settings (which a compiled
        function cannot change while it runs): call it inside ``calling()``."""
        module, state, args, kwargs = _call_arguments(
            self.model, self._state(params), inputs, self.forward, self._no_cache
        )
        raw = functional_call(module, state, args, kwargs, strict=False)
        return raw if self.select is None else self.select(raw)

    def traced_loss(self, params: Sequence[torch.Tensor], inputs: Any, targets: Any) -> torch.Tensor:
        """:meth:`loss` without entering :meth:`calling`'s settings (see :meth:`traced_outputs`)."""
        if self.loss_fn is None:
            module, state, args, kwargs = _call_arguments(
                self.model, self._state(params), inputs, self.forward, self._no_cache
            )
            return own_loss(functional_call(module, state, args, kwargs, strict=False))
        return self.loss_fn(self.traced_outputs(params, inputs), targets)


def leaves(params: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    """Fresh autograd leaves sharing storage with ``params``: gradients with respect to them
    never reach the parameters' ``.grad``."""
    return [p.detach().requires_grad_(True) for p in params]


_FORWARD_AD_READY = False


def ensure_forward_ad() -> None:
    """Import torch's forward-AD decompositions once with warnings silenced: their first
    import scripts functions with the deprecated ``torch.jit.script`` and would otherwise
    emit a ``DeprecationWarning`` from inside the first ``jvp`` (an error under
    ``-W error``)."""
    global _FORWARD_AD_READY
    if _FORWARD_AD_READY:
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import torch._decomp.decompositions_for_jvp  # noqa: F401
    _FORWARD_AD_READY = True


def grad(
    outputs: Sequence[torch.Tensor],
    inputs: Sequence[torch.Tensor],
    grad_outputs: Sequence[torch.Tensor],
    *,
    retain_graph: bool,
    create_graph: bool = False,
    batched: bool = False,
) -> list[torch.Tensor]:
    """``torch.autograd.grad`` that skips outputs without a graph and fills zeros for
    inputs the outputs do not depend on (unused parameters, purely linear layers in a
    second-order pass). ``batched=True`` maps over the leading dimension of
    ``grad_outputs`` with ``is_grads_batched`` (vmap inside autograd)."""
    pairs = [(o, g) for o, g in zip(outputs, grad_outputs, strict=True) if o.requires_grad]
    if not pairs:
        shape = (grad_outputs[0].shape[0],) if batched else ()
        return [torch.zeros(*shape, *x.shape, dtype=x.dtype, device=x.device) for x in inputs]
    outs, gos = zip(*pairs, strict=True)
    with warnings.catch_warnings():
        # vmap falls back to a loop for ops without a batching rule and says so; the result is right.
        warnings.filterwarnings("ignore", message=".*performance drop.*")
        result = torch.autograd.grad(
            outs,
            list(inputs),
            grad_outputs=list(gos),
            retain_graph=retain_graph,
            create_graph=create_graph,
            allow_unused=True,
            is_grads_batched=batched,
        )
    shape = (grad_outputs[0].shape[0],) if batched else ()
    return [
        torch.zeros(*shape, *x.shape, dtype=x.dtype, device=x.device) if r is None else r
        for r, x in zip(result, inputs, strict=True)
    ]
