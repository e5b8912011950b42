"""Batches as users have them, framework-free: one convention for every adapter.

A batch is split into ``(inputs, targets, size)`` by :func:`split_batch`, following a
:class:`BatchFormat`:

- an ``(inputs, targets)`` pair (a tuple or list of length 2), as ``DataLoader`` yields it;
  ``(inputs, None)`` takes the targets from inside ``inputs`` as a mapping would;
- a mapping with the targets inside (the Hugging Face convention: ``input_ids``,
  ``attention_mask``, ``labels``): the targets are ``batch[format.targets]`` (``"labels"``
  by default) and the inputs the other entries; with :attr:`BatchFormat.keep_targets` (the
  model computes its own loss from them) the inputs keep them. ``format.targets`` may also
  be a callable ``batch -> targets``, which leaves the batch whole as the inputs.

The size of a batch (its weight ``n_b`` in the mean over samples) is the leading dimension
of the first array of the targets, else of the inputs (depth first, mapping values in
order), unless the adapter counts otherwise (``count=``, e.g. the predicted tokens of a
causal language model). The adapter passes ``is_array`` (its framework's array test) so
that this module names no framework.

How the inputs reach the model is the adapter's: ``model(x)``, ``model(*x)`` for a tuple,
``model(**x)`` for a mapping, or :attr:`BatchFormat.forward` ``(model, inputs) -> outputs``
for any other calling convention.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

TargetsArg = str | Callable[[Any], Any] | None
"""What ``targets=`` accepts: a key of mapping batches (``"labels"`` by default), a callable
``batch -> targets``, or ``None`` (mapping batches carry no targets)."""

ForwardArg = Callable[[Any, Any], Any] | None
"""What ``forward=`` accepts: ``forward(model, inputs) -> outputs`` or ``None``."""


@dataclass(frozen=True)
class BatchFormat:
    """How to read one batch: where its targets are and how the model is called.

    Attributes
    ----------
    targets
        For mapping batches: the key of the targets (``"labels"``, the Hugging Face
        convention), a callable ``batch -> targets`` (the whole batch stays the inputs), or
        ``None`` (no targets: the model's own loss, sized by the inputs).
    forward
        ``forward(model, inputs) -> outputs`` in place of the default call (``model(x)``,
        ``model(*x)`` for a tuple, ``model(**x)`` for a mapping), e.g.
        ``lambda model, x: model(x)`` for a model taking one dict.
    keep_targets
        Leave the targets inside the inputs of a mapping batch (set by the adapter when the
        model computes its own loss from them, ``loss_fn=None``).

    Raises
    ------
    TypeError
        ``targets`` or ``forward`` of the wrong type.
    """

    targets: TargetsArg = "labels"
    forward: ForwardArg = None
    keep_targets: bool = False

    def __post_init__(self) -> None:
        if not (self.targets is None or isinstance(self.targets, str) or callable(self.targets)):
            raise TypeError(
                f"targets= must be a key of the batch mappings, a callable batch -> targets or None, "
                f"got {type(self.targets).__name__}"
            )
        if self.forward is not None and not callable(self.forward):
            raise TypeError(
                f"forward= must be a callable forward(model, inputs) -> outputs, got {type(self.forward).__name__}"
            )


class SplitBatch(NamedTuple):
    """One batch, split: what the model is called with, what the loss compares to, and the
    batch's weight ``n_b`` (samples, or what ``count=`` counts)."""

    inputs: Any
    targets: Any
    size: int


def first_array(obj: Any, is_array: Callable[[Any], bool]) -> Any:
    """The first array of a (nested) tuple, list or mapping, depth first, mapping values
    in order; ``None`` if it holds none."""
    if is_array(obj):
        return obj
    if isinstance(obj, Mapping):
        values: Any = obj.values()
    elif isinstance(obj, (tuple, list)):
        values = obj
    else:
        return None
    for value in values:
        found = first_array(value, is_array)
        if found is not None:
            return found
    return None


def leading_size(obj: Any, is_array: Callable[[Any], bool]) -> int | None:
    """The leading dimension of the first array of ``obj`` (``None``: no array, or a 0-d one)."""
    array = first_array(obj, is_array)
    if array is None or len(array.shape) == 0:
        return None
    return int(array.shape[0])


def _what(batch: Any) -> str:
    if isinstance(batch, (tuple, list)):
        return f"a {type(batch).__name__} of length {len(batch)}"
    return f"a {type(batch).__name__}"


def _from_mapping(batch: Mapping[str, Any], fmt: BatchFormat, index: int, need_targets: bool) -> tuple[Any, Any]:
    if callable(fmt.targets):
        return batch, fmt.targets(batch)
    if fmt.targets is None or fmt.targets not in batch:
        if need_targets:
            key = "no key" if fmt.targets is None else f"no key {fmt.targets!r}"
            raise TypeError(
                f"batch {index} is a mapping with {key} (keys {sorted(map(str, batch))}), so it has no targets for "
                "the loss; name the key of the targets with targets='...', pass targets=(batch -> targets), yield "
                "(inputs, targets) pairs, or pass loss_fn=None to use the model's own loss"
            )
        return batch, None
    targets = batch[fmt.targets]
    inputs = batch if fmt.keep_targets else {k: v for k, v in batch.items() if k != fmt.targets}
    return inputs, targets


def split_batch(
    batch: Any,
    index: int,
    fmt: BatchFormat,
    *,
    is_array: Callable[[Any], bool],
    need_targets: bool = True,
    count: Callable[[Any, Any], int] | None = None,
) -> SplitBatch:
    """Split batch ``index`` into ``(inputs, targets, size)`` following ``fmt``.

    Parameters
    ----------
    batch
        An ``(inputs, targets)`` pair, ``(inputs, None)``, or a mapping with the targets
        inside (see the module's documentation).
    index
        The batch's position in the data, named in error messages.
    fmt
        Where the targets are (:class:`BatchFormat`).
    is_array
        The framework's array test (``lambda x: isinstance(x, torch.Tensor)``).
    need_targets
        Whether the loss needs targets (``False`` for the model's own loss): a batch without
        any is then accepted, its targets ``None``.
    count
        ``(inputs, targets) -> n_b`` for a loss that is a mean over something else than the
        samples (tokens); by default the leading dimension of the targets, else of the inputs.

    Returns
    -------
    SplitBatch
        ``(inputs, targets, size)``, ``size ≥ 1``. Cost: a walk over the batch's structure;
        no array is read or copied.

    Raises
    ------
    TypeError
        The batch is neither a pair nor a mapping, or it has no targets where the loss needs
        them.
    ValueError
        No array gives a batch size (no array, or a 0-d first array), or the batch is empty.
    """
    if isinstance(batch, Mapping):
        inputs, targets = _from_mapping(batch, fmt, index, need_targets)
    elif isinstance(batch, (tuple, list)) and len(batch) == 2:
        inputs, targets = batch[0], batch[1]
        if targets is None and isinstance(inputs, Mapping):
            inputs, targets = _from_mapping(inputs, fmt, index, need_targets)
        elif targets is None and need_targets:
            raise TypeError(
                f"batch {index} has targets None and its inputs are {_what(inputs)}, not a mapping holding them; "
                "pass the targets as the second element, or loss_fn=None to use the model's own loss"
            )
    else:
        raise TypeError(
            f"batch {index} is {_what(batch)}; every batch must be an (inputs, targets) pair or a mapping with the "
            "targets inside (the Hugging Face convention, key 'labels'; choose another with targets=). To pass a "
            "single batch, wrap it in a list: data=[(inputs, targets)]"
        )
    if count is not None:
        size: int | None = int(count(inputs, targets))
    else:
        size = leading_size(targets, is_array) if targets is not None else None
        if size is None:
            size = leading_size(inputs, is_array)
    if size is None:
        raise ValueError(
            f"batch {index}: no array with a leading batch dimension in its targets or inputs "
            f"(targets {type(targets).__name__}, inputs {type(inputs).__name__})"
        )
    if size == 0:
        raise ValueError(f"batch {index} is empty (0 samples)")
    return SplitBatch(inputs, targets, size)
