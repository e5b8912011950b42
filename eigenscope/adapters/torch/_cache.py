"""How much memory a cached first-order graph holds, and how much may be spent on it."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import torch


def _storage_key(t: torch.Tensor) -> tuple[int, int] | None:
    try:
        storage = t.untyped_storage()
    except (RuntimeError, NotImplementedError):  # sparse, nested or meta tensors
        return None
    return storage.data_ptr(), storage.nbytes()


def _tensors(obj: Any) -> Iterable[torch.Tensor]:
    if isinstance(obj, torch.Tensor):
        yield obj
    elif isinstance(obj, (list, tuple)):
        for item in obj:
            yield from _tensors(item)


def measure_build(
    build: Callable[[], Any], exclude: Iterable[torch.Tensor], *, keeps_graph: bool = True
) -> tuple[Any, int]:
    """Run ``build()`` and return its state with the bytes the state keeps alive.

    Counts every distinct storage autograd saves for the backward passes while ``build``
    runs (``torch.autograd.graph.saved_tensors_hooks``; only when the state keeps its graph)
    and the tensors of the returned state, less the storages of ``exclude`` (parameters,
    buffers and data, which exist anyway). This is what keeping the state costs; it is an
    upper bound where autograd frees a saved tensor early.
    """
    excluded = {k[0] for k in map(_storage_key, exclude) if k is not None}
    seen: dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        key = _storage_key(t)
        if keeps_graph and key is not None and key[0] not in excluded:
            seen[key[0]] = key[1]
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        state = build()
    for t in _tensors(state):
        key = _storage_key(t)
        if key is not None and key[0] not in excluded:
            seen[key[0]] = key[1]
    return state, sum(seen.values())


def default_budget(device: torch.device) -> int:
    """Half the memory free now on ``device`` (the GPU's free memory, or the host's
    available memory on CPU); 1 GiB where that cannot be read."""
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return int(free // 2)
    try:  # Linux: MemAvailable counts reclaimable page cache, unlike the free pages
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024 // 2
    except OSError:
        pass
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") // 2)
    except (ValueError, OSError, AttributeError):
        return 1 << 30


def _leaf_tensors(obj: Any) -> list[torch.Tensor]:
    out: list[torch.Tensor] = []
    if isinstance(obj, torch.Tensor):
        out.append(obj)
    elif isinstance(obj, Mapping):
        for v in obj.values():
            out.extend(_leaf_tensors(v))
    elif isinstance(obj, (tuple, list)):
        for v in obj:
            out.extend(_leaf_tensors(v))
    return out


@dataclass(frozen=True)
class CacheEntry:
    """Batch 0's state (``None`` when the cache is not kept), its batch index, the estimated
    bytes of the whole cache and the budget it was checked against."""

    state: Any
    index: int
    cache_bytes: int
    budget: int


def first_cache_entry(
    kernel: Any,
    params: list[torch.Tensor],
    batches: Any,
    watched: list[torch.Tensor],
    *,
    how: bool | str,
    budget: int | None,
    num_batches: int,
    num_samples: int,
) -> CacheEntry:
    """Build batch 0's state, measure what it keeps alive, and estimate the whole cache:
    kept if it fits ``budget`` (``None``: :func:`default_budget`); over it, ``how=True``
    raises ``ValueError`` and ``"auto"`` returns no state. Costs one forward pass and the
    kernel's first-order pass on batch 0."""
    index, inputs, targets, size = next(iter(batches))
    exclude = [*watched, *_leaf_tensors(inputs), *_leaf_tensors(targets)]
    with torch.enable_grad():
        state, nbytes = measure_build(
            lambda: kernel.build(params, inputs, targets, index), exclude, keeps_graph=kernel.keeps_graph
        )
    device = params[0].device
    # Graph memory grows with the samples, the gradient-sized tensors with the batches.
    cache_bytes = int(nbytes * max(num_batches, num_samples / size))
    limit = default_budget(device) if budget is None else int(budget)
    if cache_bytes > limit:
        if how == "auto":
            return CacheEntry(None, index, cache_bytes, limit)
        raise ValueError(
            f"cache_graphs=True would keep about {cache_bytes / 2**20:.1f} MiB of graphs "
            f"({nbytes / 2**20:.1f} MiB for batch 0 of {size} samples), over the budget max_cache_bytes="
            f"{limit / 2**20:.1f} MiB; raise max_cache_bytes, use cache_graphs='auto' (falls back to "
            "rebuilding the graphs at every product) or cache_graphs=False"
        )
    return CacheEntry(state, index, cache_bytes, limit)
