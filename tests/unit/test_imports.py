"""Dependencies point inward (docs/architecture.md, "Layers"): a walk over every import."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "service"

WEB = {"fastapi", "pydantic", "pydantic_core", "starlette"}  # the API edge's, and only its
ARRAYS = {"numpy", "torch", "ml_dtypes"}
# module (or package) -> imports it must never make: api -> plan -> {schemes, engines, formats}
# -> rng, with presets (and recipes) beside plan, and the stdlib-only leaves below everything
FORBIDDEN = {
    "schemes": ARRAYS | WEB | {"service.api", "service.plan", "service.engines", "service.formats"},
    "presets": ARRAYS | WEB | {"service.api", "service.plan", "service.engines", "service.bundle"},
    "recipes": ARRAYS | WEB | {"service.api", "service.plan", "service.engines", "service.bundle"},
    "dtypes": ARRAYS | WEB | {"service.api"},
    "errors": ARRAYS | WEB | {"service"},
    "arguments": ARRAYS | WEB | {"service.api", "service.schemes", "service.plan"},
    "distributions": ARRAYS | WEB | {"service"},
    "shapes": ARRAYS | WEB | {"service"},
    "slices": ARRAYS | WEB | {"service"},
    "windows": ARRAYS | WEB | {"service"},
    "rng": WEB | {"torch", "service.api", "service.plan"},
    "logspace": ARRAYS
    | WEB
    | {"service.api", "service.plan", "service.engines", "service.schemes"},
    "draws": ARRAYS | WEB | {"service.api", "service.plan", "service.engines", "service.bundle"},
    "plan": WEB | {"service.api"},
    "bundle": WEB | {"service.api"},
    "analyze": WEB | {"service.api"},
    "engines": WEB
    | {"service.api", "service.plan", "service.schemes", "service.bundle", "service.presets"},
    "formats": WEB | {"torch", "service.api", "service.plan", "service.engines"},
}
STDLIB_ONLY = {
    "schemes",
    "errors",
    "dtypes",
    "rng",
    "logspace",
    "draws",
    "arguments",
    "distributions",
    "shapes",
    "slices",
    "windows",
}
LEAVES = (
    "service.errors",
    "service.arguments",
    "service.shapes",
    "service.slices",
    "service.distributions",
    "service.windows",
    "service.rng",  # the portable arithmetic: the catalogue's moments use the engines' functions
    "service.logspace",
)


def imports(path: Path) -> set[str]:
    return imported(path.read_text())


def imported(source: str) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(source)):
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


def violations(top: str, names: set[str]) -> list[str]:
    """The imports among `names` that a module of `top` must never make."""
    found = []
    for name in sorted(names):
        for bad in FORBIDDEN[top]:
            if bad == "service":
                errors = name == "service.errors" or name.startswith("service.errors.")
                if name.startswith("service") and not errors:
                    found.append(name)
            elif name == bad or name.startswith(bad + "."):
                found.append(name)
    return found


@pytest.mark.parametrize(("top", "path"), modules(), ids=lambda v: str(v))
def test_imports_point_inward(top: str, path: Path) -> None:
    assert violations(top, imports(path)) == [], path


@pytest.mark.parametrize(
    ("top", "source"),
    [
        ("engines", "from service.schemes import SchemePlan"),
        ("engines", "from service import plan"),
        ("plan", "from fastapi import Request"),
        ("bundle", "import pydantic"),
        ("presets", "from service.engines import Sampling"),
        ("distributions", "from service.schemes import Law"),
        ("schemes", "import numpy as np"),
    ],
)
def test_the_walk_catches_a_wrong_arrow(top: str, source: str) -> None:
    assert violations(top, imported(source))


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
            or name in LEAVES
            or name.startswith(tuple(f"{leaf}." for leaf in LEAVES))
            or name.startswith("service.schemes")
        )
        assert allowed, name
