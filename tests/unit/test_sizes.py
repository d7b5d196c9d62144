"""Small modules and short functions (the architecture's bound): no module of the package above
400 lines, no function above 50 (from `def` to its last line)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "service"
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 50
SOURCES = sorted(PACKAGE.rglob("*.py"))


def long_functions(source: str) -> list[tuple[str, int]]:
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            length = (node.end_lineno or node.lineno) - node.lineno + 1
            if length > MAX_FUNCTION_LINES:
                found.append((node.name, length))
    return found


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_modules_and_functions_are_small(path: Path) -> None:
    source = path.read_text()
    assert source.count("\n") <= MAX_MODULE_LINES, f"{path} has {source.count(chr(10))} lines"
    assert long_functions(source) == [], path


def test_the_bound_is_checked() -> None:
    body = "\n".join(f"    x{i} = {i}" for i in range(MAX_FUNCTION_LINES))
    assert long_functions(f"def f() -> None:\n{body}\n") == [("f", MAX_FUNCTION_LINES + 1)]
    assert long_functions("def g() -> None:\n    pass\n") == []
