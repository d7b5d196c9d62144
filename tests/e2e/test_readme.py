"""Every `$ command` in the README's console blocks runs against a live server as written,
and prints exactly the output the README shows."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from bench.live import Server

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"


def console_examples() -> list[tuple[str, str]]:
    """(command, expected output) for each `$ ` line of each ```console block."""
    examples: list[tuple[str, str]] = []
    for block in re.findall(r"```console\n(.*?)```", README.read_text(), re.S):
        command: list[str] | None = None
        output: list[str] = []
        for line in block.splitlines():
            if line.startswith("$ "):
                if command is not None:
                    examples.append(("\n".join(command), "\n".join(output)))
                command, output = [line[2:]], []
            elif command is not None and command[-1].endswith("\\") and not output:
                command.append(line)
            else:
                output.append(line)
        if command is not None:
            examples.append(("\n".join(command), "\n".join(output)))
    return examples


EXAMPLES = console_examples()


def test_the_readme_has_examples_for_every_endpoint() -> None:
    commands = " ".join(c for c, _ in EXAMPLES)
    for path in ("/healthz", "/readyz", "/v1/tensors/describe", "/v1/schemes"):
        assert path in commands, f"no README example for {path}"


@pytest.mark.parametrize(("command", "expected"), EXAMPLES, ids=[c[:60] for c, _ in EXAMPLES])
def test_readme_command_prints_what_the_readme_shows(
    server: Server, command: str, expected: str, tmp_path: Path
) -> None:
    live = command.replace("localhost:8000", server.base)
    result = subprocess.run(
        ["bash", "-o", "pipefail", "-c", live],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        env={**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"},
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.rstrip("\n") == expected.rstrip("\n")


PYTHON = [
    b for b in re.findall(r"```python\n(.*?)```", README.read_text(), re.S) if "localhost:8000" in b
]


def test_the_readme_has_a_python_example() -> None:
    assert PYTHON


@pytest.mark.parametrize("code", PYTHON, ids=[f"python-{i}" for i in range(len(PYTHON))])
def test_readme_python_runs_against_a_live_server(
    server: Server, code: str, tmp_path: Path
) -> None:
    live = code.replace("localhost:8000", server.base)
    result = subprocess.run(
        [sys.executable, "-c", live], capture_output=True, text=True, timeout=120, cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
