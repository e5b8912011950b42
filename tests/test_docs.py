"""The Python blocks of the docs and the example scripts run, so they cannot rot.

Every ```python block of ``docs/**/*.md`` runs, in order, in one namespace per file (a page
reads top to bottom), in a temporary working directory. A block preceded by a line
``<!-- skip -->`` is left out (a sketch with placeholders, or one too slow for the suite).
"""

from __future__ import annotations

import re
import runpy
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = sorted((ROOT / "docs").glob("**/*.md"))
EXAMPLES = sorted((ROOT / "examples").glob("quickstart*.py"))


def python_blocks(text: str) -> list[str]:
    """The ```python blocks of a Markdown text, without those preceded by ``<!-- skip -->``."""
    blocks = []
    for match in re.finditer(r"```python\n(.*?)```", text, re.S):
        before = text[: match.start()].rstrip().rsplit("\n", 1)[-1]
        if before.strip() != "<!-- skip -->":
            blocks.append(match.group(1))
    return blocks


def test_skip_marker_is_honoured():
    text = "x\n<!-- skip -->\n```python\nraise RuntimeError\n```\ntext\n\n```python\ny = 1\n```\n"
    assert python_blocks(text) == ["y = 1\n"]


@pytest.mark.parametrize("page", DOCS, ids=[p.relative_to(ROOT / "docs").as_posix() for p in DOCS])
def test_doc_python_blocks_run(page, tmp_path, monkeypatch):
    blocks = python_blocks(page.read_text())
    if not blocks:
        pytest.skip("no python blocks")
    text = "".join(blocks)
    for module in ("torch", "jax", "matplotlib"):
        if re.search(rf"^\s*(import|from) {module}\b", text, re.M) or (module == "matplotlib" and "plot_" in text):
            pytest.importorskip(module)
    monkeypatch.chdir(tmp_path)  # blocks may write files (figures)
    namespace: dict = {"__name__": "__docs__"}
    for i, code in enumerate(blocks):
        exec(compile(code, f"{page.name} python block {i}", "exec"), namespace)


@pytest.mark.parametrize("page", DOCS, ids=[p.relative_to(ROOT / "docs").as_posix() for p in DOCS])
def test_doc_images_exist(page):
    for target in re.findall(r"!\[[^\]]*\]\(([^)\s]+)\)", page.read_text()):
        if "://" not in target:
            assert (page.parent / target).is_file(), f"{page.name} links to a missing image {target}"


@pytest.mark.parametrize("script", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_examples_run(script, tmp_path, monkeypatch, capsys):
    pytest.importorskip("torch")
    monkeypatch.chdir(tmp_path)
    runpy.run_path(str(script), run_name="__main__")
    out = capsys.readouterr().out
    assert "top-5 eigenvalues: [50. 40. 30. 20. 10.]" in out
    assert "Hessian top-3" in out
