"""The model an operator was built for: refuse products once its parameter tensors were
replaced, cast or moved."""

from __future__ import annotations

import torch
from torch import nn


def _layout(tensors: tuple[torch.Tensor, ...]) -> tuple[tuple[torch.dtype, torch.device], ...]:
    """The dtype and device of each tensor (attributes only, no data is read)."""
    return tuple((t.dtype, t.device) for t in tensors)


class ModelGuard:
    """The parameter tensors of ``model`` as they were when the operator was built.

    The batches, the vectors and the cached graphs have the build-time dtype and device,
    and the products differentiate the tensors held then: a cast model fails deep inside
    torch, a replaced parameter silently gives the matrix of the old one. :meth:`check`
    raises ``RuntimeError`` instead. Cost per call: one walk over the modules and a dtype and
    device read per parameter; no value is read.
    """

    def __init__(self, model: nn.Module) -> None:
        self.model = model
        self.held = tuple(model.parameters())
        self.held_ids = frozenset(map(id, self.held))  # ids stay unique: the tensors are held
        self.held_layout = _layout(self.held)

    def check(self, kind: str) -> None:
        """Raise ``RuntimeError`` if the model's parameter tensors were replaced, cast or
        moved since the operator of ``kind`` was built."""
        now = tuple(self.model.parameters())
        if len(now) != len(self.held) or frozenset(map(id, now)) != self.held_ids:
            raise RuntimeError(_changed(kind, self._replaced(now)))
        if _layout(self.held) != self.held_layout:
            raise RuntimeError(_changed(kind, self._recast()))

    def _replaced(self, now: tuple[torch.Tensor, ...]) -> str:
        name = next((k for k, p in self.model.named_parameters() if id(p) not in self.held_ids), None)
        if name is None:
            return f"it has {len(now)} parameter tensors, {len(self.held)} when the operator was built"
        return (
            f"parameter {name!r} is a new tensor (a module or parameter reassigned, load_state_dict(..., "
            "assign=True), or a .to(...) that made new parameters); the products would go on differentiating "
            "the old one"
        )

    def _recast(self) -> str:
        then = dict(zip(map(id, self.held), self.held_layout, strict=True))
        name, p = next((k, p) for k, p in self.model.named_parameters() if (p.dtype, p.device) != then[id(p)])
        dtype, device = then[id(p)]
        return (
            f"parameter {name!r} is now {p.dtype} on {p.device}, it was {dtype} on {device} (model.double(), "
            ".float(), .half() or .to(...) after building the operator, whose data, vectors and results keep the "
            "old dtype and device)"
        )


def _changed(kind: str, what: str) -> str:
    return (
        f"the model changed since this {kind} operator was built: {what}. Build the operator again on "
        f"the model as it is now: est.{kind}(model, loss_fn, data, ...)"
    )
