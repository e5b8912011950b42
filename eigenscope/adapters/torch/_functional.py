"""The model and loss as pure functions of the selected parameters."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn
from torch.func import functional_call
from torch.nn.attention import SDPBackend, sdpa_kernel

from ._state import call_buffers


def call_model(model: nn.Module, state: dict[str, Any], inputs: Any) -> Any:
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
        ``model(**x)`` for a dict.

    Returns
    -------
    Any
        What ``model`` returns (a tensor, a tuple, a mapping, a ``ModelOutput``...).

    Attention runs unfused: with the "math" kernel of ``scaled_dot_product_attention`` and
    without the fused fast path of ``nn.MultiheadAttention``/``nn.TransformerEncoderLayer``
    in eval mode. The fused kernels have no second derivative and no forward-mode rule,
    which the curvature products need.
    """
    if isinstance(inputs, dict):
        args, kwargs = (), inputs
    elif isinstance(inputs, (tuple, list)):
        args, kwargs = tuple(inputs), None
    else:
        args, kwargs = (inputs,), None
    fastpath = torch.backends.mha.get_fastpath_enabled()
    torch.backends.mha.set_fastpath_enabled(False)
    try:
        with sdpa_kernel([SDPBackend.MATH]):
            return functional_call(model, state, args, kwargs, strict=False)
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
        ``loss_fn(outputs, targets)`` -> the mean loss of a batch (see :func:`resolve_loss`).
    """

    def __init__(self, model: nn.Module, names: Sequence[str], loss_fn: Callable[..., torch.Tensor]) -> None:
        self.model = model
        self.names = tuple(names)
        self.loss_fn = loss_fn
        chosen = set(names)
        self._frozen = {k: p for k, p in model.named_parameters() if k not in chosen}
        self._buffers = call_buffers(model)

    def _state(self, params: Sequence[torch.Tensor]) -> dict[str, Any]:
        state: dict[str, Any] = {k: p.detach() for k, p in self._frozen.items()}
        state.update(self._buffers())
        state.update(zip(self.names, params, strict=True))
        return state

    def outputs(self, params: Sequence[torch.Tensor], inputs: Any) -> Any:
        """The model's outputs at parameters ``params``."""
        return call_model(self.model, self._state(params), inputs)

    def loss(self, params: Sequence[torch.Tensor], inputs: Any, targets: Any) -> torch.Tensor:
        """The (mean) loss of one batch at parameters ``params``."""
        return self.loss_fn(self.outputs(params, inputs), targets)


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
