"""What every curvature kernel provides to :class:`CurvatureOperator`."""

from __future__ import annotations

from typing import Any, Protocol

import torch


class Kernel(Protocol):
    """One kind of curvature, as products with one batch at a time.

    ``build`` runs the forward pass and whatever first-order pass the kind needs for one
    batch and returns a state (graphs included) that ``apply`` may use for any number of
    vectors; ``apply`` returns the batch's operator (for the batch's *mean* loss) applied
    to a block. The operator weights batch ``b`` by ``n_b / N``.
    """

    kind: str
    # Whether build() leaves graphs that apply() reuses: only then is a cache worth keeping.
    cacheable: bool

    def build(self, params: list[torch.Tensor], inputs: Any, targets: Any, index: int) -> Any:
        """Forward (+ first-order) pass of batch ``index`` at parameters ``params``."""
        ...

    def apply(self, state: Any, vs: list[torch.Tensor], *, keep: bool) -> list[torch.Tensor]:
        """The batch operator times a block: ``vs`` holds one ``(b, *shape)`` tensor per
        parameter, so does the result. ``keep=False`` lets the last pass free the graphs."""
        ...


def check_loss(loss: Any, index: int) -> None:
    """Raise ``FloatingPointError`` naming the batch if its loss is NaN or Inf."""
    if not bool(torch.isfinite(loss).all()):
        raise FloatingPointError(f"the loss of batch {index} is {float(loss.detach().reshape(-1)[0])}")


def stack_columns(columns: list[list[torch.Tensor]]) -> list[torch.Tensor]:
    """``b`` results, each one tensor per parameter -> one ``(b, *shape)`` tensor per parameter."""
    return [torch.stack(parts) for parts in zip(*columns)]
