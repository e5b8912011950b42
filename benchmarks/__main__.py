"""One entry point for the benchmarks: ``python -m benchmarks``.

Runs the comparison with PyHessian, curvlinops and hessian-eigenthings at matched accuracy
(``benchmarks/compare``, protocol in ``BENCHMARKS.md``), writes
``benchmarks/results/compare_cpu.json`` (``compare_gpu.json`` with ``--size large``) and
regenerates ``docs/benchmarks.md`` from every result file present.

    python -m benchmarks                      # the CPU suite (default sizes)
    python -m benchmarks --quick              # smoke run: tiny models, 1 round, nothing written
    python -m benchmarks --size large         # GPU sizes (on a CUDA device)
    python -m benchmarks --only top5,density  # some tasks
    python -m benchmarks --workloads W3       # some workloads
    python -m benchmarks --report-only        # rebuild docs/benchmarks.md from the JSON files

The other benchmark scripts run alone: ``python -m benchmarks.bench_algorithms``,
``benchmarks.bench_torch_adapters``, ``benchmarks.bench_trace``, ``benchmarks.bench_jax_adapters``.
"""

from __future__ import annotations

import os

# libgomp's busy-waiting threads collapse on an oversubscribed machine: on this shared 2-core
# host a Hessian-vector product took 0.45–1.0 s with 2 spinning threads and 0.063 s with
# OMP_WAIT_POLICY=PASSIVE. Must be set before torch loads its OpenMP runtime.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
PAGE = ROOT / "docs" / "benchmarks.md"

# What the default CPU run does per workload. A product on W1 (a ResNet over 512 images)
# costs ~2.5-3.5 s on this 2-core CPU, ~100x one on W3, and a Transformer product on W2
# ~0.6-0.8 s: the full task list fits the time budget on W3 only. Cells left out are listed as
# "not run" with this reason; `--only`/`--workloads` run them, `--size large` on a GPU.
_BUDGET = "CPU time budget: one product costs {} s here; run it with --workloads {} --only <task>"
CPU_PLAN: dict[str, dict] = {
    "W1": {
        "tasks": ("density",),
        "extra": {"density_probes": (1,)},
        "reference_density": (200, 2),
        "why": _BUDGET.format("~2.5-3.5", "W1"),
    },
    "W2": {
        "tasks": ("top1", "top5", "smallest", "density"),
        "extra": {"density_probes": (1,)},
        "reference_density": (200, 2),
        "why": _BUDGET.format("~0.6-0.8", "W2"),
    },
    "W3": {"cap_factor": 25.0, "extra": {"density_probes": (1, 8), "pyhessian_trace_samples": 30}},
}
QUICK_EXTRA = {
    "density_probes": (1, 2),
    "density_steps": 20,
    "pyhessian_trace_samples": 4,
    "trace_max_matvecs": 60,
    "loosen": False,  # calibration only tightens: fewer runs
}
# Every task and every workload once, on tiny models (a smoke run, not a measurement).
QUICK_PLAN: dict[str, dict] = {
    "W1": {"tasks": ("density",), "why": "--quick", "extra": QUICK_EXTRA},
    "W2": {"tasks": ("top1", "smallest", "trace"), "why": "--quick", "extra": QUICK_EXTRA},
    "W3": {"tasks": ("top5", "top20", "density"), "why": "--quick", "extra": QUICK_EXTRA},
}


def _command(argv: list[str]) -> str:
    """The command line as recorded in the results, without ``--output`` (a local path)."""
    kept, skip = [], False
    for a in argv:
        if skip:
            skip = False
        elif a == "--output":
            skip = True
        elif not a.startswith("--output="):
            kept.append(a)
    return " ".join(["python -m benchmarks", *kept])


def main(argv: list[str] | None = None) -> int:
    from benchmarks.compare import _report, _tasks

    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny models, 1 round, nothing written (smoke run)")
    parser.add_argument("--size", choices=["tiny", "default", "large"], default=None, help="workload size")
    parser.add_argument("--only", default=None, help=f"comma-separated tasks out of {','.join(_tasks.TASKS)}")
    parser.add_argument("--workloads", default="W1,W2,W3", help="comma-separated workloads (default W1,W2,W3)")
    parser.add_argument(
        "--tools", default="eigenscope,pyhessian,curvlinops,eigenthings", help="comma-separated tools to compare"
    )
    parser.add_argument("--rounds", type=int, default=None, help="timed rounds per task (default 3; --quick 1)")
    parser.add_argument("--threads", type=int, default=2, help="torch intra-op threads (default 2)")
    parser.add_argument("--cap-factor", type=float, default=None, help="peer product cap, × eigenscope's products")
    parser.add_argument("--output", type=Path, default=None, help="result JSON (default results/compare_cpu.json)")
    parser.add_argument("--report-only", action="store_true", help="only rebuild docs/benchmarks.md")
    parser.add_argument("--no-page", action="store_true", help="do not rebuild docs/benchmarks.md")
    args = parser.parse_args(argv)

    if args.report_only:
        print(f"wrote {_report.write_page(RESULTS, PAGE)}")
        return 0

    from benchmarks.compare import run

    size = args.size or ("tiny" if args.quick else "default")
    tasks = _tasks.TASKS if args.only is None else tuple(t.strip() for t in args.only.split(",") if t.strip())
    unknown = [t for t in tasks if t not in _tasks.TASKS]
    if unknown:
        parser.error(f"unknown task(s) {unknown}; choose from {', '.join(_tasks.TASKS)}")
    workloads = tuple(w.strip() for w in args.workloads.split(",") if w.strip())
    rounds = args.rounds or (1 if args.quick else 3)
    device = None
    if size == "large":
        import torch

        device = "cuda" if torch.cuda.is_available() else None
    if args.quick:
        output = args.output
        plan = QUICK_PLAN
    else:
        output = args.output or RESULTS / ("compare_gpu.json" if size == "large" else "compare_cpu.json")
        plan = CPU_PLAN if size == "default" else {}
    if args.only is not None:  # tasks asked for by name run even where the plan leaves them out
        plan = {w: {k: v for k, v in p.items() if k not in ("tasks", "why")} for w, p in plan.items()}
    with tempfile.TemporaryDirectory() as tmp:
        # --quick keeps its (tiny, exact) references out of the committed results.
        reference_dir = Path(tmp) if args.quick else RESULTS
        run(
            workloads=workloads,
            tasks=tasks,
            size=size,
            rounds=rounds,
            threads=args.threads,
            output=output,
            device=device,
            plan=plan,
            cap_factor=args.cap_factor or (3.0 if args.quick else 10.0),
            min_cap=30 if args.quick else 200,
            tools=tuple(t.strip() for t in args.tools.split(",") if t.strip()),
            reference_dir=reference_dir,
            command=_command(sys.argv[1:]),
        )
    if output is not None and not args.no_page:
        print(f"wrote {_report.write_page(RESULTS, PAGE)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
