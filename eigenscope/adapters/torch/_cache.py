"""How much memory a cached first-order graph holds, and how much may be spent on it."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
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
