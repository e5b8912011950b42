"""The layout of ``eigenscope.algorithms`` that review asked for, checked on the source.

Shared machinery lives in shared modules (``_orth``, ``_checks``, ``_common``, ``_pairs``,
``_scaling``), so no module imports another's private names; no module reaches into
another package's private modules or an object's private state, or names a framework.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import eigenscope.algorithms

PACKAGE = Path(eigenscope.algorithms.__file__).parent
MODULES = sorted(PACKAGE.glob("*.py"))
FRAMEWORKS = {"numpy", "torch", "jax", "cupy", "cupyx", "array_api_strict"}
# The root package's warnings are its own shared module, public as eigenscope.*Warning.
ALLOWED_PRIVATE = {"_warnings"}


def _tree(path: Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


@pytest.mark.parametrize("path", MODULES, ids=lambda p: p.name)
def test_small_modules_with_a_docstring(path):
    lines = len(path.read_text(encoding="utf-8").splitlines())
    assert lines <= 400, f"{path.name} has {lines} lines"
    assert ast.get_docstring(_tree(path)), f"{path.name} has no module docstring"


@pytest.mark.parametrize("path", MODULES, ids=lambda p: p.name)
def test_imports(path):
    for node in ast.walk(_tree(path)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                assert alias.name.split(".")[0] not in FRAMEWORKS - {"numpy"}, alias.name
        if not isinstance(node, ast.ImportFrom):
            continue
        module = node.module or ""
        assert module.split(".")[0] not in FRAMEWORKS - {"numpy"}, module
        if node.level == 1 and module:  # names from a sibling module: only its public ones
            private = [a.name for a in node.names if a.name.startswith("_")]
            assert not private, f"{path.name} imports private {private} from .{module}"
        elif node.level == 2:  # another package: its public interface only
            parts = module.split(".") if module else []
            hidden = [p for p in parts[1:] if p.startswith("_")]
            assert not hidden, f"{path.name} imports the private module ..{module}"
            if parts and parts[0].startswith("_"):
                assert parts[0] in ALLOWED_PRIVATE, f"{path.name} imports ..{module}"


@pytest.mark.parametrize("path", MODULES, ids=lambda p: p.name)
def test_no_private_state_or_framework_names(path):
    for node in ast.walk(_tree(path)):
        if isinstance(node, ast.Attribute):
            assert node.attr not in {"_check_operand", "_state", "backend"}, f"{path.name}: .{node.attr}"
        if isinstance(node, ast.Compare):
            names = [c.value for c in ast.walk(node) if isinstance(c, ast.Constant) and isinstance(c.value, str)]
            assert not FRAMEWORKS.intersection(names), f"{path.name} compares with a framework name: {names}"
