"""Cost of the PyTorch curvature products on the zoo workloads W1–W3 (BENCHMARKS.md).

For each workload at its default (CPU) size, with ``torch.set_num_threads(2)``:

- one full-data gradient (the unit every product is compared with),
- one HVP split into its three passes (forward, first backward with ``create_graph``,
  second backward), which bounds what sharing the graph can save,
- one Hessian-vector product in each mode (``rev-rev`` double backward, ``fwd-rev``
  forward over reverse),
- a ``matmat`` of 8 vectors, looped (the default on CPU): the per-vector cost relative to
  one HVP (target ≤ 0.7: the first-order graph is shared); and once vectorized
  (``vmap``, ``vectorize=True``), a single run since it is far slower on CPU,
- one product with ``cache_graphs=True`` (target ≤ 0.7 of an HVP: no forward, no first
  backward),
- PyHessian's own HVP (``dataloader_hv_product``) when ``pyhessian`` is importable, with
  a check that it returns the same vector as ours,
- peak memory: the growth of the resident set (``VmHWM`` after resetting it through
  ``/proc/self/clear_refs``; ``ru_maxrss`` where that is unavailable) during each timed
  product (the largest over the rounds), and while building and holding the graph cache,
  next to the cache size the operator estimated.

Timings are interleaved (one of each per round; the HVP runs before and after the
8-vector matmat and right before the cached and fwd-rev products), a warm-up round is
dropped and each figure is the median of the remaining rounds (min and max beside it);
ratios are taken between products run seconds apart, round by round, then their median,
because absolute seconds drift on a shared machine.

Run ``python -m benchmarks.bench_torch_adapters`` (``--quick``: tiny models, one round,
nothing written); the figures go to ``benchmarks/results/torch_adapters.json``.
"""

from __future__ import annotations

import argparse
import copy
import datetime
import json
import os
import resource
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn.attention import SDPBackend, sdpa_kernel

from benchmarks._common import cpu_model, status_kib, summary, trim, versions
from benchmarks.compare._workloads import PackedInputs
from eigenscope import zoo
from eigenscope.adapters import torch as est

RESULTS = Path(__file__).resolve().parent / "results" / "torch_adapters.json"
WORKLOADS = ("W1", "W2", "W3")
TARGET = 0.7  # per-vector cost of a shared-graph or cached product, relative to one HVP


# ---- machine and memory ---------------------------------------------------------------


def _reset_peak() -> bool:
    try:
        Path("/proc/self/clear_refs").write_text("5")  # Linux: VmHWM := VmRSS
        return True
    except OSError:
        return False


def peak_growth_mib(fn: Callable[[], Any]) -> float:
    """Peak resident-set growth (MiB) while ``fn`` runs, above the resident set before it."""
    trim()
    base = status_kib("VmRSS")
    if base is not None and _reset_peak():
        fn()
        return (status_kib("VmHWM") - base) / 1024
    # Fallback: ru_maxrss only grows, so this is a lower bound when an earlier peak was higher.
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    fn()
    return (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024


# ---- PyHessian ---------------------------------------------------------------------------


def pyhessian_hvp(model: nn.Module, loss_fn: Callable, batches: list) -> Callable[[list[torch.Tensor]], Any] | None:
    """PyHessian's full-data HVP on a deep copy of the model (it calls ``.eval()`` and
    writes ``.grad``), or ``None`` when pyhessian is not installed."""
    try:
        from pyhessian import hessian as PyHessian
    except ImportError:
        return None
    model = copy.deepcopy(model)
    if isinstance(batches[0][0], dict):
        num_fields = batches[0][0]["ids"].shape[1]
        model = PackedInputs(model, num_fields)
        batches = [(torch.cat([x["ids"].to(y.dtype), x["dense"]], dim=1), y) for x, y in batches]
    h = PyHessian(model, loss_fn, dataloader=batches, cuda=False)

    def hvp(v: list[torch.Tensor]) -> list[torch.Tensor]:
        # Shim: the fused CPU attention kernel has no double backward, so PyHessian fails on
        # W2 as is; the math kernel (what eigenscope uses too) is the only change.
        with sdpa_kernel([SDPBackend.MATH]):
            return h.dataloader_hv_product(v)[1]

    return hvp


# ---- one workload ------------------------------------------------------------------------


def bench_workload(name: str, size: str, rounds: int, warmup: int) -> dict[str, Any]:
    w = zoo.workload(name, size)
    model, loss_fn, batches = w.model, w.loss_fn, w.batches
    # The unit: a whole HVP (forward, first and second backward). The graph cache is on by
    # default (cache_graphs="auto"), so it is turned off here and measured on its own below.
    h_rr = est.hessian(model, loss_fn, batches, mode="rev-rev", vectorize=False, cache_graphs=False)
    h_fr = est.hessian(model, loss_fn, batches, mode="fwd-rev", vectorize=False, cache_graphs=False)
    h_vec = est.hessian(model, loss_fn, batches, mode="rev-rev", vectorize=True, cache_graphs=False)
    h_cache = est.hessian(model, loss_fn, batches, cache_graphs=True)
    n = h_rr.shape[0]
    gen = torch.Generator().manual_seed(0)
    v = torch.randn(n, generator=gen)
    block = torch.randn(n, 8, generator=gen)
    theirs = pyhessian_hvp(model, loss_fn, batches)
    v_list = [t.clone() for t in h_rr.unflatten(v).values()]

    def gradient() -> None:
        h_rr.clear_cache()
        h_rr.gradient()

    phases: dict[str, list[float]] = {"phase_forward": [], "phase_first_backward": [], "phase_second_backward": []}

    def hvp_phases() -> None:
        """One rev-rev HVP split into its three passes, summed over the batches: where the time goes."""
        fm, params = h_rr._fmodel, h_rr._params
        split = [0.0, 0.0, 0.0]
        for _, x, y, _ in h_rr._batches:
            t0 = time.perf_counter()
            theta = [p.detach().requires_grad_(True) for p in params]
            loss = fm.loss(theta, x, y)
            t1 = time.perf_counter()
            g = torch.autograd.grad(loss, theta, create_graph=True)
            t2 = time.perf_counter()
            torch.autograd.grad(g, theta, grad_outputs=v_list)
            t3 = time.perf_counter()
            split = [split[0] + t1 - t0, split[1] + t2 - t1, split[2] + t3 - t2]
        for key, value in zip(phases, split, strict=True):
            phases[key].append(value)

    # One round, in this order. The HVP runs right before and right after the 8-vector
    # matmat, and right before the cached and fwd-rev products, so that each ratio compares
    # products timed seconds apart (the load of a shared machine drifts over minutes).
    sequence: list[tuple[str, Callable[[], Any]]] = [
        ("gradient", gradient),
        ("hvp_rev_rev", lambda: h_rr @ v),
        ("matmat8_loop", lambda: h_rr @ block),
        ("hvp_rev_rev", lambda: h_rr @ v),
        ("hvp_cached", lambda: h_cache @ v),
        ("hvp_fwd_rev", lambda: h_fr @ v),
    ]
    if theirs is not None:
        sequence.append(("pyhessian_hvp", lambda: theirs(v_list)))
    sequence.append(("hvp_phases", hvp_phases))

    times: dict[str, list[float]] = {k: [] for k, _ in sequence}
    memory_runs: dict[str, list[float]] = {k: [] for k, _ in sequence}
    ratios: dict[str, list[float]] = {
        "matmat8_loop_per_vector_vs_hvp": [],
        "cached_vs_hvp": [],
        "fwd_rev_vs_rev_rev": [],
        "hvp_vs_gradient": [],
    }
    if theirs is not None:
        ratios["pyhessian_vs_ours"] = []
    for r in range(warmup + rounds):
        got: dict[str, list[float]] = {k: [] for k, _ in sequence}
        for key, fn in sequence:
            # Peak memory is taken on the same run: the trim before it is outside the timing.
            elapsed: list[float] = []

            def timed(fn: Callable[[], Any] = fn, elapsed: list[float] = elapsed) -> None:
                t0 = time.perf_counter()
                fn()
                elapsed.append(time.perf_counter() - t0)

            mib = peak_growth_mib(timed)
            got[key].append(elapsed[0])
            if r >= warmup:
                times[key].append(elapsed[0])
                memory_runs[key].append(mib)
        if r < warmup:
            for values in phases.values():
                values.clear()
            continue
        before, after = got["hvp_rev_rev"]
        ratios["matmat8_loop_per_vector_vs_hvp"].append(got["matmat8_loop"][0] / 8 / ((before + after) / 2))
        ratios["cached_vs_hvp"].append(got["hvp_cached"][0] / after)
        ratios["fwd_rev_vs_rev_rev"].append(got["hvp_fwd_rev"][0] / after)
        ratios["hvp_vs_gradient"].append(before / got["gradient"][0])
        if theirs is not None:
            ratios["pyhessian_vs_ours"].append(got["pyhessian_hvp"][0] / after)
        print(
            f"  {name} round {r + 1 - warmup}/{rounds}: "
            + ", ".join(f"{k} {' '.join(f'{t:.3f}' for t in ts)}s" for k, ts in got.items()),
            flush=True,
        )

    # vmap over the 8 vectors: one timed run (it is far slower on CPU), against the median HVP.
    elapsed_vmap: list[float] = []

    def vmap_run() -> None:
        t0 = time.perf_counter()
        h_vec @ block
        elapsed_vmap.append(time.perf_counter() - t0)

    vmap_memory = peak_growth_mib(vmap_run)
    times["matmat8_vmap"] = elapsed_vmap
    print(f"  {name} matmat8_vmap (single run) {elapsed_vmap[0]:.3f}s", flush=True)
    times.pop("hvp_phases")
    times.update(phases)
    ratios["matmat8_vmap_per_vector_vs_hvp"] = [elapsed_vmap[0] / 8 / statistics.median(times["hvp_rev_rev"])]
    # A shared-graph or cached product cannot cost less than the second backward pass.
    ratios["second_backward_share_of_hvp"] = [
        b2 / (f + b1 + b2)
        for f, b1, b2 in zip(
            phases["phase_forward"], phases["phase_first_backward"], phases["phase_second_backward"], strict=True
        )
    ]

    memory = {k: max(vals) for k, vals in memory_runs.items() if k != "hvp_phases"}
    memory["matmat8_vmap"] = vmap_memory
    holder: list[Any] = []

    def build_cache() -> None:
        op = est.hessian(model, loss_fn, batches, cache_graphs=True)
        op @ v  # builds the graphs of the remaining batches
        holder.append(op)

    memory["cache_build_and_hold"] = peak_growth_mib(build_cache)
    memory["cache_estimate"] = holder[0].cache_bytes / 2**20
    holder.clear()

    checks: dict[str, float] = {}
    ref = h_rr @ v
    scale = float(ref.abs().max())
    checks["fwd_rev_max_rel_diff"] = float((h_fr @ v - ref).abs().max()) / scale
    checks["cached_max_rel_diff"] = float((h_cache @ v - ref).abs().max()) / scale
    checks["matmat_vs_matvec_max_rel_diff"] = float((h_rr @ torch.stack([v, v], 1) - ref[:, None]).abs().max()) / scale
    if theirs is not None:
        ph = torch.cat([t.reshape(-1) for t in theirs(v_list)])
        checks["pyhessian_max_rel_diff"] = float((ph - ref).abs().max()) / scale

    med = {k: statistics.median(r) for k, r in ratios.items()}
    return {
        "model": w.name,
        "num_params": n,
        "num_samples": w.num_samples,
        "batch_size": int(batches[0][1].shape[0]),
        "num_batches": len(batches),
        "mode_of_model": "train" if model.training else "eval",
        "seconds": {k: summary(t) for k, t in times.items()},
        "ratios": {k: summary(r) for k, r in ratios.items()},
        "targets": {
            "matmat8_per_vector_vs_hvp": {
                "target": TARGET,
                "value": med["matmat8_loop_per_vector_vs_hvp"],
                "met": med["matmat8_loop_per_vector_vs_hvp"] <= TARGET,
            },
            "cached_vs_hvp": {"target": TARGET, "value": med["cached_vs_hvp"], "met": med["cached_vs_hvp"] <= TARGET},
        },
        "peak_rss_growth_mib": memory,
        "checks": checks,
    }


# ---- report ------------------------------------------------------------------------------
def table(results: dict[str, Any]) -> str:
    rows = [
        "| workload | params | N | grad s | HVP rev-rev s | HVP fwd-rev s | matmat8 s (/vec ÷ HVP) | "
        "matmat8 vmap (/vec ÷ HVP) | cached s (÷ HVP) | PyHessian HVP s (÷ ours) | MiB: HVP / matmat8 / cache |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for wid, r in results.items():
        s, q, m = r["seconds"], r["ratios"], r["peak_rss_growth_mib"]
        med = lambda d, k: d[k]["median"]  # noqa: E731
        ph = f"{med(s, 'pyhessian_hvp'):.3f} ({med(q, 'pyhessian_vs_ours'):.2f}×)" if "pyhessian_hvp" in s else "n/a"
        rows.append(
            f"| {wid} {r['model']} | {r['num_params']:,} | {r['num_samples']} | {med(s, 'gradient'):.3f} | "
            f"{med(s, 'hvp_rev_rev'):.3f} | {med(s, 'hvp_fwd_rev'):.3f} ({med(q, 'fwd_rev_vs_rev_rev'):.2f}×) | "
            f"{med(s, 'matmat8_loop'):.3f} ({med(q, 'matmat8_loop_per_vector_vs_hvp'):.2f}) | "
            f"{med(s, 'matmat8_vmap'):.3f} ({med(q, 'matmat8_vmap_per_vector_vs_hvp'):.2f}) | "
            f"{med(s, 'hvp_cached'):.3f} ({med(q, 'cached_vs_hvp'):.2f}) | {ph} | "
            f"{m['hvp_rev_rev']:.0f} / {m['matmat8_loop']:.0f} / {m['cache_build_and_hold']:.0f} "
            f"(est. {m['cache_estimate']:.0f}) |"
        )
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny models, one round, nothing written")
    parser.add_argument("--rounds", type=int, default=3, help="timed rounds after the warm-up (default 3)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--workloads", nargs="*", default=list(WORKLOADS))
    parser.add_argument("--output", type=Path, default=None, help=f"JSON path (default {RESULTS.name} unless --quick)")
    parser.add_argument("--merge", action="store_true", help="keep the other workloads already in the JSON file")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    size, rounds, warmup = ("tiny", 1, 1) if args.quick else ("default", args.rounds, 1)
    started = datetime.datetime.now(datetime.timezone.utc)
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    out = args.output or (None if args.quick else RESULTS)
    command = "python -m benchmarks.bench_torch_adapters" + ("" if not sys.argv[1:] else " " + " ".join(sys.argv[1:]))
    results: dict[str, Any] = {}
    if args.merge and out is not None and out.exists():
        # Keep the workloads this run does not measure, each with the run that measured it.
        previous = json.loads(out.read_text())
        for wid, res in previous.get("workloads", {}).items():
            res.setdefault(
                "run",
                {
                    "command": previous.get("command"),
                    "date": previous.get("date"),
                    "torch_threads": previous.get("machine", {}).get("torch_threads"),
                    "load_average_at_start": previous.get("machine", {}).get("load_average_at_start"),
                },
            )
            results[wid] = res
    for wid in args.workloads:
        print(f"{wid} ({size}) ...", flush=True)
        results[wid] = bench_workload(wid, size, rounds, warmup)
        results[wid]["run"] = {
            "command": command,
            "date": started.isoformat(timespec="seconds"),
            "torch_threads": torch.get_num_threads(),
            "load_average_at_start": None if load is None else [round(x, 2) for x in load],
        }
        report = {
            "benchmark": "torch_adapters",
            "command": command,
            "date": started.isoformat(timespec="seconds"),
            "machine": {
                "cpu": cpu_model(),
                "cpu_count": os.cpu_count(),
                "torch_threads": torch.get_num_threads(),
                "load_average_at_start": None if load is None else [round(x, 2) for x in load],
                "note": "each workload's own 'run' records the command, threads and load it was measured with",
            },
            "versions": versions("torch", "numpy", "scipy", "pyhessian"),
            "settings": {
                "size": size,
                "dtype": "float32",
                "warmup_rounds": warmup,
                "timed_rounds": rounds,
                "target_per_vector_ratio": TARGET,
            },
            "workloads": results,
        }
        if out is not None:  # written after every workload, so that a long run keeps what it measured
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(json.dumps(report, indent=2) + "\n")
    print()
    print(table(results))
    if out is not None:
        print(f"\nwrote {out}")


if __name__ == "__main__":
    main()
