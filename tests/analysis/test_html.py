"""The self-contained HTML documents of the reports."""

from __future__ import annotations

import pytest

from eigenscope.analysis._html import HtmlDocument, format_number
from tests._helpers import HtmlText


def test_text_is_escaped_and_numbers_formatted(tmp_path):
    doc = HtmlDocument("<script>alert(1)</script>", "a & b")
    doc.heading("λ < 0")
    doc.table(["x", "y"], [[1.23456789, None], [float("nan"), "<b>"], [True, 7]])
    doc.verdict("Claim:", "not reproduced", "x > 1")
    doc.bullets(["one", "<two>"])
    path = doc.write(tmp_path / "r.html")
    html = path.read_text()
    assert "<script>" not in html and "&lt;script&gt;" in html
    page = HtmlText(html)
    assert "λ < 0" in page.text and "1.235" in page.text and "<b>" in page.text and "<two>" in page.text
    assert 'class="verdict not-reproduced"' in html
    assert "script" not in page.tags
    assert [p.name for p in tmp_path.iterdir()] == ["r.html"]  # no temporary file left


def test_figure_is_embedded(tmp_path):
    pytest.importorskip("matplotlib")
    from matplotlib.figure import Figure

    from eigenscope.analysis import save_figure

    fig = Figure()
    fig.subplots().plot([0, 1])
    png = save_figure(fig, tmp_path / "f")[0]
    doc = HtmlDocument("t")
    doc.figure(png, "a caption")
    page = HtmlText(doc.render())
    page.assert_self_contained()
    assert "a caption" in page.text


@pytest.mark.parametrize(
    ("value", "shown"), [(None, "—"), (float("inf"), "—"), (3, "3"), (0.000123456, "0.0001235"), (False, "no")]
)
def test_format_number(value, shown):
    assert format_number(value) == shown
