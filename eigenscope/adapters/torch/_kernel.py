"""What every curvature kernel provides to :class:`CurvatureOperator`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

ProductFn = Callable[[list[torch.Tensor], Any, Any, list[torch.Tensor]], tuple[list[torch.Tensor], torch.Tensor]]


class Kernel:
    """One kind of curvature, as products with one batch at a time.

    ``build`` runs the forward pass and whatever first-order pass the kind needs for one
    batch and returns a state (graphs included) that ``apply`` may use for any number of
    vectors; ``apply`` returns the batch's operator (for the batch's *mean* loss) applied
    to a block. The operator weights batch ``b`` by ``n_b / N``.

    Subclasses implement ``build``, ``_loop`` (one vector at a time) and ``_batched`` (all
    vectors in one ``vmap``-ed pass, used when ``vectorize`` is on).
    """

    kind: str = ""
    # Whether build() leaves state that apply() reuses: only then is a cache worth keeping.
    cacheable: bool = True
    # Whether that state holds autograd graphs (else only its own tensors cost memory).
    keeps_graph: bool = True

    def __init__(self, *, vectorize: bool = False) -> None:
        self.vectorize = vectorize

    def build(self, params: list[torch.Tensor], inputs: Any, targets: Any, index: int) -> Any:
        """Forward (+ first-order) pass of batch ``index`` at parameters ``params``."""
        raise NotImplementedError

    def functional(self) -> ProductFn | None:
        """The batch product as one pure function ``(θ, inputs, targets, v) -> (M_b v, L_b)``
        (``v`` and ``M_b v`` one tensor per parameter, one vector; ``L_b`` the batch's loss
        for the finiteness check), built from ``torch.func`` transforms and the model's
        ``traced_*`` calls so that ``torch.compile`` can capture it whole; ``None`` when
        the kind has none worth compiling. Called inside ``FunctionalModel.calling()``."""
        return None

    def apply(self, state: Any, vs: list[torch.Tensor], *, keep: bool) -> list[torch.Tensor]:
        """The batch operator times a block: ``vs`` holds one ``(b, *shape)`` tensor per
        parameter, so does the result. ``keep=False`` lets the last pass free the graphs.

        With ``vectorize`` on, a ``vmap`` that fails (an op of the model without a batching
        rule that cannot fall back, or memory exhausted by ``b`` copies of the activations)
        turns ``vectorize`` off for good and the block runs as a loop; the batched attempt
        retains the graph so that the loop can still use it.
        """
        if self.vectorize and vs[0].shape[0] > 1:
            try:
                return self._batched(state, vs)
            except RuntimeError:
                self.vectorize = False
        return self._loop(state, vs, keep)

    def _loop(self, state: Any, vs: list[torch.Tensor], keep: bool) -> list[torch.Tensor]:
        raise NotImplementedError

    def _batched(self, state: Any, vs: list[torch.Tensor]) -> list[torch.Tensor]:
        raise NotImplementedError


def check_loss(loss: Any, index: int) -> None:
    """Raise ``FloatingPointError`` naming the batch if its loss is NaN or Inf."""
    if not bool(torch.isfinite(loss).all()):
        raise FloatingPointError(f"the loss of batch {index} is {float(loss.detach().reshape(-1)[0])}")


def stack_columns(columns: list[list[torch.Tensor]]) -> list[torch.Tensor]:
    """``b`` results, each one tensor per parameter -> one ``(b, *shape)`` tensor per parameter
    (views for ``b = 1``: a copy of a gradient-sized result is one pass over n numbers)."""
    if len(columns) == 1:
        return [part[None] for part in columns[0]]
    return [torch.stack(parts) for parts in zip(*columns, strict=True)]
