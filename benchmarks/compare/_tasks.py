"""The tasks of BENCHMARKS.md, each run for every tool at matched accuracy.

Every task follows the same pattern:

1. **Calibration** (also the warm-up): each tool walks a ladder of its own settings (loose to
   tight: a tolerance, a number of steps) from its default, towards looser settings while it
   meets the accuracy target and towards tighter ones until it does. The loosest setting that
   meets the target is the tool's *matched* setting. Every calibration run is recorded.
2. **Timing**: ``rounds`` rounds, each running every tool once at its matched setting, in turn
   (A/B interleaving); medians with min/max; ratios ``tool / eigenscope`` taken within a
   round, then their median.

A tool that cannot do a task gets ``"cannot"`` with the reason. A tool whose tightest setting
misses the target, or that hits the product cap, is reported with its best accuracy and the
products it spent, and its ratio is a lower bound (``capped``).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from . import _peers as P

# The density task lives in ``_density``; its names stay importable from here (``_tasks.DENSITY_STEPS``).
from ._density import DENSITY_STEPS as DENSITY_STEPS
from ._density import density_task
from ._density import jacobi_from_stem as jacobi_from_stem
from ._density import prefix_rule as prefix_rule
from ._timing import Meter, Run, interleave, paired_ratios, summarize_runs, summary, timed
from ._workloads import Setup

TASKS = ("top1", "top5", "top20", "smallest", "trace", "density")
NEEDS_PYHESSIAN = ("trace", "density")  # tasks measured as a ratio to PyHessian only
EIG_TARGET = 1e-3  # max relative error of top-k eigenvalues
SMALLEST_TARGET = 1e-2
TRACE_TARGET = 1e-2  # relative error
TRACE_RTOL = 0.005  # standard-error target: 2 standard errors = 1%


@dataclass
class Context:
    setup: Setup
    ref: dict[str, Any]
    rounds: int
    log: Callable[[str], None]
    cap_factor: float = 20.0  # a peer run may spend at most this many times eigenscope's products
    min_cap: int = 200
    quick: bool = False
    tools: tuple[str, ...] = ("eigenscope", "pyhessian", "curvlinops", "eigenthings")
    extra: dict[str, Any] = field(default_factory=dict)


# ---- accuracy ---------------------------------------------------------------------------
def max_rel_error(values: list[float] | None, reference: list[float], k: int) -> float:
    """Max relative error of the k values against the reference, both sorted (descending for
    the top of the spectrum: the reference's order)."""
    if not values or len(values) < k or not np.all(np.isfinite(values)):
        return math.inf
    ref = np.asarray(reference[:k], dtype=float)
    v = np.sort(np.asarray(values, dtype=float))
    v = v[::-1][:k] if ref[0] >= ref[-1] else v[:k]
    return float(np.max(np.abs(v - ref) / np.abs(ref)))


# ---- calibration ---------------------------------------------------------------------------
@dataclass
class Ladder:
    """A tool's settings from loose to tight; ``start`` is where the walk begins (its default
    when it has one); ``label`` names a setting in reports."""

    tool: str
    settings: list[dict[str, Any]]
    start: int
    make: Callable[[dict[str, Any]], Callable[[Meter], dict[str, Any]]]
    label: Callable[[dict[str, Any]], str]
    default: int | None = None  # index of the tool's default setting, if on the ladder


def calibrate(
    ladder: Ladder,
    error_of: Callable[[Run], float],
    target: float,
    cap: int | None,
    log: Callable[[str], None],
    loosen: bool = True,
) -> dict[str, Any]:
    trials: dict[int, dict[str, Any]] = {}
    budget = None if cap is None else 3 * cap  # products for the whole walk

    def spent() -> int:
        return sum(t["products"] for t in trials.values())

    def attempt(i: int) -> bool:
        run = timed(ladder.make(ladder.settings[i]), cap)
        err = math.inf if run.outcome.get("capped") else error_of(run)
        trials[i] = {"setting": ladder.label(ladder.settings[i]), "error": err, **run.to_dict()}
        trials[i]["capped"] = bool(run.outcome.get("capped"))
        trials[i].pop("nodes", None)
        trials[i].pop("weights", None)
        capped = " (capped)" if run.outcome.get("capped") else ""
        log(f"      {ladder.tool} {ladder.label(ladder.settings[i])}: error {err:.2e}, {run.products} products{capped}")
        return err <= target

    i = ladder.start
    chosen = None
    if attempt(i):
        chosen = i
        while loosen and i > 0:
            i -= 1
            if not attempt(i):
                break
            chosen = i
    else:
        while i + 1 < len(ladder.settings) and not trials[i].get("capped") and (budget is None or spent() < budget):
            i += 1
            if attempt(i):
                chosen = i
                break
    if ladder.default is not None and ladder.default not in trials:
        attempt(ladder.default)
    out: dict[str, Any] = {"trials": [trials[j] for j in sorted(trials)], "chosen": None}
    if chosen is not None:
        out["chosen"] = ladder.label(ladder.settings[chosen])
        out["chosen_index"] = chosen
    else:
        best = min(trials, key=lambda j: trials[j]["error"])
        out["best_index"] = best
    if ladder.default is not None:
        out["default"] = trials[ladder.default]
    return out


def _cap(ctx: Context, ours_products: float) -> int:
    return int(max(ctx.min_cap, ctx.cap_factor * ours_products))


def run_matched(
    ctx: Context,
    ladders: list[Ladder],
    error_of: Callable[[Run], float],
    target: float,
    cannot: dict[str, str],
    start_from: Callable[[Ladder, int], int] | None = None,
) -> dict[str, Any]:
    """Calibrate every tool (eigenscope first: its products set the peers' cap and may set
    where a peer's walk starts), then time ``ctx.rounds`` interleaved rounds at the matched
    settings."""
    result: dict[str, Any] = {"target": target, "tools": {}}
    cases: dict[str, Callable[[Meter], dict[str, Any]]] = {}
    caps: dict[str, int | None] = {}
    ours_products = None
    for ladder in ladders:
        if ladder.tool not in ctx.tools and ladder.tool != "eigenscope":
            result["tools"][ladder.tool] = {"status": "not measured", "reason": "not selected (--tools)"}
            continue
        why = P.available(ladder.tool)
        if why:
            result["tools"][ladder.tool] = {"status": "cannot", "reason": why}
            continue
        cap = None if ladder.tool == "eigenscope" else _cap(ctx, ours_products or ctx.min_cap)
        if start_from is not None and ours_products is not None:
            ladder.start = start_from(ladder, ours_products)
        ctx.log(f"    calibrating {ladder.tool}" + (f" (cap {cap} products)" if cap else ""))
        cal = calibrate(ladder, error_of, target, cap, ctx.log, loosen=ctx.extra.get("loosen", True))
        entry: dict[str, Any] = {"calibration": cal, "cap": cap}
        if cal["chosen"] is not None:
            setting = ladder.settings[cal["chosen_index"]]
            entry.update(status="matched", setting=cal["chosen"])
            cases[ladder.tool] = ladder.make(setting)
            caps[ladder.tool] = None
            if ladder.tool == "eigenscope":
                ours_products = next(t["products"] for t in cal["trials"] if t["setting"] == cal["chosen"])
        else:
            best = cal["trials"][
                [t["setting"] for t in cal["trials"]].index(ladder.label(ladder.settings[cal["best_index"]]))
            ]
            entry.update(
                status="missed",
                setting=best["setting"],
                best_error=best["error"],
                note="no setting on the ladder met the target (or the product cap was reached)",
            )
        result["tools"][ladder.tool] = entry
    for tool, reason in cannot.items():
        result["tools"][tool] = {"status": "cannot", "reason": reason}
    for tool in P.TOOLS:
        result["tools"].setdefault(tool, {"status": "not measured", "reason": "not selected (--tools)"})
    if not cases:
        return result
    ctx.log(f"    timing {ctx.rounds} interleaved rounds: {', '.join(cases)}")
    runs = interleave(cases, ctx.rounds, ctx.log, caps)
    for tool, tool_runs in runs.items():
        entry = result["tools"][tool]
        entry["timing"] = summarize_runs(tool_runs)
        for r in entry["timing"]["runs"]:
            r.pop("nodes", None)
            r.pop("weights", None)
        errors = [error_of(r) for r in tool_runs]
        entry["errors"] = summary(errors)
        entry["target_met_every_round"] = all(e <= target for e in errors)
    base = runs.get("eigenscope")
    if base:
        for tool, tool_runs in runs.items():
            if tool != "eigenscope":
                result["tools"][tool]["ratio_vs_eigenscope"] = summary(paired_ratios(tool_runs, base))
        for entry in result["tools"].values():
            if entry.get("status") == "missed":
                # Lower bound: the best (capped or inaccurate) attempt against eigenscope's median.
                best = min(entry["calibration"]["trials"], key=lambda t: t["error"])
                entry["ratio_vs_eigenscope_lower_bound"] = best["seconds"] / statistics.median(r.seconds for r in base)
    return result


# ---- top-k and smallest ------------------------------------------------------------------
EIGENSCOPE_TOLS = [1e-1, 3e-2, 1e-2, 3e-3, 1e-3, 1e-4, 1e-5, 1e-6]
ARPACK_TOLS = [1e-1, 1e-2, 1e-3, 1e-4, 1e-5, 1e-6, 0.0]
PYHESSIAN_TOLS = [1e-2, 1e-3, 1e-4, 1e-5, 1e-6, 1e-7]


def _steps_ladder(k: int, most: int = 400) -> list[int]:
    out, m = [], float(2 * k)
    while m <= most:
        out.append(round(m))
        m = max(m * 1.5, m + 2)
    return sorted(set(out))


def eig_task(ctx: Context, k: int, which: str) -> dict[str, Any]:
    s = ctx.setup
    ref_key = "top" if which == "LA" else "smallest"
    reference = ctx.ref[ref_key]["eigenvalues"]
    target = EIG_TARGET if which == "LA" else SMALLEST_TARGET
    seed = 0

    def error_of(run: Run) -> float:
        return max_rel_error(run.outcome.get("eigenvalues"), reference, k)

    ladders = [
        Ladder(
            "eigenscope",
            [{"tol": t} for t in EIGENSCOPE_TOLS],
            EIGENSCOPE_TOLS.index(1e-2),
            lambda st: lambda m: P.eigenscope_eigsh(s, m, k=k, which=which, tol=st["tol"], seed=seed),
            lambda st: f"tol={st['tol']:g}",
        )
    ]
    cannot = {}
    if which == "LA":
        ladders.append(
            Ladder(
                "pyhessian",
                [{"tol": t, "max_iter": 100 if t == 1e-3 else 1000} for t in PYHESSIAN_TOLS],
                1,
                lambda st: (
                    lambda m: P.pyhessian_eigenvalues(s, m, k=k, tol=st["tol"], max_iter=st["max_iter"], seed=seed)
                ),
                lambda st: f"tol={st['tol']:g}, maxIter={st['max_iter']}",
                default=1,
            )
        )
    else:
        cannot["pyhessian"] = "power iteration finds the largest-magnitude eigenvalues only (no shift, no 'SA')"
    ladders.append(
        Ladder(
            "curvlinops",
            [{"tol": t} for t in ARPACK_TOLS],
            ARPACK_TOLS.index(1e-2),
            lambda st: lambda m: P.curvlinops_eigsh(s, m, k=k, which=which, tol=st["tol"], seed=seed),
            lambda st: f"tol={st['tol']:g}" + (" (ARPACK default)" if st["tol"] == 0 else ""),
        )
    )
    steps = _steps_ladder(k)
    ladders.append(
        Ladder(
            "eigenthings",
            [{"max_iter": m} for m in steps],
            0,  # replaced below by the step count nearest eigenscope's products
            lambda st: lambda m: P.eigenthings_lanczos(s, m, k=k, which=which, max_iter=st["max_iter"], seed=seed),
            lambda st: f"max_iter={st['max_iter']}" + (" (default 2k)" if st["max_iter"] == 2 * k else ""),
        )
    )

    def near_ours(ladder: Ladder, ours_products: int) -> int:
        if ladder.tool != "eigenthings":
            return ladder.start
        return int(np.argmin([abs(st["max_iter"] - ours_products) for st in ladder.settings]))

    out = run_matched(ctx, ladders, error_of, target, cannot, start_from=near_ours)
    out["k"], out["which"], out["reference"] = k, which, reference[:k]
    return out


def smallest_task(ctx: Context) -> dict[str, Any]:
    return eig_task(ctx, 1, "SA")


# ---- trace ---------------------------------------------------------------------------------
TRACE_METHODS = ("hutch++", "xtrace")


def trace_task(ctx: Context) -> dict[str, Any]:
    """Trace to 1%: eigenscope's adaptive Hutch++/XTrace (standard error ≤ 0.5%, i.e. ~1% at two
    standard errors) against the products PyHessian's Hutchinson loop needs for the same
    standard error, from the variance of its own probe values."""
    s, log = ctx.setup, ctx.log
    truth = float(ctx.ref["trace"]["estimate"])
    seeds = list(range(ctx.rounds))
    samples_per_seed = ctx.extra.get("pyhessian_trace_samples", 30)
    cap = ctx.extra.get("trace_max_matvecs")
    cases: dict[str, Callable[[Meter], dict[str, Any]]] = {}
    for method in TRACE_METHODS:
        for r in seeds:
            cases[f"eigenscope {method} seed {r}"] = lambda m, method=method, r=r: P.eigenscope_trace(
                s, m, method=method, rtol=TRACE_RTOL, seed=r, max_matvecs=cap
            )
    # PyHessian's own loop with tol=0 (never stops early) for a fixed number of probes.
    for r in seeds:
        cases[f"pyhessian samples seed {r}"] = lambda m, r=r: P.pyhessian_trace(
            s, m, max_iter=samples_per_seed, tol=0.0, seed=r
        )
    # Warm-up (excluded): one short run of each tool.
    timed(lambda m: P.eigenscope_trace(s, m, method="hutch++", rtol=0.5, seed=99))
    timed(lambda m: P.pyhessian_trace(s, m, max_iter=2, tol=0.0, seed=99))
    # Interleave: round r runs each tool's seed-r case.
    runs: dict[str, list[Run]] = {}
    for r in seeds:
        keys = [k for k in cases if k.endswith(f"seed {r}")]
        for key in keys:
            runs[key] = interleave({key: cases[key]}, 1, log)[key]
    out: dict[str, Any] = {"target": TRACE_TARGET, "rtol": TRACE_RTOL, "reference": ctx.ref["trace"], "tools": {}}
    per_method: dict[str, list[Run]] = {}
    for method in TRACE_METHODS:
        tool_runs = [runs[f"eigenscope {method} seed {r}"][0] for r in seeds]
        per_method[method] = tool_runs
        errors = [abs(r.outcome["estimate"] - truth) / abs(truth) for r in tool_runs]
        out["tools"][f"eigenscope {method}"] = {
            "status": "matched" if all(e <= TRACE_TARGET for e in errors) else "missed",
            "setting": f"method={method!r}, rtol={TRACE_RTOL}",
            "timing": summarize_runs(tool_runs),
            "errors": summary(errors),
            "relative_std_errors": summary([r.outcome["std_error"] / abs(truth) for r in tool_runs]),
            "target_met_every_round": all(e <= TRACE_TARGET for e in errors),
        }
    best = min(TRACE_METHODS, key=lambda m: statistics.median(r.products for r in per_method[m]))
    out["eigenscope_choice"] = best
    ours = per_method[best]

    ph_runs = [runs[f"pyhessian samples seed {r}"][0] for r in seeds]
    # Hutchinson's standard error after N probes is sd / sqrt(N): the N at which it reaches the
    # same target as eigenscope's (0.5% of the trace, i.e. 1% at two standard errors), from the
    # spread of PyHessian's own probe values, seed by seed.
    needed = []
    for run in ph_runs:
        sd = float(np.std(run.outcome["samples"], ddof=1))
        needed.append(math.ceil((sd / (TRACE_RTOL * abs(truth))) ** 2))
    n_med = int(statistics.median(needed))
    sec_per_product = statistics.median(r.seconds / r.products for r in ph_runs)
    est_seconds = n_med * sec_per_product
    ours_products = statistics.median(r.products for r in ours)
    ours_seconds = statistics.median(r.seconds for r in ours)
    # PyHessian at its defaults (maxIter=100, tol=1e-3): what it returns, and when it stops.
    defaults = [timed(lambda m, r=r: P.pyhessian_trace(s, m, max_iter=100, tol=1e-3, seed=r)) for r in seeds]
    out["tools"]["pyhessian"] = {
        "status": "estimated",
        "setting": f"trace(maxIter={samples_per_seed}, tol=0) per seed, then N = (sd / ({TRACE_RTOL} |tr|))^2",
        "timing": summarize_runs(ph_runs),
        "products_needed_per_seed": needed,
        "products_needed": n_med,
        "estimated_seconds": est_seconds,
        "products_ratio_vs_eigenscope": n_med / ours_products,
        "estimated_time_ratio_vs_eigenscope": est_seconds / ours_seconds,
        "relative_sample_sd": summary([float(np.std(r.outcome["samples"], ddof=1)) / abs(truth) for r in ph_runs]),
        "default_settings": {
            "products": summary([r.products for r in defaults]),
            "errors": summary([abs(r.outcome["estimate"] - truth) / abs(truth) for r in defaults]),
            "seconds": summary([r.seconds for r in defaults]),
        },
    }
    for r in out["tools"]["pyhessian"]["timing"]["runs"]:
        r.pop("samples", None)
    for tool in ("curvlinops", "eigenthings"):
        out["tools"][tool] = {"status": "not measured", "reason": "BENCHMARKS.md compares the trace with PyHessian"}
    return out


TASK_RUNNERS: dict[str, Callable[[Context], dict[str, Any]]] = {
    "top1": lambda ctx: eig_task(ctx, 1, "LA"),
    "top5": lambda ctx: eig_task(ctx, 5, "LA"),
    "top20": lambda ctx: eig_task(ctx, 20, "LA"),
    "smallest": smallest_task,
    "trace": trace_task,
    "density": density_task,
}
