"""What every study's quick run must produce: claims decided by rules, figures, a self-contained report."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from eigenscope.analysis._html import format_number
from eigenscope.analysis.studies import VERDICTS, run_study
from tests._helpers import HtmlText


def run_quick(
    name: str, out: Path, *, keys: list[str], figures: tuple[str, ...], replicates: int = 0
) -> dict[str, Any]:
    """Run study ``name`` with ``quick=True`` into ``out``; check what every study must write; return results.json.

    ``replicates``: the number of values each criterion must hold (0: at least one).
    """
    results = run_study(name, out=str(out), quick=True, seed=0)
    saved = json.loads((out / "results.json").read_text())
    assert [c["key"] for c in saved["claims"]] == keys
    for claim in saved["claims"]:
        assert claim["statement"] and claim["verdict"] in VERDICTS and "reproduced if" in claim["rule"]
        for criterion in claim["criteria"]:
            values = criterion["quantity"]["values"]
            assert values and all(math.isfinite(v) for v in values)
            assert not replicates or len(values) == replicates
    for figure in figures:
        assert (out / f"{figure}.png").is_file() and (out / f"{figure}.svg").is_file()
    page = HtmlText((out / "report.html").read_text())
    for claim in saved["claims"]:
        assert claim["statement"] in page.text and claim["verdict"] in page.text
        for criterion in claim["criteria"]:
            assert criterion["rule"] in page.text
            assert format_number(criterion["quantity"]["mean"]) in page.text
    page.assert_self_contained()
    assert results["report_path"].endswith("report.html")
    return saved
