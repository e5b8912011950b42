"""Markdown for ``docs/benchmarks.md``, rendered from the committed result JSON files.

``python -m benchmarks --report-only`` rebuilds the page from whichever of these exist in
``benchmarks/results/``: ``algorithms.json``, ``torch_adapters.json``, ``trace.json``,
``jax_adapters.json`` and ``compare_cpu.json`` (plus ``compare_gpu.json`` from ``--size large``).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from benchmarks._speed_sections import compile_section, jax_overhead_section, krylov_section, resnet18_section

from ._peers import LABELS

TASK_TITLES = {
    "top1": "top-1 eigenvalue",
    "top5": "top-5 eigenvalues",
    "top20": "top-20 eigenvalues",
    "smallest": "smallest eigenvalue (`which='SA'`)",
}

TARGETS = {
    "density_equal": 1.7,
    "density_matched": 3.0,
    "top5": 5.0,
    "top1": 1.5,
    "trace_products": 3.0,
}


# ---- small formatting helpers ---------------------------------------------------------------
def _f(x: float | None, digits: int = 3) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "–"
    if x == 0:
        return "0"
    if abs(x) >= 1000 or abs(x) < 10 ** (-digits + 1):
        return f"{x:.{digits - 1}e}"
    return f"{x:.{digits}g}"


def _med(s: dict[str, Any] | None, digits: int = 3) -> str:
    if not s:
        return "–"
    if s.get("n", 1) > 1 and s["min"] != s["max"]:
        return f"{_f(s['median'], digits)} [{_f(s['min'], digits)}–{_f(s['max'], digits)}]"
    return _f(s["median"], digits)


def _pct(s: dict[str, Any] | None) -> str:
    return "–" if not s else f"{100 * s['median']:.0f}%"


def _ratio(s: dict[str, Any] | None) -> str:
    if not s:
        return "–"
    return f"**{s['median']:.2f}×** [{s['min']:.2f}–{s['max']:.2f}]" if s.get("n", 1) > 1 else f"**{s['median']:.2f}×**"


def _err(e: dict[str, Any] | float | None) -> str:
    if e is None:
        return "–"
    if isinstance(e, dict):
        return _f(e["max"], 2)  # the worst round
    return _f(e, 2)


# ---- the comparison ---------------------------------------------------------------------------
def _eig_rows(task: str, res: dict[str, Any]) -> list[str]:
    rows = []
    target = res["target"]
    for tool in ("eigenscope", "pyhessian", "curvlinops", "eigenthings"):
        e = res["tools"].get(tool)
        label = LABELS[tool]
        if e is None:
            continue
        if e.get("status") in ("cannot", "not measured"):
            rows.append(f"| {TASK_TITLES[task]} | {label} | {e['status']}: {e['reason']} | | | | | | | |")
            continue
        if e.get("status") == "missed":
            trials = e["calibration"]["trials"]
            best = min(trials, key=lambda t: t["error"])
            lb = e.get("ratio_vs_eigenscope_lower_bound")
            rows.append(
                f"| {TASK_TITLES[task]} | {label} | missed {_f(target, 1)}: best {best['setting']} → error "
                f"{_f(best['error'], 2)}{' (product cap)' if best.get('capped') else ''} | {best['products']} | "
                f"{_f(best['seconds'])} (1 run) | {_f(best['seconds_per_product'])} | "
                f"{100 * best['outside_share']:.0f}% | {_f(best['peak_rss_mib'], 4)} | "
                f"{'> ' + format(lb, '.2f') + '×' if lb else '–'} |"
            )
            continue
        t = e["timing"]
        ratio = "1" if tool == "eigenscope" else _ratio(e.get("ratio_vs_eigenscope"))
        rows.append(
            f"| {TASK_TITLES[task]} | {label} | {e['setting']} → error {_err(e['errors'])} | "
            f"{_med(t['products'])} | {_med(t['seconds'])} | {_med(t['seconds_per_product'])} | "
            f"{_pct(t['outside_share'])} | {_f(t['peak_rss_mib']['median'], 4)} | {ratio} |"
        )
    ph = res["tools"].get("pyhessian", {})
    default = ph.get("calibration", {}).get("default")
    if default:
        rows.append(
            f"| {TASK_TITLES[task]} | PyHessian at its defaults | {default['setting']} → error "
            f"{_f(default['error'], 2)} | {default['products']} | {_f(default['seconds'])} (1 run) | | | | |"
        )
    return rows


def _trace_rows(res: dict[str, Any]) -> list[str]:
    rows = [
        "| tool | setting | products (median [min–max] over seeds) | error (max over seeds) | "
        "std error / trace | time s | ÷ eigenscope |",
        "|---|---|---|---|---|---|---|",
    ]
    choice = res.get("eigenscope_choice")
    for method in ("hutch++", "xtrace"):
        e = res["tools"][f"eigenscope {method}"]
        t = e["timing"]
        mark = " (chosen)" if method == choice else ""
        rows.append(
            f"| eigenscope {method}{mark} | {e['setting']} | {_med(t['products'])} | {_err(e['errors'])} | "
            f"{_med(e['relative_std_errors'], 2)} | {_med(t['seconds'])} | 1 |"
        )
    ph = res["tools"]["pyhessian"]
    rows.append(
        f"| PyHessian `trace()` (Hutchinson) | products for the same standard error, from the variance of "
        f"its own probe values ({ph['setting']}) | **{ph['products_needed']}** (per seed: "
        f"{', '.join(str(n) for n in ph['products_needed_per_seed'])}; sd of zᵀHz = "
        f"{_med(ph['relative_sample_sd'], 2)} × trace) | – | 0.5% (by construction) | "
        f"{_f(ph['estimated_seconds'])} (estimated: products × its measured "
        f"{_f(ph['timing']['seconds_per_product']['median'])} s/product) | "
        f"**{ph['products_ratio_vs_eigenscope']:.1f}× products**, "
        f"~{ph['estimated_time_ratio_vs_eigenscope']:.1f}× time |"
    )
    d = ph["default_settings"]
    rows.append(
        f"| PyHessian at its defaults | `trace(maxIter=100, tol=1e-3)` | {_med(d['products'])} | "
        f"{_err(d['errors'])} | – | {_med(d['seconds'])} | |"
    )
    return rows


def _is_w1(res: dict[str, Any]) -> bool:
    """Whether a density entry measures W1 (newer files) or the smoothed-density L1 only (older)."""
    return "target_w1" in res.get("matched", {}) or any("w1" in e.get("eigenscope", {}) for e in res["equal"].values())


def density_metric_text(res: dict[str, Any]) -> str:
    """The sentence that says which distance a density table shows."""
    grid = f"on {res['grid'][2]} points over [{_f(res['grid'][0])}, {_f(res['grid'][1])}]"
    if _is_w1(res):
        rel = res.get("sigma_rel", 0.01)
        return (
            "accuracy is **W1**, the 1-Wasserstein distance between the spectral measures (nodes and weights, "
            "atoms included: ∫ |F − F_ref|, exact, no grid) divided by the reference's spectral width; beside "
            f"it the L1 distance of the densities smoothed by a Gaussian of σ = {_f(res['sigma'])} "
            f"({100 * rel:g} % of that width) {grid}"
        )
    return (
        "accuracy is the L1 distance of the densities smoothed by a Gaussian of "
        f"σ = {_f(res['sigma'])} {grid} (an older result: W1 was not recorded)"
    )


def _density_rows(res: dict[str, Any]) -> list[str]:
    rows = [
        "| setting | tool | steps × probes | W1 ÷ width (median [min–max]) | L1 (smoothed) | time s | products | "
        "s/product | outside products | peak RSS MiB | PyHessian ÷ eigenscope |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]

    def row(setting: str, label: str, shape: str, e: dict[str, Any], ratio: str) -> str:
        t = e["timing"]
        return (
            f"| {setting} | {label} | {shape} | {_med(e.get('w1'))} | {_med(e.get('l1'))} | {_med(t['seconds'])} | "
            f"{_med(t['products'])} | {_med(t['seconds_per_product'])} | {_pct(t['outside_share'])} | "
            f"{_f(t['peak_rss_mib']['median'], 4)} | {ratio} |"
        )

    m = res["num_steps"]
    shim = LABELS["pyhessian"] + " (torch.eig shim)"
    for p, entry in res["equal"].items():
        rows.append(row("equal settings", LABELS["eigenscope"], f"{m} × {p}", entry["eigenscope"], ""))
        ratio = _ratio(entry["pyhessian"].get("ratio_vs_eigenscope"))
        rows.append(row("equal settings", shim, f"{m} × {p}", entry["pyhessian"], ratio))
    mt = res.get("matched")
    if mt:
        st = mt["setting"]
        what = f"W1 ≤ {_f(mt['target_w1'])}" if "target_w1" in mt else f"L1 ≤ {_f(mt['target_l1'])}"
        setting = f"matched accuracy ({what}, PyHessian's median at {m} × 1)"
        shape = f"{st['num_steps']} × {st['num_probes']}"
        rows.append(row(setting, "eigenscope", shape, mt["eigenscope"], _ratio(mt.get("ratio_vs_eigenscope"))))
        if "w1" in mt.get("pyhessian", {}):  # newer files score PyHessian's paired runs too
            rows.append(row(setting, shim, f"{m} × 1", mt["pyhessian"], ""))
    return rows


def targets(doc: dict[str, Any]) -> list[dict[str, Any]]:
    """The issue's targets against the measured figures, per workload."""
    out = []
    for wid, w in doc["workloads"].items():
        tasks = w["tasks"]
        d = tasks.get("density")
        if d:
            for p, entry in d["equal"].items():
                r = entry["pyhessian"].get("ratio_vs_eigenscope")
                if r:
                    out.append(_target(wid, f"density, equal settings ({d['num_steps']} × {p})", r["median"], 1.7))
            r = d.get("matched", {}).get("ratio_vs_eigenscope")
            if r:
                metric = "W1" if _is_w1(d) else "L1"
                out.append(_target(wid, f"density, matched accuracy ({metric})", r["median"], 3.0))
        for task, goal in (("top5", 5.0), ("top1", 1.5)):
            t = tasks.get(task)
            if not t:
                continue
            ph = t["tools"].get("pyhessian", {})
            if ph.get("ratio_vs_eigenscope"):
                out.append(
                    _target(wid, f"{TASK_TITLES[task]} at 1e-3 vs PyHessian", ph["ratio_vs_eigenscope"]["median"], goal)
                )
            elif ph.get("ratio_vs_eigenscope_lower_bound"):
                lb = ph["ratio_vs_eigenscope_lower_bound"]
                out.append(
                    _target(wid, f"{TASK_TITLES[task]} at 1e-3 vs PyHessian (PyHessian missed; lower bound)", lb, goal)
                )
        for task in ("top1", "top5", "top20", "smallest"):
            t = tasks.get(task)
            if not t:
                continue
            cl = t["tools"].get("curvlinops", {})
            if cl.get("ratio_vs_eigenscope"):
                out.append(
                    _target(
                        wid,
                        f"{TASK_TITLES[task]}: not slower than curvlinops + ARPACK",
                        cl["ratio_vs_eigenscope"]["median"],
                        1.0,
                    )
                )
        tr = tasks.get("trace")
        if tr:
            out.append(
                _target(
                    wid,
                    "trace to 1%: fewer products than PyHessian",
                    tr["tools"]["pyhessian"]["products_ratio_vs_eigenscope"],
                    3.0,
                )
            )
    return out


def decomposition(doc: dict[str, Any]) -> list[str]:
    """Each PyHessian ratio split into fewer products × cheaper products (× time outside them)."""

    def split(wid: str, ours: dict[str, Any], theirs: dict[str, Any], ratio: dict[str, Any] | None, what: str) -> str:
        po, pt = ours["products"]["median"], theirs["products"]["median"]
        so, st = ours["seconds_per_product"]["median"], theirs["seconds_per_product"]["median"]
        return (
            f"| {wid} | {what} | {pt / po:.2f}× | {st / so:.2f}× | {_pct(ours['outside_share'])} / "
            f"{_pct(theirs['outside_share'])} | {_ratio(ratio)} |"
        )

    rows = []
    for wid, w in doc["workloads"].items():
        for task in ("top1", "top5", "top20"):
            t = w["tasks"].get(task, {}).get("tools", {})
            ours, ph = t.get("eigenscope", {}), t.get("pyhessian", {})
            if "timing" in ours and "timing" in ph:
                rows.append(split(wid, ours["timing"], ph["timing"], ph.get("ratio_vs_eigenscope"), TASK_TITLES[task]))
        d = w["tasks"].get("density")
        if d:
            for p, entry in d["equal"].items():
                rows.append(
                    split(
                        wid,
                        entry["eigenscope"]["timing"],
                        entry["pyhessian"]["timing"],
                        entry["pyhessian"].get("ratio_vs_eigenscope"),
                        f"density, equal settings ({d['num_steps']} × {p})",
                    )
                )
            mt = d.get("matched", {})
            if "eigenscope" in mt and "1" in d["equal"]:
                rows.append(
                    split(
                        wid,
                        mt["eigenscope"]["timing"],
                        mt.get("pyhessian", d["equal"]["1"]["pyhessian"])["timing"],
                        mt.get("ratio_vs_eigenscope"),
                        "density, matched accuracy",
                    )
                )
    if not rows:
        return []
    return [
        "### Where the time goes",
        "",
        "Each ratio to PyHessian is (its products ÷ ours) × (its seconds per product ÷ ours), adjusted for the "
        "time spent outside products. Products come from the algorithm (Lanczos with a convergence test after "
        "every product, against power iteration with deflation; fewer SLQ steps at matched accuracy); the cost "
        "per product from the operator (the graph cache, on by default and forced by `cache_graphs=True` in older "
        "results, keeps each batch's first-order graph, so a product is one more backward pass, where PyHessian "
        "reruns the forward and both backward passes).",
        "",
        "| workload | task | products: PyHessian ÷ eigenscope | s/product: PyHessian ÷ eigenscope | "
        "outside products: eigenscope / PyHessian | time ratio |",
        "|---|---|---|---|---|---|",
        *rows,
        "",
        "At equal density settings both tools make the same products, so the ratio is the cost of one product "
        "(the s/product column): with cached graphs ours is the second backward pass alone, whose share of a "
        "full Hessian-vector product the PyTorch adapters section measures per model. A block of probes lowers "
        "the per-vector cost only where a batched double backward beats a loop (on this CPU it did not). At "
        "matched density accuracy eigenscope may pick fewer steps or more probes; when no shorter run reaches "
        "PyHessian's accuracy (its median W1; L1 in older results) the matched setting is the equal one and so "
        "are its runs. Where the products ratio is near 1 (a top eigenvalue well separated from the next, which "
        "power iteration finds fast), the time ratio is about the cost ratio of one product.",
        "",
    ]


def _density_target_text(doc: dict[str, Any]) -> str:
    kinds = {_is_w1(w["tasks"]["density"]) for w in doc["workloads"].values() if "density" in w["tasks"]}
    w1 = (
        "PyHessian's median 1-Wasserstein distance between the spectral measures (single probe, m = 100), "
        "divided by the reference's spectral width, with the L1 distance of the smoothed densities beside it"
    )
    l1 = "the L1 distance of the smoothed densities to the reference"
    if kinds == {False}:
        return l1
    if kinds == {True, False}:
        return f"{w1} (older results, marked in their section: {l1})"
    return w1


def _target(wid: str, what: str, value: float, goal: float) -> dict[str, Any]:
    return {"workload": wid, "target": what, "goal": goal, "measured": value, "met": value >= goal}


def _commands(doc: dict[str, Any]) -> list[str]:
    """The command line(s) that measured the figures (several when runs were merged)."""
    runs: dict[str, list[str]] = {}
    for wid, w in doc["workloads"].items():
        for task, t in w.get("tasks", {}).items():
            by = t.get("measured_by") or {"command": doc["command"], "date": doc["date"]}
            runs.setdefault(f"`{by['command']}` ({by['date']})", []).append(f"{wid} {task}")
    if len(runs) <= 1:
        return [
            f"- Command: `{doc['command']}` ({_f(doc.get('total_seconds', 0) / 60, 3)} min in all); date {doc['date']}."
        ]
    return ["- Commands (results of several runs, merged):"] + [f"  - {k}: {', '.join(v)}" for k, v in runs.items()]


def compare_section(
    doc: dict[str, Any], title: str = "Comparison with PyHessian, curvlinops and hessian-eigenthings"
) -> str:
    s = dict(doc["settings"])
    v = doc["versions"]
    mach = doc["machine"]
    # Merged runs may differ in rounds: the header gives the usual number, sections the exceptions.
    rounds = [
        t.get("measured_by", {}).get("rounds", s["rounds"])
        for w in doc["workloads"].values()
        for t in w["tasks"].values()
    ]
    s["rounds"] = max(set(rounds), key=rounds.count) if rounds else s["rounds"]
    lines = [
        f"## {title}",
        "",
        "How long until the top-k eigenvalues, the trace or the spectral density of a network's Hessian are "
        "known to a stated accuracy — with eigenscope and with the tools in use today, on the same model, "
        "weights and batches (protocol: `BENCHMARKS.md`).",
        "",
        *_commands(doc),
        f"- Machine: {mach['cpu']}, {mach['cpu_count']} cores, shared (load average at start "
        f"{mach.get('load_average_at_start')}); torch threads {s['threads']}, host BLAS 1 thread "
        "(threadpoolctl) for every tool, `OMP_WAIT_POLICY=PASSIVE`.",
        "- Versions: " + ", ".join(f"{k} {val}" for k, val in v.items() if val != "not installed") + ".",
        f"- Accuracy targets: top-k max relative error ≤ {s['eig_target']:g}; smallest eigenvalue ≤ "
        f"{s['smallest_target']:g}; trace ≤ {100 * s['trace_target']:g}% (standard error ≤ "
        f"{100 * s['trace_rtol']:g}%); density: {_density_target_text(doc)}.",
        f"- Each tool is calibrated first (its loosest setting meeting the target, walked from its default), "
        f"then timed in {s['rounds']} interleaved rounds; times are medians [min–max]; ratios are "
        "tool ÷ eigenscope taken within a round, then the median. A peer run is capped at a multiple of "
        "eigenscope's products (given per workload; a capped peer's ratio is a lower bound).",
        "",
    ]
    for wid, w in doc["workloads"].items():
        d = w["setup"]
        options = ", ".join(f"{k}={val!r}" for k, val in d["eigenscope_options"].items())
        lines += [
            f"### {wid}: {d['model']} ({d['num_params']:,} parameters, {d['num_samples']} samples in "
            f"{d['num_batches']} batches of {d['batch_size']}, {d['model_mode']} mode, {d['dtype']})",
            "",
            f"eigenscope settings: {_settings_text(options, d)}; peer runs capped at "
            f"{w.get('cap_factor', s['cap_factor']):g}× eigenscope's products.",
            "",
        ]
        fewer = {
            task: t["measured_by"]["rounds"]
            for task, t in w["tasks"].items()
            if t.get("measured_by", {}).get("rounds", s["rounds"]) != s["rounds"]
        }
        if fewer:
            lines += [
                "Timed in fewer rounds here (one product costs seconds on this CPU): "
                + ", ".join(f"{task} {n} round(s)" for task, n in fewer.items())
                + ".",
                "",
            ]
        ref = w.get("reference", {})
        if ref:
            top = ref.get("top", {}).get("eigenvalues", [])
            low = ref.get("smallest", {}).get("eigenvalues", [])
            tr = ref.get("trace", {})
            facts = []
            if top:
                facts.append(
                    f"λ₁ = {_f(top[0], 5)}"
                    + (f", λ₅ = {_f(top[4], 5)}" if len(top) > 4 else "")
                    + (f", λ₂₀ = {_f(top[19], 5)}" if len(top) > 19 else "")
                    + f" ({ref['top'].get('settings', ref.get('method', ''))})"
                )
            if low:
                facts.append(f"λ_min = {_f(low[0], 5)} ({ref['smallest'].get('settings', ref.get('method', ''))})")
            if tr:
                facts.append(
                    f"tr = {_f(tr.get('estimate'), 5)} ± {_f(tr.get('std_error'), 2)} "
                    f"({tr.get('settings', ref.get('method', ''))})"
                )
            if "density" in ref:
                facts.append(f"density: {ref['density'].get('settings', ref.get('method', ''))}")
            lines += ["Reference (cached in `benchmarks/results/reference_*.json`): " + "; ".join(facts) + ".", ""]
        eig = [t for t in ("top1", "top5", "top20", "smallest") if t in w["tasks"]]
        if eig:
            lines += [
                "| task | tool | matched setting → max rel. error | products | time s | s/product | "
                "outside products | peak RSS MiB | tool ÷ eigenscope |",
                "|---|---|---|---|---|---|---|---|---|",
            ]
            for task in eig:
                lines += _eig_rows(task, w["tasks"][task])
            lines.append("")
        if "trace" in w["tasks"]:
            lines += [f"Trace to {100 * s['trace_target']:g}%:", "", *_trace_rows(w["tasks"]["trace"]), ""]
        if "density" in w["tasks"]:
            dd = w["tasks"]["density"]
            lines += [
                f"Spectral density ({density_metric_text(dd)}; PyHessian's `density()` run with a `torch.eig` "
                "shim built on `torch.linalg.eigh`, the only change to it):",
                "",
                *_density_rows(dd),
                "",
            ]
        if w.get("not_run"):
            lines += [
                "Not run here: " + "; ".join(f"{t} ({why})" for t, why in w["not_run"].items()) + ".",
                "",
            ]
    tg = targets(doc)
    if tg:
        lines += [
            "### Targets",
            "",
            "| workload | target | goal | measured | met |",
            "|---|---|---|---|---|",
            *[
                f"| {t['workload']} | {t['target']} | ≥ {t['goal']:g}× | {t['measured']:.2f}× | "
                f"{'yes' if t['met'] else '**no**'} |"
                for t in tg
            ],
            "",
        ]
    lines += decomposition(doc)
    return "\n".join(lines)


# ---- the other benchmarks' sections ----------------------------------------------------------
def _row(rows: list[dict[str, Any]], task: str) -> dict[str, Any] | None:
    return next((r for r in rows if r["task"] == task), None)


def algorithms_section(d: dict[str, Any]) -> str:
    rows = d.get("rows", [])
    lines = [
        f"## Algorithms on n = 10⁶ (`{d.get('command', 'python -m benchmarks.bench_algorithms')}`)",
        "",
        f"NumPy {d.get('dtype', 'float64')}, tol = √ε. The operator `R diag(λ) Rᵀ` has a known network-like "
        "spectrum (30 outliers from 2 to 50, a bulk near zero, a 0.1 % negative tail) and R is a product of 4 "
        "Householder reflections, so a product costs only ~40·n flops. Result: "
        f"`benchmarks/results/algorithms.json` ({d.get('date', '')}).",
        "",
        "| task | products | wall s | ms / product | time outside products | error |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['task']} | {r['matvecs']} | {r['wall_s']:.3g} | {r['per_product_ms']:.3g} | "
            f"{100 * r['outside_share']:.0f} % | {r['error']:.1e} |"
        )
    lines += ["", f"Error: {d.get('error_is', '')}."]
    lan, arp = _row(rows, "eigsh LA k=5 (lanczos)"), _row(rows, "ARPACK k=5 (scipy eigsh)")
    if lan and arp:
        lines.append(
            f"Lanczos needs {'fewer' if lan['matvecs'] < arp['matvecs'] else 'as many or more'} products than "
            f"ARPACK at the same tolerance ({lan['matvecs']} vs {arp['matvecs']} for k = 5) because it checks "
            "convergence after every product."
        )
    power = _row(rows, "eigsh LA k=5 (power, PyHessian's)")
    if power:
        lines.append(
            f"Power iteration with deflation (PyHessian's method) reached an error of {power['error']:.1e} after "
            f"{power['matvecs']} products."
        )
    lines.append(
        "Time outside products is mostly full re-orthogonalization (4·j·n flops at step j): large against an "
        "operator this cheap, a small share against a network's Hessian-vector product (see the comparison "
        "below)."
    )
    return "\n".join(lines)


def trace_section(d: dict[str, Any]) -> str:
    fixed = d["fixed_budget"]
    res = fixed["results"]
    prob = d.get("problem", {})
    lines = [
        f"## Trace estimators (`{d.get('command', 'python -m benchmarks.bench_trace')}`)",
        "",
        f"{prob.get('matrix', '')}, n = {prob.get('n')}, {fixed['num_matvecs']} products, "
        f"{len(prob.get('seeds', []))} seeds (`benchmarks/results/trace.json`, {d.get('date', '')[:10]}): median "
        "relative error "
        + ", ".join(f"{_f(r['median_rel_error'], 2)} ({name})" for name, r in res.items())
        + (
            f"; Hutch++ {d['ratio_hutchinson_over_hutchpp']:.0f}× smaller than Hutchinson (target: {d['target']}, "
            f"{'met' if d.get('target_met') else 'not met'})."
            if "ratio_hutchinson_over_hutchpp" in d
            else "."
        ),
    ]
    ad = d.get("adaptive")
    if ad:
        lines += [
            "",
            f"Adaptive, standard error ≤ {100 * ad['rtol']:g}% of the estimate:",
            "",
            "| method | median products | max products | converged | median rel. error | max rel. error |",
            "|---|---|---|---|---|---|",
        ]
        for name, r in ad["results"].items():
            lines.append(
                f"| {name} | {_f(r['median_num_matvecs'])} | {r['max_num_matvecs']} | "
                f"{100 * r['converged_fraction']:.0f}% | {_f(r['median_rel_error'], 2)} | {_f(r['max_rel_error'], 2)} |"
            )
    lines += ["", "See [the trace page](algorithms/trace.md)."]
    return "\n".join(lines)


def torch_adapters_section(d: dict[str, Any]) -> str:
    w = d["workloads"]
    runs = sorted({(r["run"]["command"], r["run"]["torch_threads"]) for r in w.values() if "run" in r})
    lines = [
        "## PyTorch adapters (`python -m benchmarks.bench_torch_adapters`)",
        "",
        "`benchmarks/results/torch_adapters.json`, seconds per call (medians): "
        + "; ".join(f"`{cmd}` ({threads} torch thread{'s' if threads != 1 else ''})" for cmd, threads in runs)
        + ".",
        "",
        "| workload | params | samples | gradient s | HVP rev-rev s | HVP fwd-rev s | per vector in an 8-block ÷ HVP "
        "| graph cache ÷ HVP | PyHessian ÷ ours |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for wid, r in w.items():
        sec, q = r["seconds"], r["ratios"]

        def m(table: dict[str, Any], key: str) -> str:
            return _f(table[key]["median"], 2) if key in table else "–"

        lines.append(
            f"| {wid} {r['model']} | {r['num_params']:,} | {r['num_samples']} | {m(sec, 'gradient')} | "
            f"{m(sec, 'hvp_rev_rev')} | {m(sec, 'hvp_fwd_rev')} | {m(q, 'matmat8_loop_per_vector_vs_hvp')} | "
            f"{m(q, 'cached_vs_hvp')} | {m(q, 'pyhessian_vs_ours')} |"
        )
    misses = [
        (wid, r["ratios"]["second_backward_share_of_hvp"]["median"])
        for wid, r in w.items()
        if not r.get("targets", {}).get("cached_vs_hvp", {}).get("met", True)
        and "second_backward_share_of_hvp" in r["ratios"]
    ]
    for wid, share in misses:
        lines += [
            "",
            f"The graph cache misses its 0.7 target on {wid}: the second backward pass alone is "
            f"{100 * share:.0f} % of an HVP there and the cache only skips the forward and first backward passes.",
        ]
    return "\n".join(lines)


def verification_section(d: dict[str, Any]) -> str:
    """Products of eigsh's main run and of its verification, beside ARPACK's."""
    lines = [
        f"## The products of eigsh's verification (`{d.get('command', 'python -m benchmarks.bench_verification')}`)",
        "",
        "`benchmarks/results/verification.json` "
        f"({d.get('date', '')[:10]}): `eigsh` marks pairs converged only after a fresh-start sequence "
        "certifies that no more extreme or repeated eigenvalue was missed (see "
        "[eigsh](algorithms/eigsh.md)). Results written before that check existed (the other eigsh rows "
        "on this page dated earlier) count the main run only; add the verification share below.",
        "",
        "| operator | k | which | tol | main run | verification | ratio | ARPACK | converged |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for row in d["rows"]:
        arpack = "" if row.get("arpack") is None else str(row["arpack"])
        ratio = row["verification"] / max(row["main"], 1)
        lines.append(
            f"| {row['operator']} | {row['k']} | {row['which']} | {row['tol']:.2g} | {row['main']} | "
            f"{row['verification']} | {ratio:.2f} | {arpack} | {row['converged']} |"
        )
    return "\n".join(lines)


def jax_adapters_section(d: dict[str, Any]) -> str:
    lines = [
        f"## JAX adapters (`{d.get('command', 'python -m benchmarks.bench_jax_adapters')}`)",
        "",
        "`benchmarks/results/jax_adapters.json`: gradient, HVP and 8-vector `matmat` times with compile "
        f"times reported separately ({d.get('date', '')[:10]}). See [the JAX page](jax.md).",
    ]
    table = _borrowed_table("bench_jax_adapters", d)
    if table:
        lines += ["", table]
    return "\n".join(lines)


def distributed_section(d: dict[str, Any]) -> str:
    lines = [
        f"## Data-parallel products (`{d.get('command', 'python -m benchmarks.bench_distributed')}`)",
        "",
        "`benchmarks/results/distributed.json`: seconds per product with one process (1 or 2 threads) "
        f"and two gloo processes on the same total data ({d.get('date', '')[:10]}; load average "
        f"{d.get('machine', {}).get('load_average_at_start')} at the start). See [distributed](distributed.md) "
        "for what the figures mean on this 2-core machine.",
    ]
    table = _borrowed_table("bench_distributed", d)
    if table:
        lines += ["", table]
    return "\n".join(lines)


def _borrowed_table(module: str, d: dict[str, Any]) -> str | None:
    """The table renderer of another benchmark script, when it imports here."""
    try:
        mod = __import__(f"benchmarks.{module}", fromlist=["table"])
        return mod.table(d["workloads"])
    except Exception:  # a missing framework or a changed format: no table
        return None


HEADER = """# Benchmarks

Every figure here comes from a JSON file in `benchmarks/results/` written by the command named
beside it; this page is generated from those files (`python -m benchmarks --report-only`).
Benchmarks are not tests: no test asserts a time. They were measured on a shared 2-core x86_64
CPU machine while other jobs ran, so absolute seconds are pessimistic and noisy; product counts
and errors are exact, and ratios of runs interleaved seconds apart hold better than absolute
times. The protocol — workloads, accuracy targets, how to time — is `BENCHMARKS.md`.

`python -m benchmarks` runs the comparison with PyHessian, curvlinops and hessian-eigenthings
(`--quick`: a smoke run on tiny models that writes nothing; `--size large` on a GPU; `--only
top5,density` and `--workloads W3` for parts) and regenerates this page; the other sections'
scripts run alone (`python -m benchmarks.bench_algorithms`, ...)."""


def _settings_text(options: str, setup: dict[str, Any]) -> str:
    """How eigenscope was called: the defaults (``est.hessian(model, loss, batches)``, newer
    results) or the options of an older result file."""
    if not options:
        method = setup.get("eigsh_method", "auto")
        return f"the defaults (`est.hessian(model, loss_fn, batches)`, `es.eigsh(method={method!r})`)"
    return f"`est.hessian(..., {options})`, `es.eigsh(method='lanczos')`"


def render_page(results: Path) -> str:
    parts = [HEADER]
    for name, render in (
        ("algorithms.json", algorithms_section),
        ("verification.json", verification_section),
        ("krylov_overhead.json", krylov_section),
        ("resnet18_eigsh.json", resnet18_section),
        ("trace.json", trace_section),
        ("torch_adapters.json", torch_adapters_section),
        ("jax_adapters.json", jax_adapters_section),
        ("jax_overhead.json", jax_overhead_section),
        ("distributed.json", distributed_section),
        ("compile.json", compile_section),
        ("compare_cpu.json", lambda d: compare_section(d)),
        (
            "compare_gpu.json",
            lambda d: compare_section(d, "Against PyHessian, curvlinops and hessian-eigenthings (GPU)"),
        ),
    ):
        path = results / name
        if path.exists():
            try:
                parts.append(render(json.loads(path.read_text())))
            except (KeyError, TypeError, ValueError, IndexError) as exc:
                parts.append(f"## `{name}`\n\n(could not render: {type(exc).__name__}: {exc})")
    if not (results / "compare_cpu.json").exists():
        parts.append(
            "## Against PyHessian, curvlinops and hessian-eigenthings\n\nThe matched-accuracy comparison of "
            "BENCHMARKS.md has no committed result yet (`python -m benchmarks` writes "
            "`benchmarks/results/compare_cpu.json`): no figure is claimed here."
        )
    return "\n\n".join(parts) + "\n"


def write_page(results: Path, page: Path) -> Path:
    page.parent.mkdir(parents=True, exist_ok=True)
    page.write_text(render_page(results))
    return page
