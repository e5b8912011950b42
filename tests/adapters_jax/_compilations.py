"""Counting XLA compilations (JAX's monitoring events): cold starts are counted, never timed."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from jax import monitoring

EVENT = "/jax/core/compile/backend_compile_duration"


@contextlib.contextmanager
def count_compilations() -> Iterator[dict[str, int]]:
    """``counter["n"]``: the compilations inside the block."""
    counter = {"n": 0}

    def listener(event: str, duration: float, **_: object) -> None:
        if event == EVENT:
            counter["n"] += 1

    monitoring.register_event_duration_secs_listener(listener)
    try:
        yield counter
    finally:
        monitoring.unregister_event_duration_listener(listener)
