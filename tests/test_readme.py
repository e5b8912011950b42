"""The README's set-up commands are the ones CI runs, and its code blocks run."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _bash_blocks() -> list[str]:
    text = (ROOT / "README.md").read_text()
    return [b.strip() for b in re.findall(r"```bash\n(.*?)```", text, re.S)]


def test_readme_has_exactly_two_setup_commands_and_ci_runs_them():
    blocks = _bash_blocks()
    assert len(blocks) == 2, blocks
    install, tests = blocks
    assert "torch==2.13.0" in install  # never an unpinned torch: it would pull a CUDA build
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert install in ci and tests in ci


def test_readme_python_blocks_run():
    text = (ROOT / "README.md").read_text()
    for i, block in enumerate(re.findall(r"```python\n(.*?)```", text, re.S)):
        if "import torch" in block:
            pytest.importorskip("torch")
        exec(compile(block, f"README.md block {i}", "exec"), {})
