"""Self-contained HTML reports: text, tables and figures embedded, no network access needed.

A :class:`HtmlDocument` is built block by block and written as one file. Every piece of
text is escaped; figures are embedded as base64 PNG data URIs (the SVG stays beside the
report for print quality), so the file opens anywhere, offline, from an e-mail or an
archive.
"""

from __future__ import annotations

import base64
import html
import math
import os
import secrets
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

_STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; max-width: 60rem; margin: 2rem auto;
       padding: 0 1rem; color: #1a1a1a; line-height: 1.45; }
h1 { font-size: 1.6rem; margin-bottom: 0.2rem; } h2 { font-size: 1.25rem; margin-top: 2rem;
     border-bottom: 1px solid #ddd; } h3 { font-size: 1.05rem; }
table { border-collapse: collapse; margin: 0.8rem 0; font-size: 0.92rem; }
th, td { border: 1px solid #ccc; padding: 0.25rem 0.6rem; text-align: left; vertical-align: top; }
th { background: #f3f3f3; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
figure { margin: 1rem 0; } figure img { max-width: 100%; border: 1px solid #eee; }
figcaption { font-size: 0.9rem; color: #444; }
.verdict { display: inline-block; padding: 0.05rem 0.5rem; border-radius: 0.3rem; font-weight: 600; }
.verdict.reproduced { background: #d9f2d9; color: #185c18; }
.verdict.not-reproduced { background: #f8d7d7; color: #7a1515; }
.verdict.inconclusive { background: #fbefc8; color: #6b5200; }
.muted { color: #555; font-size: 0.9rem; } code { background: #f4f4f4; padding: 0 0.2rem; }
"""


def format_number(x: Any, digits: int = 4) -> str:
    """A number as a report shows it: ``digits`` significant digits, ``—`` for None/NaN."""
    if x is None:
        return "—"
    if isinstance(x, bool):
        return "yes" if x else "no"
    if isinstance(x, int):
        return str(x)
    if isinstance(x, float):
        if not math.isfinite(x):
            return "—"
        return f"{x:.{digits}g}"
    return str(x)


class HtmlDocument:
    """An HTML report assembled block by block; :meth:`write` produces one self-contained file.

    >>> doc = HtmlDocument("A report")
    >>> doc.paragraph("Top eigenvalue: 3 < 4")
    >>> doc.table(["name", "value"], [["lambda_1", 1.5]])
    >>> "3 &lt; 4" in doc.render() and "<td class=\\"num\\">1.5</td>" in doc.render()
    True
    """

    def __init__(self, title: str, subtitle: str | None = None) -> None:
        self.title = title
        self._blocks: list[str] = [f"<h1>{_esc(title)}</h1>"]
        if subtitle:
            self._blocks.append(f'<p class="muted">{_esc(subtitle)}</p>')

    def heading(self, text: str, level: int = 2) -> None:
        """A section heading (``<h2>`` by default)."""
        level = min(max(int(level), 2), 4)
        self._blocks.append(f"<h{level}>{_esc(text)}</h{level}>")

    def paragraph(self, text: str, *, css_class: str | None = None) -> None:
        """A paragraph of plain text (escaped)."""
        cls = f' class="{_esc(css_class)}"' if css_class else ""
        self._blocks.append(f"<p{cls}>{_esc(text)}</p>")

    def verdict(self, label: str, verdict: str, rule: str) -> None:
        """A claim's verdict badge, with the rule it was decided by."""
        cls = verdict.replace(" ", "-").split("-at-")[0]
        self._blocks.append(
            f'<p><strong>{_esc(label)}</strong> <span class="verdict {_esc(cls)}">{_esc(verdict)}</span></p>'
            f'<p class="muted">Rule: {_esc(rule)}</p>'
        )

    def bullets(self, items: Iterable[str]) -> None:
        """A bulleted list of plain-text items."""
        self._blocks.append("<ul>" + "".join(f"<li>{_esc(item)}</li>" for item in items) + "</ul>")

    def table(self, header: Sequence[str], rows: Iterable[Sequence[Any]], *, digits: int = 4) -> None:
        """A table; numbers are right-aligned with ``digits`` significant digits."""
        head = "".join(f"<th>{_esc(h)}</th>" for h in header)
        body = []
        for row in rows:
            cells = []
            for value in row:
                if value is None or (isinstance(value, (int, float)) and not isinstance(value, bool)):
                    cells.append(f'<td class="num">{_esc(format_number(value, digits))}</td>')
                else:
                    cells.append(f"<td>{_esc(format_number(value, digits))}</td>")
            body.append("<tr>" + "".join(cells) + "</tr>")
        self._blocks.append(f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>")

    def settings(self, settings: dict[str, Any]) -> None:
        """A two-column table of settings; lists and mappings are shown on one line."""

        def plain(value: Any) -> Any:
            if isinstance(value, (list, tuple)):
                return ", ".join(format_number(v) for v in value)
            if isinstance(value, dict):
                return ", ".join(f"{k}={format_number(v)}" for k, v in value.items())
            return value

        self.table(["setting", "value"], [[k, plain(v)] for k, v in settings.items()])

    def figure(self, png: str | os.PathLike[str], caption: str = "") -> None:
        """Embed the PNG file ``png`` (as a data URI) with a caption."""
        data = base64.b64encode(Path(png).read_bytes()).decode("ascii")
        alt = caption or Path(png).stem
        self._blocks.append(
            f'<figure><img alt="{_esc(alt)}" src="data:image/png;base64,{data}">'
            f"<figcaption>{_esc(caption)}</figcaption></figure>"
        )

    def figures(self, folder: Path, files: dict[str, list[str]], captions: dict[str, str]) -> None:
        """A "Figures" section: the PNG of each figure in ``files`` (name → file names in
        ``folder``, as ``results.json`` lists them), with ``captions[name]``; nothing without figures."""
        pngs = {name: next((f for f in names if f.endswith(".png")), None) for name, names in files.items()}
        if not any(pngs.values()):
            return
        self.heading("Figures")
        for name, png in pngs.items():
            if png is not None:
                self.figure(folder / png, captions.get(name, ""))

    def render(self) -> str:
        """The whole document as a string."""
        body = "\n".join(self._blocks)
        return (
            '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
            '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
            f"<title>{_esc(self.title)}</title>\n<style>{_STYLE}</style>\n</head>\n<body>\n{body}\n</body>\n</html>\n"
        )

    def write(self, path: str | os.PathLike[str]) -> Path:
        """Write the document to ``path`` atomically (a reader never sees half a file)."""
        target = Path(path)
        tmp = target.with_name(f".{target.name}.{os.getpid()}-{secrets.token_hex(4)}.tmp")
        try:
            tmp.write_text(self.render(), encoding="utf-8")
            os.replace(tmp, target)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        return target


def _esc(text: Any) -> str:
    return html.escape(str(text), quote=True)
