"""Timing machinery: product meters, A/B interleaving, medians, ratios, peak memory, machine facts.

Every tool runs in the same process with ``torch.set_num_threads(threads)`` and host BLAS
(NumPy/SciPy's OpenBLAS, which ARPACK and the small dense eigenproblems use) limited to one
thread while it runs (``threadpoolctl``, ``user_api="blas"``: torch's own OpenMP pool keeps its
threads). On a shared 2-core machine a second BLAS pool fighting torch's threads alone doubled
a peer's ``eigsh`` time.

Runs of different tools are interleaved round by round (A, B, C, A, B, C, ...) and each ratio
is taken within a round, then the median over rounds: absolute seconds drift on a shared
machine, ratios of neighbours hold.
"""

from __future__ import annotations

import contextlib
import datetime
import gc
import importlib.metadata
import os
import platform
import resource
import statistics
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from threadpoolctl import threadpool_limits

from benchmarks._common import cpu_model, status_kib, trim


@contextlib.contextmanager
def host_blas_single_thread() -> Iterator[None]:
    """Host BLAS (OpenBLAS of NumPy/SciPy) on one thread; torch's intra-op threads untouched."""
    with threadpool_limits(limits=1, user_api="blas"):
        yield


class BudgetExceeded(RuntimeError):
    """A run reached its product cap (raised from inside the tool's product function)."""


class Meter:
    """Counts the products a tool applies and the seconds spent inside them.

    ``wrap(fn, columns)`` returns ``fn`` instrumented: each call adds ``columns(args, result)``
    products (1 by default: one vector) and its duration. With ``cap``, the call that would
    start product ``cap + 1`` raises :class:`BudgetExceeded` instead, which ends the run.
    """

    def __init__(self, cap: int | None = None) -> None:
        self.products = 0
        self.calls = 0
        self.product_seconds = 0.0
        self.cap = cap

    def wrap(self, fn: Callable[..., Any], columns: Callable[[tuple, Any], int] | None = None) -> Callable[..., Any]:
        def metered(*args: Any, **kwargs: Any) -> Any:
            if self.cap is not None and self.products >= self.cap:
                raise BudgetExceeded(f"product cap {self.cap} reached")
            t0 = time.perf_counter()
            out = fn(*args, **kwargs)
            self.product_seconds += time.perf_counter() - t0
            self.calls += 1
            self.products += 1 if columns is None else int(columns(args, out))
            return out

        return metered


@dataclass
class Run:
    """One timed run of one tool on one task."""

    seconds: float
    products: int
    product_seconds: float
    peak_rss_mib: float | None
    outcome: dict[str, Any] = field(default_factory=dict)

    @property
    def seconds_per_product(self) -> float | None:
        return self.product_seconds / self.products if self.products else None

    @property
    def outside_share(self) -> float:
        """Share of the wall time spent outside the products (the tool's own overhead)."""
        return max(0.0, 1.0 - self.product_seconds / self.seconds) if self.seconds > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "seconds": self.seconds,
            "products": self.products,
            "product_seconds": self.product_seconds,
            "seconds_per_product": self.seconds_per_product,
            "outside_share": self.outside_share,
            "peak_rss_mib": self.peak_rss_mib,
            **self.outcome,
        }


# ---- peak memory ---------------------------------------------------------------------------


@contextlib.contextmanager
def peak_rss() -> Iterator[list[float | None]]:
    """Peak resident set (MiB) of the process while the block runs.

    On Linux the high-water mark is reset first (``/proc/self/clear_refs``), so each run gets
    its own peak; elsewhere ``resource.getrusage`` max RSS (the peak since process start).
    """
    box: list[float | None] = [None]
    trim()
    reset = False
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")
        reset = True
    try:
        yield box
    finally:
        hwm = status_kib("VmHWM") if reset else None
        if hwm is None:
            hwm = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
        box[0] = hwm / 1024


def timed(fn: Callable[[Meter], dict[str, Any]], cap: int | None = None) -> Run:
    """Run ``fn(meter)`` once: wall time, products, time in products, peak RSS, outcome.

    A run stopped by its product cap is returned with ``outcome["capped"] = True``.
    """
    meter = Meter(cap)
    gc.collect()
    with host_blas_single_thread(), peak_rss() as mem:
        t0 = time.perf_counter()
        try:
            outcome = fn(meter) or {}
        except BudgetExceeded:
            outcome = {"capped": True}
        seconds = time.perf_counter() - t0
    return Run(seconds, meter.products, meter.product_seconds, mem[0], outcome)


def interleave(
    cases: dict[str, Callable[[Meter], dict[str, Any]]],
    rounds: int,
    log: Callable[[str], None] = print,
    caps: dict[str, int | None] | None = None,
) -> dict[str, list[Run]]:
    """``rounds`` rounds of every case in turn (A, B, C, A, B, C, ...)."""
    runs: dict[str, list[Run]] = {k: [] for k in cases}
    for r in range(rounds):
        for key, fn in cases.items():
            run = timed(fn, (caps or {}).get(key))
            runs[key].append(run)
            log(f"      round {r + 1}/{rounds} {key}: {run.seconds:.2f}s, {run.products} products")
    return runs


def summary(values: list[float]) -> dict[str, float] | None:
    values = [v for v in values if v is not None]
    if not values:
        return None
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "n": len(values)}


def paired_ratios(num: list[Run], den: list[Run]) -> list[float]:
    """``num[i].seconds / den[i].seconds`` round by round."""
    return [a.seconds / b.seconds for a, b in zip(num, den, strict=False) if b.seconds > 0]


def summarize_runs(runs: list[Run]) -> dict[str, Any]:
    """Medians (min/max beside) of the timing fields of repeated runs, plus each run's record."""
    return {
        "seconds": summary([r.seconds for r in runs]),
        "products": summary([r.products for r in runs]),
        "seconds_per_product": summary([r.seconds_per_product for r in runs]),
        "outside_share": summary([r.outside_share for r in runs]),
        "peak_rss_mib": summary([r.peak_rss_mib for r in runs]),
        "runs": [r.to_dict() for r in runs],
    }


# ---- machine and versions -------------------------------------------------------------------


def versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for name in (
        "eigenscope",
        "torch",
        "numpy",
        "scipy",
        "threadpoolctl",
        "pyhessian",
        "curvlinops-for-pytorch",
        "hessian-eigenthings",
        "jax",
    ):
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = "not installed"
    if out["eigenscope"] == "not installed":
        import eigenscope

        out["eigenscope"] = eigenscope.__version__
    return out


def machine(threads: int) -> dict[str, Any]:
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    info: dict[str, Any] = {
        "cpu": cpu_model(),
        "cpu_count": os.cpu_count(),
        "torch_threads": threads,
        "host_blas_threads": 1,
        "platform": platform.platform(),
        "load_average_at_start": None if load is None else [round(x, 2) for x in load],
    }
    try:
        import torch

        if torch.cuda.is_available():
            info["gpu"] = torch.cuda.get_device_name(0)
    except ImportError:
        pass
    return info


def now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
