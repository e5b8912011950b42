"""How many products the running algorithm expects to ask for: a hint operators may read.

An algorithm that knows its product count before it starts (``spectral_density``:
steps × probes; ``trace``: its budget; ``lanczos``: its steps) announces it with
:func:`planned_products`; an operator whose products can be made cheaper at a one-off cost
(a compiled product, say) reads :func:`current_plan` to decide whether that cost
pays back within the run. Nothing else depends on the hint: without it every operator
behaves as before.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass


@dataclass(frozen=True, eq=False)
class Plan:
    """One announced run: ``count`` products expected; compared by identity, so that an
    operator can tell two runs of the same length apart."""

    count: int


_PLANNED: ContextVar[Plan | None] = ContextVar("eigenscope_planned_products", default=None)


@contextmanager
def planned_products(count: int | None) -> Iterator[None]:
    """Announce, inside the block, that about ``count`` products (vectors, not calls) will
    be asked for; ``None`` says the count is unknown. Nested announcements replace the outer
    one inside their block (an algorithm calling another announces the inner run's count)."""
    token = _PLANNED.set(None if count is None else Plan(max(int(count), 0)))
    try:
        yield
    finally:
        _PLANNED.reset(token)


def current_plan() -> Plan | None:
    """The run announced by the innermost :func:`planned_products` block, or ``None``."""
    return _PLANNED.get()
