"""Data-parallel Hessian-vector products over ``torch.distributed`` (gloo, CPU).

For each workload (zoo W3 and W2 at their default CPU sizes, float32) the same total data
is multiplied by

- ``1x1``: one process, one thread (the baseline),
- ``1x2``: one process, two threads (what one process makes of the two cores),
- ``2x1``: two gloo processes on localhost, one thread each, each holding half of the
  batches (``process_group`` of the torch adapters: one all-reduce per product).

Per configuration: the wall time of one product ``H @ v`` (and of an 8-vector ``H @ V``
on W3), each started after a barrier so that the ranks start together; the time inside
the product's all-reduce (``H.allreduce_seconds``: the transfer plus the wait for the
slower rank); and the time of a bare all-reduce of the same buffer after a barrier (the
transfer alone). The communication share is the all-reduce time over the product time.
A warm-up product is dropped; each figure is the median over the timed rounds (min and
max beside it) as rank 0 measured it.

This machine has two cores shared with other work: the two-process speed-up is bounded
by the cores (``1x2`` is the fair comparison), and the load average at the start of each
run is recorded.

Run ``python -m benchmarks.bench_distributed`` (``--quick``: tiny models, two rounds,
nothing written); the figures go to ``benchmarks/results/distributed.json``.
"""

from __future__ import annotations

import os

# Passive OpenMP threads: busy-waiting ones collapse on an oversubscribed two-core machine
# (see benchmarks/__main__.py). Set before torch loads its OpenMP runtime.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse
import datetime
import json
import pickle
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist

from benchmarks._common import cpu_model, summary, versions
from eigenscope import zoo
from eigenscope.adapters import torch as est

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results" / "distributed.json"
WORKLOADS = ("W3", "W2")
CONFIGS = {"1x1": (1, 1), "1x2": (1, 2), "2x1": (2, 1)}  # name -> (processes, threads per process)
BLOCK = 8


# ---- one rank ----------------------------------------------------------------------------
def _sync(world: int) -> None:
    if world > 1:
        dist.barrier()


def worker(name: str, size: str, rank: int, world: int, threads: int, rounds: int, block: bool) -> dict[str, Any]:
    """Time products on this rank's share of the batches (batches rank, rank + world, ...)."""
    torch.set_num_threads(threads)
    w = zoo.workload(name, size)
    shard = w.batches[rank::world]
    h = est.hessian(w.model, w.loss_fn, shard, process_group="auto")
    gen = torch.Generator().manual_seed(0)
    v = torch.randn(h.shape[0], generator=gen)
    vb = torch.randn(h.shape[0], BLOCK, generator=gen)
    cases = {"hvp": v, f"matmat{BLOCK}": vb} if block else {"hvp": v}
    out: dict[str, Any] = {
        "num_params": h.num_params,
        "num_samples": h.num_samples,
        "local_samples": h.num_local_samples,
        "local_batches": h.num_batches,
    }
    for case, x in cases.items():
        product, comm, cpu = [], [], []
        for r in range(rounds + 1):  # round 0 warms up
            _sync(world)
            h.reset_counters()
            cpu_start, start = time.process_time(), time.perf_counter()
            h @ x
            elapsed, cpu_elapsed = time.perf_counter() - start, time.process_time() - cpu_start
            if r:
                product.append(elapsed)
                comm.append(h.allreduce_seconds)
                cpu.append(cpu_elapsed)
        out[case] = {"product": product, "allreduce": comm, "cpu": cpu}
        if world > 1:  # the transfer alone: a bare all-reduce of the same buffer, ranks in step
            buf = torch.zeros(x.numel() + 3 * world)
            bare = []
            for r in range(rounds + 1):
                dist.barrier()
                start = time.perf_counter()
                dist.all_reduce(buf)
                if r:
                    bare.append(time.perf_counter() - start)
            out[case]["bare_allreduce"] = bare
    return out


def _worker_main(argv: list[str]) -> None:
    name, size, rank, world, threads, rounds, block, directory = argv
    rank, world = int(rank), int(world)
    if world > 1:
        store = f"file://{Path(directory) / 'store'}"
        dist.init_process_group("gloo", init_method=store, rank=rank, world_size=world)
    result = worker(name, size, rank, world, int(threads), int(rounds), block == "1")
    (Path(directory) / f"rank{rank}.pkl").write_bytes(pickle.dumps(result))
    if world > 1:
        dist.destroy_process_group()


# ---- one configuration -------------------------------------------------------------------
def run_config(name: str, size: str, procs: int, threads: int, rounds: int, block: bool) -> list[dict[str, Any]]:
    """Start ``procs`` processes of :func:`worker` and return their results."""
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "PYTHONPATH": str(ROOT)}
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "benchmarks.bench_distributed", "--worker"]
        args = [name, size, "{rank}", str(procs), str(threads), str(rounds), "1" if block else "0", tmp]
        ranks = [subprocess.Popen([*cmd, *(a.format(rank=r) for a in args)], env=env, cwd=ROOT) for r in range(procs)]
        for p in ranks:
            if p.wait(timeout=900) != 0:
                raise RuntimeError(f"a worker of {name} {procs}x{threads} failed (exit {p.returncode})")
        return [pickle.loads((Path(tmp) / f"rank{r}.pkl").read_bytes()) for r in range(procs)]


def bench_workload(name: str, size: str, rounds: int, block: bool) -> dict[str, Any]:
    results: dict[str, Any] = {"configs": {}}
    for config, (procs, threads) in CONFIGS.items():
        print(f"  {config}: {procs} process(es) x {threads} thread(s)", flush=True)
        ranks = run_config(name, size, procs, threads, rounds, block)
        first = ranks[0]
        results.update(num_params=first["num_params"], num_samples=first["num_samples"])
        entry: dict[str, Any] = {
            "processes": procs,
            "threads_per_process": threads,
            "samples_per_rank": [r["local_samples"] for r in ranks],
            "batches_per_rank": [r["local_batches"] for r in ranks],
        }
        for case in [c for c in first if isinstance(first[c], dict)]:
            product, comm = first[case]["product"], first[case]["allreduce"]
            entry[case] = {
                "seconds": summary(product),
                "allreduce_seconds": summary(comm),
                "communication_share": summary([c / p for c, p in zip(comm, product, strict=True)]),
                "seconds_other_ranks": [summary(r[case]["product"])["median"] for r in ranks[1:]],
                "cpu_seconds": summary(first[case]["cpu"]),
            }
            if "bare_allreduce" in first[case]:
                bare = first[case]["bare_allreduce"]
                entry[case]["bare_allreduce_seconds"] = summary(bare)
                entry[case]["transfer_share"] = statistics.median(bare) / statistics.median(product)
        results["configs"][config] = entry
    configs = results["configs"]
    cases = [c for c in configs["1x1"] if isinstance(configs["1x1"][c], dict)]
    median = {(k, c): configs[k][c]["seconds"]["median"] for k in configs for c in cases}
    results["speedup"] = {f"{k}_vs_1x1_{c}": median["1x1", c] / median[k, c] for k in ("1x2", "2x1") for c in cases}
    return results


def table(results: dict[str, Any]) -> str:
    lines = [
        "| workload | params | N | case | 1x1 s | 1x2 s | 2x1 s | 2x1 all-reduce s (share) | bare all-reduce s "
        "| CPU s/rank 1x1, 2x1 |",
        "|---|---:|---:|---|---:|---:|---:|---:|---:|---:|",
    ]
    for wid, res in results.items():
        c = res["configs"]
        for case in [k for k in c["1x1"] if isinstance(c["1x1"][k], dict)]:
            two = c["2x1"][case]
            lines.append(
                f"| {wid} | {res['num_params']} | {res['num_samples']} | {case} | "
                f"{c['1x1'][case]['seconds']['median']:.4f} | {c['1x2'][case]['seconds']['median']:.4f} | "
                f"{two['seconds']['median']:.4f} | {two['allreduce_seconds']['median']:.4f} "
                f"({two['communication_share']['median']:.1%}) | {two['bare_allreduce_seconds']['median']:.5f} | "
                f"{c['1x1'][case]['cpu_seconds']['median']:.4f}, {two['cpu_seconds']['median']:.4f} |"
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--worker"]:
        _worker_main(argv[1:])
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny models, two rounds, nothing written")
    parser.add_argument("--rounds", type=int, default=None, help="timed rounds (default 10 on W3, 4 on W2)")
    parser.add_argument("--workloads", nargs="*", default=list(WORKLOADS))
    parser.add_argument("--output", type=Path, default=None, help=f"JSON path (default {RESULTS.name} unless --quick)")
    args = parser.parse_args(argv)
    if not (dist.is_available() and dist.is_gloo_available()):
        raise SystemExit("torch.distributed with the gloo backend is needed")
    size = "tiny" if args.quick else "default"
    started = datetime.datetime.now(datetime.timezone.utc)
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    out = args.output or (None if args.quick else RESULTS)
    command = "python -m benchmarks.bench_distributed" + ("" if not argv else " " + " ".join(argv))
    results: dict[str, Any] = {}
    for wid in args.workloads:
        rounds = 2 if args.quick else args.rounds or (10 if wid == "W3" else 4)
        print(f"{wid} ({size}), {rounds} rounds ...", flush=True)
        results[wid] = bench_workload(wid, size, rounds, block=wid == "W3")
        results[wid]["rounds"] = rounds
    report = {
        "benchmark": "distributed",
        "command": command,
        "date": started.isoformat(timespec="seconds"),
        "machine": {
            "cpu": cpu_model(),
            "cpu_count": os.cpu_count(),
            "load_average_at_start": None if load is None else [round(x, 2) for x in load],
            "load_average_at_end": [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None,
            "backend": "gloo over localhost",
        },
        "versions": versions("torch", "numpy"),
        "settings": {
            "size": size,
            "dtype": "float32",
            "warmup_rounds": 1,
            "configs": {k: {"processes": p, "threads_per_process": t} for k, (p, t) in CONFIGS.items()},
            "sharding": "rank r holds batches r, r + world, ... of the workload",
        },
        "workloads": results,
    }
    print()
    print(table(results))
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(report, indent=2) + "\n")
        print(f"\nwrote {out}")


if __name__ == "__main__":
    main()
