"""Cost of the JAX curvature products on JAX versions of the workloads W1–W3 (BENCHMARKS.md).

For each workload of ``eigenscope.zoo.jax`` at its default (CPU) size, float32:

- one full-data gradient (``jax.value_and_grad`` per batch, jitted: the unit every product
  is compared with),
- one Hessian-vector product (forward over reverse, jitted per batch; target ≤ 3× the
  gradient),
- one ``matmat`` of 8 vectors with the default ``vectorize="auto"`` (on CPU: one linearization
  per batch, then the per-vector program unrolled 8 times; target ≤ 5× one HVP), and the
  same with ``vectorize=True`` (one ``jax.vmap``-ed pass),
- the compile time of each, reported separately: the first call minus the median of the
  timed calls,
- the HVP once more with ``compiler_options`` that switch LLVM optimisation and XLA's fusion
  emitters off: its compile time and its run time (the trade for small models).

Timings are interleaved (one of each per round), a warm-up round is dropped and each figure
is the median of the remaining rounds (min and max beside it); ratios are taken round by
round, then their median, because absolute seconds drift on a shared machine.

Run ``python -m benchmarks.bench_jax_adapters`` (``--quick``: tiny models, one round,
nothing written); the figures go to ``benchmarks/results/jax_adapters.json``.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from benchmarks._common import cpu_model, summary, versions
from eigenscope.adapters import jax as ejx
from eigenscope.zoo import jax as _zoo

RESULTS = Path(__file__).resolve().parent / "results" / "jax_adapters.json"
WORKLOADS = ("W1", "W2", "W3")
TARGETS = {"hvp_vs_gradient": 3.0, "matmat8_vs_hvp": 5.0}
FAST_COMPILE = {
    "xla_backend_optimization_level": 0,
    "xla_llvm_disable_expensive_passes": True,
    "xla_cpu_use_fusion_emitters": False,
}


def timed(fn: Callable[[], Any]) -> float:
    t0 = time.perf_counter()
    jax.block_until_ready(fn())
    return time.perf_counter() - t0


def bench_workload(name: str, size: str, rounds: int, warmup: int) -> dict[str, Any]:
    w = _zoo.workload(name, size)
    h = ejx.hessian(w.loss_fn, w.params, w.batches)
    h_fast = ejx.hessian(w.loss_fn, w.params, w.batches, compiler_options=FAST_COMPILE)
    h_vmap = ejx.hessian(w.loss_fn, w.params, w.batches, vectorize=True)
    n = h.shape[0]
    key_v, key_b = jax.random.split(jax.random.key(0))
    v = jax.random.normal(key_v, (n,), jnp.float32)
    block = jax.random.normal(key_b, (n, 8), jnp.float32)

    def gradient() -> jax.Array:
        h.clear_cache()
        return h.gradient()

    cases: dict[str, Callable[[], Any]] = {
        "gradient": gradient,
        "hvp": lambda: h @ v,
        "matmat8": lambda: h @ block,
        "matmat8_vmap": lambda: h_vmap @ block,
        "hvp_fast_compile": lambda: h_fast @ v,
    }
    first: dict[str, float] = {}
    times: dict[str, list[float]] = {k: [] for k in cases}
    for r in range(warmup + rounds):
        for key, fn in cases.items():
            dt = timed(fn)
            if r == 0:
                first[key] = dt  # trace + compile + one run
            if r >= warmup:
                times[key].append(dt)
        print(
            f"  {name} round {r + 1}/{warmup + rounds}: "
            + ", ".join(f"{k} {dt:.3f}s" for k, dt in ((k, (times[k] or [first[k]])[-1]) for k in cases)),
            flush=True,
        )

    hvp = times["hvp"]
    ratios = {
        "hvp_vs_gradient": [a / b for a, b in zip(hvp, times["gradient"], strict=True)],
        "matmat8_vs_hvp": [a / b for a, b in zip(times["matmat8"], hvp, strict=True)],
        "matmat8_vmap_vs_hvp": [a / b for a, b in zip(times["matmat8_vmap"], hvp, strict=True)],
        "fast_compile_hvp_vs_hvp": [a / b for a, b in zip(times["hvp_fast_compile"], hvp, strict=True)],
    }
    med = {k: statistics.median(x) for k, x in ratios.items()}
    compile_s = {k: first[k] - statistics.median(times[k]) for k in cases}

    scale = float(jnp.max(jnp.abs(h @ v)))
    checks = {
        "fast_compile_max_rel_diff": float(jnp.max(jnp.abs(h_fast @ v - h @ v))) / scale,
        "matmat_vs_matvec_max_rel_diff": float(jnp.max(jnp.abs((h @ block)[:, 0] - h @ block[:, 0]))) / scale,
        "vmap_vs_default_max_rel_diff": float(jnp.max(jnp.abs(h_vmap @ block - h @ block))) / scale,
    }
    return {
        "model": w.name,
        "num_params": n,
        "num_samples": w.num_samples,
        "batch_sizes": list(h.batch_sizes),
        "seconds": {k: summary(t) for k, t in times.items()},
        "compile_seconds": compile_s,
        "ratios": {k: summary(x) for k, x in ratios.items()},
        "targets": {k: {"target": TARGETS[k], "value": med[k], "met": med[k] <= TARGETS[k]} for k in TARGETS},
        "vectorize_default": h.vectorize,
        "traces": {"default": h.num_traces, "fast_compile": h_fast.num_traces, "vmap": h_vmap.num_traces},
        "checks": checks,
    }


def table(results: dict[str, Any]) -> str:
    rows = [
        "| workload | params | N (batches) | gradient s | HVP s (÷ gradient) | matmat8 s (÷ HVP) | "
        "matmat8 vmap s (÷ HVP) | compile s: gradient / HVP / matmat8 / matmat8 vmap | "
        "fast-compile HVP: compile s / run s |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for wid, r in results.items():
        s, q, c = r["seconds"], r["ratios"], r["compile_seconds"]

        def med(d: dict[str, Any], k: str) -> float:
            return d[k]["median"]

        rows.append(
            f"| {wid} {r['model']} | {r['num_params']:,} | {r['num_samples']} ({len(r['batch_sizes'])}) | "
            f"{med(s, 'gradient'):.4f} | {med(s, 'hvp'):.4f} ({med(q, 'hvp_vs_gradient'):.2f}×) | "
            f"{med(s, 'matmat8'):.4f} ({med(q, 'matmat8_vs_hvp'):.2f}×) | "
            f"{med(s, 'matmat8_vmap'):.4f} ({med(q, 'matmat8_vmap_vs_hvp'):.2f}×) | "
            f"{c['gradient']:.1f} / {c['hvp']:.1f} / {c['matmat8']:.1f} / {c['matmat8_vmap']:.1f} | "
            f"{c['hvp_fast_compile']:.1f} / {med(s, 'hvp_fast_compile'):.4f} |"
        )
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny models, one round, nothing written")
    parser.add_argument("--rounds", type=int, default=3, help="timed rounds after the warm-up (default 3)")
    parser.add_argument("--workloads", nargs="*", default=list(WORKLOADS))
    parser.add_argument("--output", type=Path, default=None, help=f"JSON path (default {RESULTS.name} unless --quick)")
    args = parser.parse_args(argv)
    size, rounds, warmup = ("tiny", 1, 1) if args.quick else ("default", args.rounds, 1)
    started = datetime.datetime.now(datetime.timezone.utc)
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    results = {}
    for wid in args.workloads:
        print(f"{wid} ({size}) ...", flush=True)
        results[wid] = bench_workload(wid, size, rounds, warmup)
    report = {
        "benchmark": "jax_adapters",
        "command": "python -m benchmarks.bench_jax_adapters"
        + ("" if not sys.argv[1:] else " " + " ".join(sys.argv[1:])),
        "date": started.isoformat(timespec="seconds"),
        "machine": {
            "cpu": cpu_model(),
            "cpu_count": os.cpu_count(),
            "jax_devices": [str(d) for d in jax.devices()],
            "load_average_at_start": None if load is None else [round(x, 2) for x in load],
            "load_average_at_end": [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None,
        },
        "versions": versions("jax", "jaxlib", "numpy", "scipy"),
        "settings": {
            "size": size,
            "dtype": "float32",
            "warmup_rounds": warmup,
            "timed_rounds": rounds,
            "targets": TARGETS,
            "fast_compile_options": FAST_COMPILE,
        },
        "workloads": results,
    }
    print()
    print(table(results))
    out = args.output or (None if args.quick else RESULTS)
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(
            json.dumps(report, indent=2, default=lambda o: float(o) if isinstance(o, np.floating) else str(o)) + "\n"
        )
        print(f"\nwrote {out}")


if __name__ == "__main__":
    main()
