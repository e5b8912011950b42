"""Keeping the model as it was: stochastic layers, BatchNorm statistics, determinism.

Products never touch the model's own tensors: they call it through
``torch.func.functional_call`` with detached aliases of its parameters and with
:func:`call_buffers` in place of its buffers, so ``.grad``, ``requires_grad``,
the running statistics and the train/eval mode stay exactly as they were.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch
from torch import nn

# Modules that draw random numbers in train mode.
_DROPOUT = (nn.modules.dropout._DropoutNd,)


def stochastic_modules(model: nn.Module) -> list[str]:
    """Names (with their type) of the modules that are random in the model's current mode:
    dropout layers with ``p > 0`` in train mode, attention with ``dropout > 0`` in train
    mode, ``RReLU`` in train mode."""
    found = []
    for name, m in model.named_modules():
        if not m.training:
            continue
        random = (
            (isinstance(m, _DROPOUT) and m.p > 0)
            or (isinstance(m, nn.MultiheadAttention) and m.dropout > 0)
            or (isinstance(m, nn.RReLU) and m.lower != m.upper)
        )
        if random:
            found.append(f"{name or '<root>'} ({type(m).__name__})")
    return found


def check_stochastic(model: nn.Module, allow_stochastic: bool, dropout: str = "on") -> None:
    """Refuse a model with active random layers unless ``allow_stochastic``; with
    ``dropout="off"`` the dropout layers (and attention dropout) are not random."""
    if dropout not in ("on", "off"):
        raise ValueError(f"dropout must be 'on' (the model as it is) or 'off', got {dropout!r}")
    if allow_stochastic:
        return
    found = stochastic_modules(model)
    if dropout == "off":
        quiet = {id(m) for m, _, _ in dropout_settings(model)}
        named = {f"{name or '<root>'} ({type(m).__name__})": m for name, m in model.named_modules()}
        found = [f for f in found if id(named[f]) not in quiet]
    if found:
        raise ValueError(
            f"the model is stochastic in its current mode: {', '.join(found)}. The spectrum of a random "
            "operator is meaningless to Lanczos; pass dropout='off' (dropout as identity, everything else in "
            "the model's mode), call model.eval(), or pass allow_stochastic=True if you really want it"
        )


def dropout_settings(model: nn.Module) -> list[tuple[nn.Module, str, float]]:
    """``(module, attribute, probability)`` of every dropout of the model with a nonzero
    probability: the ``p`` of dropout modules, the ``dropout`` of ``nn.MultiheadAttention``,
    and any float attribute of a module whose name says dropout (Hugging Face attention
    passes ``self.attention_dropout`` or its dropout module's ``p`` to a functional kernel)."""
    found = []
    for m in model.modules():
        if isinstance(m, _DROPOUT) and m.p > 0:
            found.append((m, "p", m.p))
            continue
        for attr, value in vars(m).items():
            if "dropout" in attr.lower() and isinstance(value, float) and value > 0:
                found.append((m, attr, value))
    return found


@contextlib.contextmanager
def without_dropout(settings: list[tuple[nn.Module, str, float]]) -> Iterator[None]:
    """Dropout probabilities 0 inside the block (dropout is then exactly the identity, in
    either mode), restored after it; nothing else of the model changes."""
    if not settings:
        yield
        return
    for m, attr, _ in settings:
        setattr(m, attr, 0.0)
    try:
        yield
    finally:
        for m, attr, value in settings:
            setattr(m, attr, value)


def _updates_running_stats(m: nn.Module) -> bool:
    return isinstance(m, nn.modules.batchnorm._NormBase) and m.training and m.track_running_stats


def call_buffers(model: nn.Module) -> Callable[[], dict[str, torch.Tensor | None]]:
    """A function returning the buffers to call the model with, one fresh dict per call.

    - Norm layers in train mode (BatchNorm, InstanceNorm with running statistics) get
      ``None`` for ``running_mean``, ``running_var`` and ``num_batches_tracked``: they then
      normalise with the batch statistics, exactly as in train mode, and update nothing.
    - Norm layers in eval mode read their running statistics, which they never write:
      the model's own tensors are passed, without a copy.
    - Any other buffer is cloned for each call, so a module that writes a buffer during
      its forward pass cannot change the model.
    """
    live: dict[str, torch.Tensor] = {}
    cloned: dict[str, torch.Tensor] = {}
    dropped: list[str] = []
    for mod_name, m in model.named_modules():
        prefix = f"{mod_name}." if mod_name else ""
        for b_name, buf in m.named_buffers(recurse=False):
            full = prefix + b_name
            if buf is None:
                continue
            if isinstance(m, nn.modules.batchnorm._NormBase) and b_name in (
                "running_mean",
                "running_var",
                "num_batches_tracked",
            ):
                if _updates_running_stats(m):
                    dropped.append(full)
                else:
                    live[full] = buf
            else:
                cloned[full] = buf

    def buffers() -> dict[str, torch.Tensor | None]:
        out: dict[str, torch.Tensor | None] = dict(live)
        out.update({name: buf.clone() for name, buf in cloned.items()})
        out.update(dict.fromkeys(dropped))
        return out

    return buffers


@dataclass(frozen=True)
class ModelState:
    """A snapshot of everything a product must leave untouched; compare two with ``==``
    or :meth:`differences`. Costs one copy of the parameters and buffers."""

    params: dict[str, torch.Tensor]
    grads: dict[str, torch.Tensor | None]
    requires_grad: dict[str, bool]
    buffers: dict[str, torch.Tensor]
    training: dict[str, bool]

    @classmethod
    def capture(cls, model: nn.Module) -> ModelState:
        """Copy the state of ``model`` now."""
        named = list(model.named_parameters())
        return cls(
            params={k: p.detach().clone() for k, p in named},
            grads={k: None if p.grad is None else p.grad.detach().clone() for k, p in named},
            requires_grad={k: p.requires_grad for k, p in named},
            buffers={k: b.detach().clone() for k, b in model.named_buffers()},
            training={k: m.training for k, m in model.named_modules()},
        )

    def differences(self, other: ModelState) -> list[str]:
        """What differs between two snapshots (empty when identical, bit for bit)."""
        out = []
        for field in ("params", "buffers", "grads"):
            a, b = getattr(self, field), getattr(other, field)
            if a.keys() != b.keys():
                out.append(f"{field}: names differ")
                continue
            for k in a:
                x, y = a[k], b[k]
                if (x is None) != (y is None) or (x is not None and not torch.equal(x, y)):
                    out.append(f"{field}[{k}]")
        for field in ("requires_grad", "training"):
            a, b = getattr(self, field), getattr(other, field)
            out.extend(f"{field}[{k}]" for k in a.keys() | b.keys() if a.get(k) != b.get(k))
        return out

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ModelState) and not self.differences(other)

    __hash__ = None  # type: ignore[assignment]
