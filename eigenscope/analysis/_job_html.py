"""``report.html`` of ``eigenscope analyze``: the summary table, the eigenvalues and every figure, in one file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ._html import HtmlDocument
from ._matrices import matrix_title
from ._summary import summary_header, summary_rows

_CAPTIONS = {
    "density": "Spectral density (stochastic Lanczos quadrature, Gaussian kernel, log scale).",
    "stem": "The SLQ nodes and weights (the discrete measure behind the density).",
    "loss_along_eigenvectors": "The loss along the top eigenvectors, with the quadratic model ½λt² beside it.",
    "loss_surface": "The loss on the plane of the two top eigenvectors.",
    "principal_angles": "Cosines of the principal angles between the two matrices' top-k subspaces.",
    "tracking": "Top eigenvalue, negative mass and other metrics over the tracked checkpoints.",
    "densities": "Spectral densities over the tracked checkpoints.",
}


def write_analyze_report(results: dict[str, Any], folder: Path) -> Path:
    """Write ``folder/report.html`` from the results of ``eigenscope analyze`` (figures read from ``folder``)."""
    matrix = matrix_title(results["matrix"])
    header = [line.strip() for line in summary_header(results)]
    doc = HtmlDocument(header[0], " · ".join(" ".join(line.split()) for line in header[1:]))
    doc.heading("Summary")
    doc.table(["quantity", "value", "matvecs", "time"], summary_rows(results))
    total = results["timings"]["total"]
    doc.paragraph(
        f"Total: {results['num_matvecs']['total']:,} matrix-vector products, {total:.1f} s.", css_class="muted"
    )
    analysis = results["analysis"]
    for key, label in (("top", "Top eigenvalues"), ("bottom", "Bottom eigenvalues")):
        pairs = analysis.get(key)
        if not pairs:
            continue
        doc.heading(f"{label} of the {matrix}", 3)
        rows = zip(pairs["eigenvalues"], pairs["residual_norms"], pairs["converged"], strict=True)
        doc.table(["i", "eigenvalue", "residual ‖Hv − λv‖", "converged"], [[i + 1, *r] for i, r in enumerate(rows)])
    figures = results.get("figures") or {}
    doc.figures(folder, figures, {name: _CAPTIONS.get(name, name.replace("_", " ")) for name in figures})
    doc.heading("Settings")
    doc.settings(results["settings"])
    command = " ".join(results.get("command") or [])
    if command:
        doc.paragraph(f"Command: {command}", css_class="muted")
    return doc.write(folder / "report.html")
