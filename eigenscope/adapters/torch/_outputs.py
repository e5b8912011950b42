"""Outputs as models return them: a tensor, a ``ModelOutput``, a mapping or a tuple, reduced
to the tensor a loss compares with the targets (the logits), or to the model's own loss."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import torch

OutputArg = None | str | int | Callable[[Any], Any]
"""What ``output=`` accepts: ``None`` (the logits, see :func:`logits`), a key or attribute
name (``"logits"``, ``"start_logits"``), a position in a tuple output, or a callable
``outputs -> tensor``."""


def _fields(outputs: Any) -> str:
    if isinstance(outputs, Mapping):
        return f"keys {list(outputs.keys())}"
    if isinstance(outputs, (tuple, list)):
        return f"{len(outputs)} elements"
    return "no fields"


def logits(outputs: Any) -> torch.Tensor:
    """The logits of a model's outputs: the tensor itself, the ``logits`` entry (or
    attribute) of a ``ModelOutput`` or mapping, the only tensor of a mapping, or the first
    tensor of at least one dimension of a tuple (``return_dict=False`` puts a 0-d loss first).

    Raises
    ------
    TypeError
        None of those applies: pass ``output=`` to choose.
    """
    if isinstance(outputs, torch.Tensor):
        return outputs
    if isinstance(outputs, Mapping):
        if isinstance(outputs.get("logits"), torch.Tensor):
            return outputs["logits"]
        tensors = [v for v in outputs.values() if isinstance(v, torch.Tensor) and v.ndim > 0]
        if len(tensors) == 1:
            return tensors[0]
    elif isinstance(outputs, (tuple, list)):
        for value in outputs:
            if isinstance(value, torch.Tensor) and value.ndim > 0:
                return value
    elif isinstance(getattr(outputs, "logits", None), torch.Tensor):
        return outputs.logits
    raise TypeError(
        f"the model returns a {type(outputs).__name__} ({_fields(outputs)}) without one 'logits' tensor; choose "
        "the tensor the loss applies to with output='key', output=index or output=(outputs -> tensor)"
    )


def selector(output: OutputArg) -> Callable[[Any], Any]:
    """``outputs -> tensor`` for ``output=`` (see :data:`OutputArg`)."""
    if output is None:
        return logits
    if callable(output):
        return output
    if isinstance(output, str):

        def by_name(outputs: Any) -> Any:
            if isinstance(outputs, Mapping) and output in outputs:
                return outputs[output]
            if hasattr(outputs, output):
                return getattr(outputs, output)
            raise TypeError(f"output={output!r}: the model's {type(outputs).__name__} has no such entry")

        return by_name
    if isinstance(output, int) and not isinstance(output, bool):

        def by_index(outputs: Any) -> Any:
            if not isinstance(outputs, (tuple, list)) or not -len(outputs) <= output < len(outputs):
                raise TypeError(f"output={output}: the model's {type(outputs).__name__} has no element {output}")
            return outputs[output]

        return by_index
    raise TypeError(f"output= must be None, a key, an index or a callable, got {type(output).__name__}")


def own_loss(outputs: Any) -> torch.Tensor:
    """The loss a model computed itself (``loss_fn=None``): ``outputs.loss``, the ``"loss"``
    entry of a mapping, or a 0-d tensor first in a tuple.

    Raises
    ------
    TypeError
        The outputs carry no loss (the labels did not reach the model).
    """
    value = outputs.get("loss") if isinstance(outputs, Mapping) else getattr(outputs, "loss", None)
    if value is None and isinstance(outputs, (tuple, list)) and outputs:
        value = outputs[0] if isinstance(outputs[0], torch.Tensor) and outputs[0].ndim == 0 else None
    if value is None and isinstance(outputs, torch.Tensor) and outputs.ndim == 0:
        value = outputs
    if not isinstance(value, torch.Tensor):
        raise TypeError(
            f"loss_fn=None uses the model's own loss, but its {type(outputs).__name__} carries none "
            f"({_fields(outputs)}): the labels must reach the model (a batch mapping with 'labels', or "
            "targets='...' naming them), or pass a loss_fn such as 'cross_entropy' or 'causal_lm'"
        )
    return value
