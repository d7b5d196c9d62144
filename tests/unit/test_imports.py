"""Dependencies point inward (DESIGN §1): a walk over every import of the package."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "service"

# module (or package) -> imports it must never make
FORBIDDEN = {
    "schemes": {
        "numpy",
        "torch",
        "fastapi",
        "pydantic",
        "starlette",
        "service.api",
        "service.plan",
        "service.engines",
        "service.formats",
    },
    "dtypes": {"numpy", "torch", "fastapi", "pydantic", "starlette", "service.api"},
    "errors": {"numpy", "torch", "fastapi", "pydantic", "starlette", "service"},
    "rng": {"numpy", "torch", "fastapi", "pydantic", "starlette", "service.api", "service.plan"},
    "plan": {"fastapi", "pydantic", "starlette", "service.api"},
    "engines": {"fastapi", "pydantic", "starlette", "service.api", "service.plan"},
    "formats": {"torch", "fastapi", "pydantic", "starlette", "service.api", "service.plan"},
}
STDLIB_ONLY = {"schemes", "errors", "dtypes", "rng"}


def imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)  # and `from service import api` as service.api:
            names |= {f"{node.module}.{a.name}" for a in node.names}
    return names


def modules() -> list[tuple[str, Path]]:
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        top = path.relative_to(PACKAGE).parts[0].removesuffix(".py")
        if top in FORBIDDEN:  # the outer modules (api, cli, client, …) may import anything
            found.append((top, path))
    return found


@pytest.mark.parametrize(("top", "path"), modules(), ids=lambda v: str(v))
def test_imports_point_inward(top: str, path: Path) -> None:
    forbidden = FORBIDDEN[top]
    for name in imports(path):
        for bad in forbidden:
            if bad == "service":
                assert not name.startswith("service") or name == "service.errors", (path, name)
            else:
                assert name != bad, f"{path} imports {name}"
                assert not name.startswith(bad + "."), f"{path} imports {name}"


@pytest.mark.parametrize("top", sorted(STDLIB_ONLY))
def test_pure_modules_import_only_the_standard_library(top: str) -> None:
    import sys

    paths = (
        [PACKAGE / f"{top}.py"]
        if (PACKAGE / f"{top}.py").exists()
        else sorted((PACKAGE / top).glob("*.py"))
    )
    assert paths
    for name in (n for path in paths for n in imports(path)):
        root = name.split(".")[0]
        allowed = (
            root in sys.stdlib_module_names
            or name == "service.errors"
            or name.startswith(("service.errors.", "service.schemes"))
        )
        assert allowed, name
