"""What every adapter knows of its ``data``, a re-iterable of batches: the checks it makes
and the samples per batch (how one batch is split is :mod:`eigenscope.adapters._batches`)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any


def check_reiterable(data: Any, *, arrays: tuple[type, ...], accepted: str, instead: str) -> None:
    """Raise ``TypeError`` unless ``data`` can be iterated over again for every product.

    ``arrays`` are the framework's array types (an array is iterable but not a list of
    batches); ``accepted`` says what ``data`` may be (``"a list"``) and ``instead`` what to
    pass in place of a one-shot iterator (``"a list of batches"``).
    """
    if isinstance(data, arrays) or not isinstance(data, Iterable):
        raise TypeError(
            f"data must be an iterable of (inputs, targets) batches ({accepted}), got {type(data).__name__}"
        )
    if isinstance(data, Iterator):
        raise TypeError(
            f"data is a one-shot iterator ({type(data).__name__}): once read it is empty, so an operator could "
            "not read it again (stream=True reads the data at every product, a constructor given a used-up "
            f"iterator would see no batch); pass {instead} instead (e.g. data=list(batches))"
        )


def check_pair(batch: Any, index: int) -> tuple[Any, Any]:
    """``(inputs, targets)`` of batch ``index``; ``TypeError`` for anything but a pair."""
    if not isinstance(batch, (tuple, list)) or len(batch) != 2:
        what = f"a {type(batch).__name__}" + (f" of length {len(batch)}" if isinstance(batch, (tuple, list)) else "")
        raise TypeError(
            f"batch {index} is {what}; every batch must be an (inputs, targets) pair. "
            "To pass a single batch, wrap it in a list: data=[(inputs, targets)]"
        )
    return batch[0], batch[1]


def check_size(size: int, index: int) -> int:
    """``size``, the samples of batch ``index``; ``ValueError`` for an empty batch."""
    if size == 0:
        raise ValueError(f"batch {index} is empty (0 samples)")
    return size


def check_nonempty(sizes: list[int]) -> None:
    """``ValueError`` if ``data`` yielded no batch."""
    if not sizes:
        raise ValueError("data is empty: it yielded no batch")


class SizedBatches:
    """The samples per batch of an adapter's data: all the operator base needs of it.

    Each adapter's ``Batches`` subclasses it and sets :attr:`batch_sizes`.

    Attributes
    ----------
    batch_sizes : tuple[int, ...]
        ``n_b``, the samples of each batch.
    """

    batch_sizes: tuple[int, ...] = ()

    @property
    def num_samples(self) -> int:
        """``N``: samples over all batches."""
        return sum(self.batch_sizes)

    @property
    def num_batches(self) -> int:
        """Number of batches."""
        return len(self.batch_sizes)
