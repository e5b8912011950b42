"""A study's ``results.json`` payload, its ``report.html`` and its one-screen text summary."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .._html import HtmlDocument, format_number
from ._framework import FigureRecord, Study, StudyOutput


def results_json(study: Study, output: StudyOutput, figures: list[FigureRecord], run: dict[str, Any]) -> dict[str, Any]:
    """What ``results.json`` holds: the claims with their verdicts, the data, tables, figures and run info."""
    return {
        "study": study.name,
        "title": study.title,
        "source": study.source,
        "claims": [c.to_json() for c in output.claims],
        "verdicts": {c.key: c.verdict for c in output.claims},
        "settings": output.settings,
        "notes": list(output.notes),
        "tables": [t.to_json() for t in output.tables],
        "data": output.data,
        "figures": {f.name: list(f.files) for f in figures},
        "captions": {f.name: f.caption for f in figures},
        "run": run,
    }


def write_report(results: dict[str, Any], folder: Path) -> Path:
    """Write ``report.html`` from a study's results (figures read from ``folder``); return its path."""
    run = results["run"]
    subtitle = (
        f"eigenscope study {results['study']} · {results['source']} · "
        f"{'quick run' if run.get('quick') else 'full run'} · seed {run.get('seed')} · "
        f"{format_number(run.get('seconds'), 3)} s on {run.get('device')}"
    )
    doc = HtmlDocument(results["title"], subtitle)
    doc.heading("Verdicts")
    doc.table(["claim", "verdict"], [[c["statement"], c["verdict"]] for c in results["claims"]])
    for claim in results["claims"]:
        doc.heading(claim["statement"], 3)
        doc.verdict("Verdict:", claim["verdict"], claim["rule"])
        rows = []
        for crit in claim["criteria"]:
            q = crit["quantity"]
            lo, hi = q["interval"]
            rows.append(
                [
                    q["name"],
                    q["mean"],
                    _stderr(q),
                    len(q["values"]),
                    f"[{format_number(lo)}, {format_number(hi)}]",
                    f"{crit['op']} {format_number(crit['threshold'])}",
                    crit["verdict"],
                ]
            )
        doc.table(["measured", "mean", "s.e.", "replicates", "mean ± 2 s.e.", "claimed", "verdict"], rows)
        if claim["context"]:
            doc.table(
                ["also measured", "mean", "s.e.", "replicates"],
                [[m["name"], m["mean"], _stderr(m), len(m["values"])] for m in claim["context"]],
            )
    doc.figures(folder, results["figures"], results["captions"])
    for table in results["tables"]:
        doc.heading(table["title"], 3)
        doc.table(table["header"], table["rows"])
        if table["note"]:
            doc.paragraph(table["note"], css_class="muted")
    if results["notes"]:
        doc.heading("What to keep in mind")
        doc.bullets(results["notes"])
    doc.heading("Settings")
    doc.settings(results["settings"])
    doc.paragraph(f"Reproduce with: {run.get('command')}", css_class="muted")
    return doc.write(folder / "report.html")


def format_study_summary(results: dict[str, Any], path: str) -> str:
    """The text the command prints: each claim's verdict and where the report is."""
    width = max((len(c["verdict"]) for c in results["claims"]), default=0)
    lines = [f"{results['title']} ({results['source']})"]
    for claim in results["claims"]:
        lines.append(f"  {claim['verdict']:<{width}}  {claim['statement']}")
    lines.append(f"report: {path}")
    return "\n".join(lines)


def _stderr(quantity: dict[str, Any]) -> float | None:
    """The standard error shown: none (a dash) for a single replicate, where it is undefined."""
    return quantity["stderr"] if len(quantity["values"]) > 1 else None
