"""Batches as users have them (:mod:`eigenscope.adapters._batches`): validation, one-time
transfer to the device, sizes."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

import torch

from .._batches import BatchFormat, split_batch
from .._data import SizedBatches, check_nonempty, check_reiterable, check_size


def move(obj: Any, device: torch.device, dtype: torch.dtype) -> Any:
    """Move every tensor of a (nested) tuple/list/mapping to ``device`` (mappings become
    dicts); floating-point tensors are also cast to ``dtype`` (the parameters' dtype),
    integer ones (ids, class labels) keep theirs."""
    if isinstance(obj, torch.Tensor):
        if obj.is_floating_point():
            return obj.to(device=device, dtype=dtype, non_blocking=True)
        return obj.to(device=device, non_blocking=True)
    if isinstance(obj, Mapping):  # a dict, or a Hugging Face BatchEncoding (a UserDict)
        return {k: move(v, device, dtype) for k, v in obj.items()}
    if isinstance(obj, (tuple, list)):
        return type(obj)(move(v, device, dtype) for v in obj)
    return obj


def _first_tensor(obj: Any) -> torch.Tensor | None:
    if isinstance(obj, torch.Tensor):
        return obj
    values = obj.values() if isinstance(obj, dict) else obj if isinstance(obj, (tuple, list)) else ()
    for v in values:
        t = _first_tensor(v)
        if t is not None:
            return t
    return None


def batch_size(targets: Any, index: int) -> int:
    """The number of samples of a batch: the leading dimension of its targets.

    Parameters
    ----------
    targets
        A tensor, or a (nested) tuple, list or dict of tensors; the first tensor found
        (depth first, dict values in order) gives the batch size.
    index
        The batch's position in the data, named in the error message.

    Returns
    -------
    int
        The leading dimension of that tensor, at least 1.

    Raises
    ------
    ValueError
        ``targets`` holds no tensor, its first tensor is 0-d, or the batch is empty.
    """
    t = _first_tensor(targets)
    if t is None or t.ndim == 0:
        raise ValueError(
            f"batch {index}: targets must be a tensor (or a structure of tensors) with a leading batch "
            f"dimension, got {type(targets).__name__}" + ("" if t is None else " of shape ()")
        )
    return check_size(int(t.shape[0]), index)


def _is_tensor(x: Any) -> bool:
    return isinstance(x, torch.Tensor)


class Batches(SizedBatches):
    """The data of an operator: a re-iterable sequence of batches as users have them.

    By default the batches are moved to the parameters' device (and floating-point
    tensors cast to their dtype) once, here, and reused by every product. With
    ``stream=True`` only the batch sizes are recorded here and each product iterates
    ``data`` again, moving one batch at a time (for data that does not fit on the device).

    Parameters
    ----------
    data
        A list/tuple of batches, a ``torch.utils.data.DataLoader`` or any re-iterable
        object whose iterator yields ``(inputs, targets)`` pairs or mappings with the
        targets inside (see ``format``). One-shot iterators
        (generators, ``iter(...)``) are refused: every product needs a full pass. With
        ``stream=True`` batch 0 is read again here, from a second pass, which refuses
        one-shot iterables that are not iterators themselves (a class whose ``__iter__``
        returns a stored generator) with a ``TypeError`` instead of a ``StopIteration``.
    device, dtype
        The parameters' device and floating-point dtype: tensors are moved there, and
        floating-point ones cast to ``dtype`` (integer ones, such as labels, keep theirs).
    stream
        Move one batch at a time at every pass instead of all of them once, here.
    batch_format
        Where the targets are and how the model is called
        (:class:`eigenscope.adapters._batches.BatchFormat`; by default ``(inputs, targets)``
        pairs, or mappings with the targets under ``"labels"``).
    need_targets
        ``False`` when the loss is the model's own (a batch may then carry no targets).
    count
        ``(inputs, targets) -> n_b``, the batch's weight when it is not the leading
        dimension of the targets (the predicted tokens of ``"causal_lm"``).
    prepare
        ``(inputs, targets) -> targets`` applied once per batch on the device (the padding
        mask of ``"causal_lm"``).

    Iterating yields ``(index, inputs, targets, size)`` with the tensors on ``device``;
    ``batch_sizes``, ``num_samples`` and ``num_batches`` describe the data and
    :meth:`first` is batch 0.

    Raises
    ------
    TypeError
        ``data`` is not a re-iterable of ``(inputs, targets)`` pairs (see above).
    ValueError
        ``data`` is empty, a batch is empty or its targets have no leading batch dimension,
        or ``stream=True`` with a shuffling ``DataLoader``.
    """

    def __init__(
        self,
        data: Iterable[Any],
        *,
        device: torch.device,
        dtype: torch.dtype,
        stream: bool = False,
        batch_format: BatchFormat | None = None,
        need_targets: bool = True,
        count: Callable[[Any, Any], int] | None = None,
        prepare: Callable[[Any, Any], Any] | None = None,
    ) -> None:
        if isinstance(data, Batches):
            raise TypeError("internal: wrap Batches only once")
        check_reiterable(
            data, arrays=(torch.Tensor,), accepted="a list or a DataLoader", instead="a list of batches or a DataLoader"
        )
        if stream:
            _refuse_shuffling(data)
        self.device = device
        self.dtype = dtype
        self.stream = stream
        self.format = BatchFormat() if batch_format is None else batch_format
        self._need_targets = need_targets
        self._count = count
        self._prepare = prepare
        self._data = data
        sizes: list[int] = []
        stored: list[tuple[Any, Any]] = []
        for index, batch in enumerate(data):
            inputs, targets, size = self._split(batch, index)
            sizes.append(size)
            if not stream:
                stored.append(self._moved(inputs, targets))
        check_nonempty(sizes)
        self.batch_sizes: tuple[int, ...] = tuple(sizes)
        self._stored = stored
        # Streaming reads the data again at every product: a second pass, here, proves it can.
        self._first = stored[0] if stored else self._read_first()

    def first(self) -> tuple[Any, Any]:
        """The first batch, on the device."""
        return self._first

    def _split(self, batch: Any, index: int) -> tuple[Any, Any, int]:
        inputs, targets, size = split_batch(
            batch, index, self.format, is_array=_is_tensor, need_targets=self._need_targets, count=self._count
        )
        return inputs, targets, check_size(size, index)

    def _moved(self, inputs: Any, targets: Any) -> tuple[Any, Any]:
        inputs, targets = move(inputs, self.device, self.dtype), move(targets, self.device, self.dtype)
        if self._prepare is not None:
            targets = self._prepare(inputs, targets)
        return inputs, targets

    def _read_first(self) -> tuple[Any, Any]:
        """Batch 0 from a fresh pass over the data, on the device (the first batch of the
        second pass when streaming: a one-shot iterable yields none)."""
        batch = next(iter(self._data), _EXHAUSTED)
        if batch is _EXHAUSTED:
            raise TypeError(_one_shot_message(self._data, self.num_batches))
        inputs, targets, _ = self._split(batch, 0)
        return self._moved(inputs, targets)

    def __iter__(self) -> Iterator[tuple[int, Any, Any, int]]:
        """Yield ``(index, inputs, targets, size)`` with tensors on the device."""
        if not self.stream:
            for index, ((inputs, targets), size) in enumerate(zip(self._stored, self.batch_sizes, strict=True)):
                yield index, inputs, targets, size
            return
        count = 0
        for index, batch in enumerate(self._data):
            inputs, targets, size = self._split(batch, index)
            if index >= self.num_batches or size != self.batch_sizes[index]:
                raise RuntimeError(
                    f"the data changed since the operator was built: batch {index} has {size} samples, "
                    f"expected {self.batch_sizes[index] if index < self.num_batches else 'no such batch'}"
                )
            yield index, *self._moved(inputs, targets), size
            count += 1
        if count == 0:
            raise TypeError(_one_shot_message(self._data, self.num_batches))
        if count != self.num_batches:
            raise RuntimeError(
                f"the data changed since the operator was built: {count} batches, expected {self.num_batches}"
            )


_EXHAUSTED = object()


def _one_shot_message(data: Any, num_batches: int) -> str:
    return (
        f"stream=True needs data it can read at every product, but the {type(data).__name__} yielded no batch "
        f"on a later pass ({num_batches} on the first): it is a one-shot iterable (its __iter__ hands out "
        "an iterator that the first pass used up) or it was emptied. Pass a re-iterable: a list of batches or a "
        "DataLoader (or stream=False, which reads the data once)"
    )


def _refuse_shuffling(data: Any) -> None:
    """A shuffling DataLoader would give different batches on every pass: with BatchNorm in
    train mode that is a different operator each product, so refuse it when streaming."""
    sampler = getattr(data, "sampler", None)
    if sampler is not None and isinstance(sampler, torch.utils.data.RandomSampler):
        raise ValueError(
            "stream=True with a shuffling DataLoader gives different batches on every product; "
            "use shuffle=False (or stream=False, which fixes the batches once)"
        )
