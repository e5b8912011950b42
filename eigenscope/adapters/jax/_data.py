"""Batches as users have them (:mod:`eigenscope.adapters._batches`, shared with the torch
adapter): ``(inputs, targets)`` pairs or mappings with the targets inside; validation,
one-time transfer to the device, sizes."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from .._batches import BatchFormat, split_batch
from .._data import SizedBatches, check_nonempty, check_reiterable
from ._sharding import DataSharding


def _leaf_array(leaf: Any, where: str, dtype: Any) -> Any:
    """One leaf as an array (a JAX array stays where it is, anything else becomes a NumPy
    array); floating-point leaves take the parameters' dtype (so a float64 NumPy batch does
    not promote a float32 model), integer ones (ids, class labels) keep theirs."""
    if not isinstance(leaf, jax.Array):
        kind = type(leaf).__name__
        try:
            leaf = np.asarray(leaf)
        except Exception as exc:
            raise TypeError(f"{where} is a {kind}, not an array") from exc
        if leaf.dtype.kind not in "biufc":
            raise TypeError(f"{where} is a {kind} (dtype {leaf.dtype}), not a numeric array")
        if jnp.issubdtype(leaf.dtype, jnp.floating) and leaf.dtype != dtype:
            leaf = leaf.astype(np.dtype(dtype))
        return leaf
    if jnp.issubdtype(leaf.dtype, jnp.floating) and leaf.dtype != dtype:
        leaf = leaf.astype(dtype)
    return leaf


def _arrays(tree: Any, where: str, dtype: Any) -> Any:
    """Every leaf of ``tree`` as an array (see :func:`_leaf_array`), not yet placed."""

    def convert(path: Any, leaf: Any) -> Any:
        return _leaf_array(leaf, where + jax.tree_util.keystr(path), dtype)

    return jax.tree_util.tree_map_with_path(convert, tree)


def _place(tree: Any, place: Callable[[Any], Any]) -> Any:
    """Every leaf of ``tree`` on ``place(leaf)``: a device or a sharding."""
    return jax.tree_util.tree_map(lambda leaf: jax.device_put(leaf, place(leaf)), tree)


def _is_array(x: Any) -> bool:
    return isinstance(x, (jax.Array, np.ndarray))


def _check_not_iterator(data: Any) -> None:
    """Refuse a one-shot iterator, saying why (the batches are read once, at build time)."""
    if isinstance(data, Iterator):
        raise TypeError(
            f"data is a one-shot iterator ({type(data).__name__}): the JAX adapter reads the batches once, when "
            "the operator is built, and keeps them on the device, but an iterator is empty the next time it is "
            "read (another operator built from the same data would see no batch); pass a list of batches "
            "instead (e.g. data=list(batches))"
        )


def _signature(inputs: Any, targets: Any) -> Any:
    """What decides a compilation: the tree structure, shapes and dtypes of a batch."""
    leaves, tree = jax.tree_util.tree_flatten((inputs, targets))
    return tree, tuple((tuple(a.shape), str(a.dtype)) for a in leaves)


class Batches(SizedBatches):
    """The data of an operator, placed on the parameters' device once.

    Parameters
    ----------
    data
        A list or tuple of batches, or any re-iterable object whose iterator yields them:
        ``(inputs, targets)`` pairs or mappings with the targets inside (``fmt``); inputs and
        targets are arrays (JAX or NumPy) or pytrees of them. One-shot iterators
        (generators, ``iter(...)``) are refused: the batches are read once, here, and every
        product reuses them.
    device
        The parameters' device (their replicated sharding with ``sharding``).
    dtype
        The parameters' dtype; floating-point data leaves are cast to it.
    fmt
        Where the targets of a mapping batch are (``targets=`` of the constructors: the key
        ``"labels"`` by default, ``"label"`` for TensorFlow Datasets' convention).
    sharding
        With a mesh: each batch whose size the data axis divides is split over it along
        its leading axis (leaves whose leading dimension is the batch size; the others are
        replicated), any other batch replicated (``num_replicated`` counts them).
    """

    def __init__(
        self,
        data: Iterable[Any],
        *,
        device: Any,
        dtype: Any,
        sharding: DataSharding | None = None,
        fmt: BatchFormat | None = None,
    ) -> None:
        _check_not_iterator(data)
        check_reiterable(data, arrays=(jax.Array, np.ndarray), accepted="a list", instead="a list of batches")
        fmt = BatchFormat() if fmt is None else fmt
        stored: list[tuple[Any, Any]] = []
        sizes: list[int] = []
        self.num_replicated = 0
        for index, batch in enumerate(data):
            inputs, targets, _ = split_batch(batch, index, fmt, is_array=_is_array, count=lambda x, y: 1)
            inputs = _arrays(inputs, f"batch {index} inputs", dtype)
            targets = _arrays(targets, f"batch {index} targets", dtype)
            size = split_batch((inputs, targets), index, fmt, is_array=_is_array).size
            if sharding is None:
                place: Callable[[Any], Any] = lambda _: device  # noqa: E731
            else:
                self.num_replicated += not sharding.divides(size)
                place = lambda leaf, size=size: sharding.placement(leaf, size)  # noqa: E731
            inputs, targets = _place(inputs, place), _place(targets, place)
            sizes.append(size)
            stored.append((inputs, targets))
        check_nonempty(sizes)
        self.device = device
        self.dtype = dtype
        self.sharding = sharding
        self.batches: tuple[tuple[Any, Any], ...] = tuple(stored)
        self.batch_sizes: tuple[int, ...] = tuple(sizes)
        self.num_shapes = len({_signature(x, y) for x, y in stored})

    def first(self) -> tuple[Any, Any]:
        """Batch 0, on the device."""
        return self.batches[0]

    def __iter__(self) -> Iterator[tuple[int, Any, Any, int]]:
        """Yield ``(index, inputs, targets, size)``."""
        for index, ((inputs, targets), size) in enumerate(zip(self.batches, self.batch_sizes, strict=True)):
            yield index, inputs, targets, size

    def check_per_sample(self) -> None:
        """Every leaf of every batch must have the batch size as its leading dimension (the
        per-sample losses ``vmap`` over it)."""
        for index, ((inputs, targets), size) in enumerate(zip(self.batches, self.batch_sizes, strict=True)):
            for name, tree in (("inputs", inputs), ("targets", targets)):
                for path, leaf in jax.tree_util.tree_leaves_with_path(tree):
                    if leaf.ndim == 0 or leaf.shape[0] != size:
                        raise ValueError(
                            f"batch {index} {name}{jax.tree_util.keystr(path)} has shape {tuple(leaf.shape)}, but "
                            f"per-sample losses map over a leading dimension of {size} (the batch size) in every "
                            "leaf; pass per_sample_loss=(params, inputs, targets) -> (batch_size,) instead"
                        )


FUSE_MAX_GROUPS = 4
"""Most runs of equally shaped batches that one fused pass over the data unrolls (each run
is a ``lax.scan`` of its own, compiled once): data of many shapes goes batch by batch."""

FUSE_MAX_BYTES = 1 << 28
"""Most bytes of data copied into stacked runs for the fused pass (the batches themselves are
kept for the per-batch programs: the gradient, sharded data)."""


def stacked_groups(batches: Batches, weights: list[Any]) -> tuple[Any, ...] | None:
    """The batches as runs of equal shape, each stacked along a new leading axis.

    Returns one ``(indices (g,), weights (g,), inputs, targets)`` per run of consecutive
    batches with the same tree structure, shapes and dtypes (the last, shorter batch is a
    run of its own), for a ``lax.scan`` over each run in one compiled pass; ``None`` where
    that does not apply: sharded data, more than :data:`FUSE_MAX_GROUPS` runs, or more than
    :data:`FUSE_MAX_BYTES` of data to copy.
    """
    if batches.sharding is not None:
        return None
    runs: list[list[int]] = []
    previous = None
    nbytes = 0
    for index, (inputs, targets) in enumerate(batches.batches):
        signature = _signature(inputs, targets)
        if signature != previous:
            runs.append([])
            previous = signature
        runs[-1].append(index)
        nbytes += sum(leaf.nbytes for leaf in jax.tree_util.tree_leaves((inputs, targets)))
    if len(runs) > FUSE_MAX_GROUPS or nbytes > FUSE_MAX_BYTES:
        return None
    groups = []
    device = batches.device
    for run in runs:
        members = [batches.batches[i] for i in run]
        # Stacked on the host, once: an eager jnp.stack would compile a program per shape.
        stacked = jax.tree_util.tree_map(
            lambda *leaves: jax.device_put(np.stack([np.asarray(leaf) for leaf in leaves]), device), *members
        )
        indices = jax.device_put(np.asarray(run, dtype=np.int32), device)
        group_weights = jax.device_put(np.stack([np.asarray(weights[i]) for i in run]), device)
        groups.append((indices, group_weights, stacked[0], stacked[1]))
    return tuple(groups)
