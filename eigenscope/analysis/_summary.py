"""The table printed at the end of ``eigenscope analyze``."""

from __future__ import annotations

from typing import Any

import numpy as np

from ._matrices import matrix_title


def _fmt(x: Any, digits: int = 4) -> str:
    if x is None:
        return "n/a"
    if isinstance(x, (int, np.integer)) and not isinstance(x, bool):
        return f"{x:,}"
    x = float(x)
    if x == 0:
        return "0"
    if abs(x) >= 1e5 or abs(x) < 1e-3:
        return f"{x:.{digits - 1}e}"
    return f"{x:.{digits}g}"


def _values(xs: list[float], limit: int = 5) -> str:
    shown = ", ".join(_fmt(x) for x in xs[:limit])
    return shown + (", …" if len(xs) > limit else "")


def format_summary(results: dict[str, Any]) -> str:
    """The table printed at the end of ``eigenscope analyze``, from its results dictionary."""
    t = results["timings"]
    lines = summary_header(results)
    rows = summary_rows(results)
    width = [max(len(r[i]) for r in rows) for i in range(4)]
    width[0] = max(width[0], len("quantity"))
    width[2] = max(width[2], len("matvecs"))
    header = f"  {'quantity':<{width[0]}}  {'value':<{width[1]}}  {'matvecs':>{width[2]}}  {'time':>{width[3]}}"
    lines += ["", header, "  " + "─" * (len(header) - 2)]
    lines += [f"  {r[0]:<{width[0]}}  {r[1]:<{width[1]}}  {r[2]:>{width[2]}}  {r[3]:>{width[3]}}" for r in rows]
    lines.append("  " + "─" * (len(header) - 2))
    lines.append(
        f"  total    {results['num_matvecs']['total']:,} matvecs, {t['total']:.1f} s"
        + (f" (training {t['training']:.1f} s)" if "training" in t else "")
    )
    nfig = sum(len(v) for v in results["figures"].values())
    lines.append(f"  results  {results['results_path']}" + (f" and {nfig} figure files" if nfig else ""))
    return "\n".join(lines)


def summary_header(results: dict[str, Any]) -> list[str]:
    """The lines above the table: matrix and loss, model, data, fit, device."""
    s = results["settings"]
    matrix = matrix_title(results["matrix"])
    model = results["model"]
    data = results["data"]
    lines = [
        f"eigenscope analyze: {matrix} of the mean {s['loss']} loss",
        f"  model    {model['class']} ({model['num_params']:,} parameters, {model['dtype']}); {model['source']}",
    ]
    held = f"; held out {data['heldout_samples']:,}" if data["heldout_samples"] else ""
    lines.append(f"  data     {data['num_samples']:,} samples in {data['num_batches']} batches{held}")
    fit = f"  fit      train loss {_fmt(results['loss'])}"
    if results.get("train_accuracy") is not None:
        fit += f", accuracy {results['train_accuracy']:.3f}"
    if results.get("heldout"):
        fit += f"; held-out loss {_fmt(results['heldout']['loss'])}"
        if "accuracy" in results["heldout"]:
            fit += f", accuracy {results['heldout']['accuracy']:.3f}"
    if results.get("training"):
        fit += f" (after {results['training']['epochs']} epochs of Adam)"
    lines.append(fit)
    dev = results["device"]
    threads = f"{dev['threads']} thread" + ("s" if dev["threads"] != 1 else "")
    lines.append(f"  device   {dev['device']}, {threads}, seed {s['seed']}")
    return lines


def summary_rows(results: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    """The table's rows: (quantity, value, matvecs, time), as text."""
    a = results["analysis"]
    m = results["metrics"]
    s = results["settings"]
    t = results["timings"]
    rows: list[tuple[str, str, str, str]] = []

    def row(name: str, value: str, stage: str | None = None) -> None:
        mv = results["num_matvecs"].get(f"analysis.{stage}") if stage else None
        sec = t.get(f"analysis.{stage}") if stage else None
        rows.append((name, value, "" if mv is None else f"{mv:,}", "" if sec is None else f"{sec:.1f} s"))

    def eig_values(r: dict[str, Any]) -> str:
        text = _values(r["eigenvalues"])
        done = sum(bool(c) for c in r["converged"])
        return text if done == len(r["converged"]) else f"{text}  ({done} of {len(r['converged'])} converged)"

    top = a["top"]
    row(f"top-{len(top['eigenvalues'])} eigenvalues (LA)", eig_values(top), "top")
    if a["bottom"] is not None:
        row(f"bottom-{len(a['bottom']['eigenvalues'])} eigenvalues (SA)", eig_values(a["bottom"]), "bottom")
    if a["trace"] is not None:
        tr = a["trace"]
        err = tr["std_error"]
        row(
            "trace (Hutch++)",
            f"{_fmt(tr['estimate'])} ± {_fmt(err, 2)}" if err is not None else _fmt(tr["estimate"]),
            "trace",
        )
    dens = a["density"]
    nodes = [x for row_ in dens["nodes"] for x in row_]
    row(
        f"spectral density (SLQ {s['steps']} steps × {s['probes']})",
        f"support [{_fmt(min(nodes))}, {_fmt(max(nodes))}]",
        "density",
    )
    comp = results.get("compilation") or {}
    if comp.get("compile") is not None:
        seconds = comp.get("compile_seconds") or 0.0
        state = "compiled" if comp.get("compiled") else f"eager ({comp.get('compile_reason') or 'not needed'})"
        rows.append((f"products (compile={comp['compile']!r})", state, "", f"{seconds:.1f} s compiling"))
    row("negative mass", _fmt(m["negative_mass"]))
    row("L1 energy  + / −  (ratio)", f"{_fmt(m['l1_positive'])} / {_fmt(m['l1_negative'])}  ({_fmt(m['l1_ratio'], 3)})")
    row("L2 energy  + / −  (ratio)", f"{_fmt(m['l2_positive'])} / {_fmt(m['l2_negative'])}  ({_fmt(m['l2_ratio'], 3)})")
    row(f"outlier ratio λ1/λ{a['outlier_k']}", _fmt(m["outlier_ratio"]))
    if "gradient_fraction" in m:
        row(f"gradient fraction in top-{s['k']}", f"{_fmt(m['gradient_fraction'])}  (‖g‖ = {_fmt(m['gradient_norm'])})")
    cmp_ = results.get("compare")
    if cmp_:
        pa = cmp_["principal_angles"]
        rows.append(
            (
                f"top-{s['k']} vs {cmp_['matrix']}: cos of angles",
                f"{_values(pa['cosines'], 3)}  (mean cos² {_fmt(pa['overlap'], 3)})",
                f"{results['num_matvecs'].get('compare', 0):,}",
                f"{t.get('compare', 0.0):.1f} s",
            )
        )
    land = results["landscape"]
    if land["curves"]:
        c = land["curves"][0]
        edge = [f"{name} {_fmt(v[-1], 3)}" for name, v in c["loss"].items()]
        rows.append((f"loss at +{_fmt(land['radius'], 3)}·v1", ", ".join(edge), "", f"{t.get('landscape', 0.0):.1f} s"))
    tracking = results.get("tracking")
    if tracking:
        for r in tracking["rows"]:
            kl = r.get("kl_to_previous")
            rows.append(
                (
                    f"  {r['label']}",
                    f"λmax {_fmt(r['lambda_max'])}, λmin {_fmt(r['lambda_min'])}, "
                    f"neg. mass {_fmt(r['negative_mass'], 3)}" + ("" if kl is None else f", KL to prev. {_fmt(kl, 3)}"),
                    "",
                    "",
                )
            )
        rows.insert(
            len(rows) - len(tracking["rows"]),
            (
                "tracking over checkpoints",
                "",
                f"{results['num_matvecs'].get('tracking', 0):,}",
                f"{t.get('tracking', 0.0):.1f} s",
            ),
        )
    return rows
