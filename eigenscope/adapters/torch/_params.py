"""Which parameters an operator differentiates, and the flat-vector <-> tensor-list maps."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

ParamsArg = (
    None
    | str
    | nn.Module
    | torch.Tensor
    | Callable[[str, torch.Tensor], bool]
    | Iterable[str | nn.Module | torch.Tensor]
)
"""What ``params=`` accepts: ``None`` (every parameter with ``requires_grad``), a
parameter or module name, a module, a parameter tensor, a predicate
``(name, parameter) -> bool``, or a list mixing names, modules and tensors."""


@dataclass(frozen=True)
class ParamSpec:
    """The selected parameters and their place in the flat vector.

    The flat vector concatenates the selected parameters, each flattened in row-major
    order, in the order of ``model.named_parameters()`` (tied weights appear once). Built
    by :func:`make_spec`.

    Attributes
    ----------
    names
        The parameters' names, in flat-vector order.
    shapes
        Their shapes.
    offsets
        ``len(names) + 1`` boundaries: parameter ``i`` is ``x[offsets[i]:offsets[i + 1]]``.
    dtype, device
        What every selected parameter shares (and so the flat vectors).
    """

    names: tuple[str, ...]
    shapes: tuple[torch.Size, ...]
    offsets: tuple[int, ...]  # len(names) + 1 boundaries
    dtype: torch.dtype
    device: torch.device

    def block_indices(self, blocks: Iterable[Iterable[str]]) -> list[torch.Tensor]:
        """For each block (parameter names), the positions of its entries in the flat vector."""
        slices = self.slices
        return [
            torch.cat([torch.arange(slices[p].start, slices[p].stop, device=self.device) for p in names])
            for names in blocks
        ]

    @property
    def num_params(self) -> int:
        """Length ``n`` of the flat vector."""
        return self.offsets[-1]

    @property
    def slices(self) -> dict[str, slice]:
        """``name -> slice`` of the flat vector."""
        return {name: slice(a, b) for name, a, b in zip(self.names, self.offsets[:-1], self.offsets[1:], strict=True)}

    def split_block(self, x: torch.Tensor) -> list[torch.Tensor]:
        """``(n, b)`` -> one ``(b, *shape)`` tensor per parameter."""
        b = x.shape[1]
        bounds = zip(self.offsets[:-1], self.offsets[1:], self.shapes, strict=True)
        return [x[a:e].T.reshape(b, *shape) for a, e, shape in bounds]

    def join_block(self, parts: Sequence[torch.Tensor]) -> torch.Tensor:
        """One ``(b, *shape)`` tensor per parameter -> ``(n, b)`` (contiguous)."""
        return torch.cat([p.reshape(p.shape[0], -1).T for p in parts], dim=0)

    def join(self, parts: Sequence[torch.Tensor]) -> torch.Tensor:
        """One tensor per parameter -> the flat ``(n,)`` vector."""
        return torch.cat([p.reshape(-1) for p in parts])

    def split(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The flat ``(n,)`` vector -> one tensor (a view) per parameter."""
        bounds = zip(self.offsets[:-1], self.offsets[1:], self.shapes, strict=True)
        return [x[a:e].view(shape) for a, e, shape in bounds]


def _owner(name: str) -> str:
    """The module path owning parameter ``name`` (``"" `` for the root module)."""
    return name.rpartition(".")[0]


def select_params(model: nn.Module, params: ParamsArg) -> tuple[list[str], list[torch.Tensor]]:
    """Resolve ``params=`` into parameter names and tensors, in ``named_parameters`` order.

    Parameters
    ----------
    model
        The ``torch.nn.Module``.
    params
        ``None`` (every parameter with ``requires_grad``), a parameter or module name, a
        module, a parameter tensor, a predicate ``(name, parameter) -> bool``, or a list
        mixing names, modules and tensors (see :data:`ParamsArg`). A name of a parameter or
        module whose weight is tied to another one (GPT-2's ``lm_head`` and its token
        embedding) selects the tied tensor, counted once.

    Returns
    -------
    names : list[str]
        The selected parameters' names (tied weights once, under their first name).
    tensors : list[torch.Tensor]
        The parameter tensors themselves (not copies), all of one floating-point dtype and
        one device.

    Raises
    ------
    ValueError
        For an unknown name, a tensor or module that is not part of ``model``, a
        parameter with ``requires_grad=False``, or an empty selection.
    TypeError
        For an entry of an unsupported type.
    """
    named = list(model.named_parameters())
    by_id = {id(p): name for name, p in named}
    modules = dict(model.named_modules())
    chosen: set[str] = set()

    if params is None:
        chosen = {name for name, p in named if p.requires_grad}
        if not chosen:
            raise ValueError("the model has no parameter with requires_grad=True")
    elif callable(params) and not isinstance(params, nn.Module):
        chosen = {name for name, p in named if params(name, p)}
    else:
        items = [params] if isinstance(params, (str, nn.Module, torch.Tensor)) else list(params)
        for item in items:
            chosen |= _resolve_item(item, named, by_id, modules)

    if not chosen:
        raise ValueError("params= selects no parameter of the model")
    frozen = sorted(name for name, p in named if name in chosen and not p.requires_grad)
    if frozen:
        raise ValueError(
            f"parameters {frozen} have requires_grad=False; set requires_grad=True on them or leave them "
            "out of params= (eigenscope never changes requires_grad on your model)"
        )
    names = [name for name, _ in named if name in chosen]
    tensors = [p for name, p in named if name in chosen]
    dtypes = {p.dtype for p in tensors}
    devices = {p.device for p in tensors}
    if len(dtypes) > 1 or len(devices) > 1:
        raise ValueError(
            f"the selected parameters must share one dtype and device, got dtypes {sorted(map(str, dtypes))} "
            f"and devices {sorted(map(str, devices))}"
        )
    if not tensors[0].is_floating_point():
        raise TypeError(f"parameters must be floating point, got {tensors[0].dtype}")
    return names, tensors


def _resolve_item(
    item: Any, named: list[tuple[str, torch.Tensor]], by_id: dict[int, str], modules: dict[str, nn.Module]
) -> set[str]:
    if isinstance(item, str):
        if any(name == item for name, _ in named):
            return {item}
        root = next(iter(modules.values()))
        aliases = dict(root.named_parameters(remove_duplicate=False))
        if item in aliases:  # a tied weight under its second name: the canonical name counts once
            return {by_id[id(aliases[item])]}
        if item in modules:
            # Through the module's own tensors: a weight tied elsewhere (GPT-2's lm_head and the
            # token embedding) resolves to its canonical name and counts once.
            found = {by_id[id(p)] for p in modules[item].parameters() if id(p) in by_id}
            if not found:
                raise ValueError(f"module {item!r} has no parameters")
            return found
        raise ValueError(f"{item!r} is neither a parameter nor a module name of the model")
    if isinstance(item, nn.Module):
        found = {by_id[id(p)] for p in item.parameters() if id(p) in by_id}
        if not found:
            raise ValueError(f"module {type(item).__name__} has no parameters of the model")
        return found
    if isinstance(item, torch.Tensor):
        if id(item) not in by_id:
            raise ValueError(f"a tensor of shape {tuple(item.shape)} in params= is not a parameter of the model")
        return {by_id[id(item)]}
    raise TypeError(f"params= entries must be names, modules or parameter tensors, got {type(item).__name__}")


def make_spec(names: Sequence[str], tensors: Sequence[torch.Tensor]) -> ParamSpec:
    """The :class:`ParamSpec` of the selected parameters: where each lies in the flat vector.

    Parameters
    ----------
    names, tensors
        The selected parameters, as :func:`select_params` returns them (in that order,
        which becomes the flat-vector order).

    Returns
    -------
    ParamSpec
        Names, shapes, offsets, and the dtype and device of ``tensors[0]``.
    """
    offsets = [0]
    for p in tensors:
        offsets.append(offsets[-1] + p.numel())
    return ParamSpec(
        names=tuple(names),
        shapes=tuple(p.shape for p in tensors),
        offsets=tuple(offsets),
        dtype=tensors[0].dtype,
        device=tensors[0].device,
    )


def group_by_module(names: Sequence[str]) -> dict[str, list[str]]:
    """Group parameter names by the module that owns them (``"conv1.weight"`` and
    ``"conv1.bias"`` -> ``"conv1"``), in order of first appearance; parameters of the
    root module form the group ``""``."""
    groups: dict[str, list[str]] = {}
    for name in names:
        groups.setdefault(_owner(name), []).append(name)
    return groups
