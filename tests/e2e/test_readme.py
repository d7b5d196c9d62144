"""Every `$ command` in the README's console blocks runs against a live server as written,
and prints exactly the output the README shows."""

from __future__ import annotations

import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

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


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`python -m service` on a free loopback port, as a newcomer would start it."""
    port = free_port()
    log = tmp_path_factory.mktemp("server") / "server.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "service", "--host", "127.0.0.1", "--port", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    base = f"127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while not _healthy(base):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the server did not start:\n{log.read_text()}")
            time.sleep(0.1)
        yield base
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def _healthy(base: str) -> bool:
    try:
        return httpx.get(f"http://{base}/healthz").status_code == 200
    except httpx.TransportError:
        return False


EXAMPLES = console_examples()


def test_the_readme_has_examples_for_every_endpoint() -> None:
    commands = " ".join(c for c, _ in EXAMPLES)
    for path in ("/healthz", "/readyz", "/v1/tensors/describe", "/v1/schemes"):
        assert path in commands, f"no README example for {path}"


@pytest.mark.parametrize(("command", "expected"), EXAMPLES, ids=[c[:60] for c, _ in EXAMPLES])
def test_readme_command_prints_what_the_readme_shows(
    server: str, command: str, expected: str
) -> None:
    live = command.replace("localhost:8000", server)
    result = subprocess.run(
        ["bash", "-o", "pipefail", "-c", live], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.rstrip("\n") == expected.rstrip("\n")
