"""Algorithms announce how many products they expect (:func:`eigenscope.linop.planned_products`).

An operator with a one-off way to make its products cheaper (the torch adapter's compiled
products) reads the announcement to decide whether the run pays that cost back. Counts are
conservative (a lower estimate where the run stops adaptively): announcing too few products
at worst forgoes a saving, announcing too many could spend a compilation a short run never
recovers.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from .. import linop

F = TypeVar("F", bound=Callable[..., Any])


def announces(count: Callable[[Mapping[str, Any]], int | None]) -> Callable[[F], F]:
    """Decorate an algorithm so that it runs inside ``planned_products(count(arguments))``,
    ``arguments`` its bound arguments with defaults applied."""

    def decorate(fn: F) -> F:
        signature = inspect.signature(fn)

        @functools.wraps(fn)
        def announced(*args: Any, **kwargs: Any) -> Any:
            try:
                bound = signature.bind(*args, **kwargs)
            except TypeError:
                return fn(*args, **kwargs)  # let the algorithm report the bad call itself
            bound.apply_defaults()
            with linop.planned_products(_safe(count, bound.arguments)):
                return fn(*args, **kwargs)

        return announced  # type: ignore[return-value]

    return decorate


def _safe(count: Callable[[Mapping[str, Any]], int | None], arguments: Mapping[str, Any]) -> int | None:
    try:
        value = count(arguments)
    except (TypeError, ValueError):  # an argument the algorithm will refuse: no announcement
        return None
    return None if value is None else int(value)


def budget_count(default: int) -> Callable[[Mapping[str, Any]], int | None]:
    """For the stochastic estimators: the budget ``num_matvecs`` (``default`` when not given),
    or ``max_matvecs`` when a tolerance makes the run adaptive and a cap is given (the first
    round otherwise: a lower estimate)."""

    def count(a: Mapping[str, Any]) -> int | None:
        first = a.get("num_matvecs") or default
        adaptive = a.get("rtol") is not None or a.get("atol") is not None
        if a.get("probes") is not None:
            return None
        return int(a["max_matvecs"]) if adaptive and a.get("max_matvecs") else int(first)

    return count


def eigsh_count(a: Mapping[str, Any]) -> int | None:
    """``eigsh``: a lower estimate of a run's products, main run and verification: 10 + 4k
    (measured runs took 14–85 products for k = 1–20 on the benchmark networks), at most
    ``max_matvecs``."""
    estimate = 10 + 4 * int(a["k"])
    return min(estimate, int(a["max_matvecs"])) if a.get("max_matvecs") else estimate


def density_count(a: Mapping[str, Any]) -> int | None:
    """``spectral_density``: steps × probes (the probes given, or ``num_probes``), plus the
    outlier deflation's ``eigsh`` estimate."""
    probes = a.get("probes")
    count = int(probes.shape[1]) if probes is not None and getattr(probes, "ndim", 1) == 2 else int(a["num_probes"])
    deflated = int(a.get("deflate_outliers") or 0)
    return int(a["num_steps"]) * count + (10 + 4 * deflated if deflated else 0)
