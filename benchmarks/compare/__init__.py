"""eigenscope against PyHessian, curvlinops and hessian-eigenthings at matched accuracy.

``python -m benchmarks`` runs it (see ``benchmarks/__main__.py``); the protocol is
``BENCHMARKS.md``: workloads W1–W3 from ``eigenscope.zoo``, references computed once and
cached (``_reference``), every tool calibrated to the same accuracy target and then timed in
interleaved rounds (``_tasks``, ``_timing``), results written as JSON and rendered as the
tables of ``docs/benchmarks.md`` (``_report``).
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from . import _peers, _reference, _report, _tasks, _timing
from ._workloads import Setup

__all__ = ["RESULTS", "run"]

RESULTS = Path(__file__).resolve().parent.parent / "results"


def run(
    *,
    workloads: Sequence[str],
    tasks: Sequence[str],
    size: str,
    rounds: int,
    threads: int,
    output: Path | None,
    device: str | None = None,
    plan: dict[str, dict[str, Any]] | None = None,
    cap_factor: float = 10.0,
    min_cap: int = 200,
    tools: Sequence[str] = ("eigenscope", "pyhessian", "curvlinops", "eigenthings"),
    reference_dir: Path = RESULTS,
    command: str | None = None,
    log: Callable[[str], None] = print,
    merge: bool = True,
) -> dict[str, Any]:
    """Run the comparison and return (and write to ``output``) the result document.

    With ``merge`` (the default) an existing ``output`` of the same size keeps the workloads
    and tasks this run does not measure; every task entry records the command and date that
    measured it, so a page assembled from several runs says which run gave which figure.
    """
    import torch

    torch.set_num_threads(threads)
    started = time.perf_counter()
    doc: dict[str, Any] = {
        "benchmark": "compare",
        "command": command or "python -m benchmarks " + " ".join(sys.argv[1:]),
        "date": _timing.now(),
        "machine": _timing.machine(threads),
        "versions": _timing.versions(),
        "settings": {
            "size": size,
            "rounds": rounds,
            "threads": threads,
            "cap_factor": cap_factor,
            "tools": list(tools),
            "eig_target": _tasks.EIG_TARGET,
            "smallest_target": _tasks.SMALLEST_TARGET,
            "trace_target": _tasks.TRACE_TARGET,
            "trace_rtol": _tasks.TRACE_RTOL,
            "density_steps": _tasks.DENSITY_STEPS,
        },
        "workloads": {},
    }
    previous = _previous(output, size) if merge else {}
    stamp = {
        "command": doc["command"],
        "date": doc["date"],
        "load_average_at_start": doc["machine"].get("load_average_at_start"),
        "rounds": rounds,
    }
    for wid in workloads:
        wplan = (plan or {}).get(wid, {})
        wtasks = [t for t in tasks if t in wplan.get("tasks", tasks)]
        skipped = {t: wplan.get("why", "not in this run's plan") for t in tasks if t not in wtasks}
        log(f"{wid} ({size}) ...")
        setup = Setup.build(wid, size, device=device)
        entry: dict[str, Any] = {
            "setup": setup.describe(),
            "cap_factor": wplan.get("cap_factor", cap_factor),
            "tasks": {},
            "not_run": skipped,
        }
        log(f"  reference ({setup.num_params:,} parameters)")
        t0 = time.perf_counter()
        with _timing.host_blas_single_thread():
            ref = _reference.load_or_compute(
                setup,
                reference_dir,
                log=lambda m: log("  " + m),
                parts=_reference.parts_for(wtasks),
                density=wplan.get("reference_density"),
            )
        entry["reference"] = {
            k: {kk: vv for kk, vv in v.items() if kk not in ("nodes", "weights")} if isinstance(v, dict) else v
            for k, v in ref.items()
        }
        entry["reference_seconds"] = time.perf_counter() - t0
        ctx = _tasks.Context(
            setup=setup,
            ref=ref,
            rounds=rounds,
            log=log,
            cap_factor=wplan.get("cap_factor", cap_factor),
            min_cap=min_cap,
            tools=tuple(tools),
            extra=dict(wplan.get("extra", {})),
        )
        for task in wtasks:
            missing = _peers.available("pyhessian") or ("" if "pyhessian" in tools else "not selected (--tools)")
            if task in _tasks.NEEDS_PYHESSIAN and missing:
                entry["not_run"][task] = f"this task is a comparison with PyHessian, which is {missing}"
                log(f"  {task}: not run ({entry['not_run'][task]})")
                continue
            log(f"  {task}")
            t0 = time.perf_counter()
            entry["tasks"][task] = _tasks.TASK_RUNNERS[task](ctx)
            entry["tasks"][task]["task_seconds"] = time.perf_counter() - t0
            entry["tasks"][task]["measured_by"] = stamp
            log(f"  {task} done in {entry['tasks'][task]['task_seconds']:.0f} s")
            if output is not None:  # write as we go: a long run keeps what it has
                _write(output, _merged(doc, previous, {wid: entry}))
        doc["workloads"][wid] = entry
    doc["total_seconds"] = time.perf_counter() - started
    if output is not None:
        _write(output, _merged(doc, previous, {}))
        log(f"wrote {output}")
    log("")
    log(_report.compare_section(doc))
    return doc


def _previous(output: Path | None, size: str) -> dict[str, Any]:
    """The workloads of an earlier result file of the same size (empty when there is none)."""
    if output is None or not output.exists():
        return {}
    try:
        old = json.loads(output.read_text())
    except (OSError, ValueError):
        return {}
    if old.get("benchmark") != "compare" or old.get("settings", {}).get("size") != size:
        return {}
    for w in old.get("workloads", {}).values():
        for task in w.get("tasks", {}).values():
            task.setdefault("measured_by", {"command": old.get("command"), "date": old.get("date")})
    return old.get("workloads", {})


def _merged(doc: dict[str, Any], previous: dict[str, Any], current: dict[str, Any]) -> dict[str, Any]:
    """``doc`` with the earlier workloads and tasks it did not remeasure put back."""
    workloads = {wid: dict(w) for wid, w in previous.items()}
    for wid, entry in {**doc["workloads"], **current}.items():
        old = workloads.get(wid)
        if old is not None and old.get("setup") == entry["setup"]:
            tasks = {**old.get("tasks", {}), **entry["tasks"]}
            entry = {
                **entry,
                "tasks": tasks,
                "not_run": {t: why for t, why in entry["not_run"].items() if t not in tasks},
            }
        workloads[wid] = entry
    return doc | {"workloads": dict(sorted(workloads.items()))}


def _write(path: Path, doc: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, indent=1, default=_jsonable) + "\n")


def _jsonable(o: Any) -> Any:
    import numpy as np

    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    return str(o)
