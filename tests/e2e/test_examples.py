"""The non-Python clients of examples/ run against a live server and check their numbers."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from bench.live import Server

ROOT = Path(__file__).resolve().parents[2]


def run(command: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, capture_output=True, text=True, timeout=120, cwd=ROOT)


def test_node_example_parses_safetensors_and_npy(server: Server) -> None:
    node = shutil.which("node")
    if node is None:
        pytest.fail("node is not installed; the examples need Node 20 (CI machines have it)")
    done = run([node, "examples/node/fetch.mjs", server.url])
    assert done.returncode == 0, done.stderr
    assert "safetensors fc.weight F32: shape [512,256]" in done.stdout
    assert "npy <f4: shape [300,200]" in done.stdout
    assert '"algorithm":"philox4x32-10+as241-f64/v1"' in done.stdout


def test_curl_example_decodes_raw_bytes(server: Server) -> None:
    done = run(["bash", "examples/curl.sh", server.url])
    assert done.returncode == 0, done.stderr
    assert "shape 256,128 (32768 values, 131072 bytes)" in done.stdout


def test_examples_fail_loudly_when_the_numbers_are_wrong(server: Server, tmp_path: Path) -> None:
    broken = tmp_path / "curl.sh"
    broken.write_text((ROOT / "examples/curl.sh").read_text().replace("256 * 128", "256 * 127"))
    done = run(["bash", str(broken), server.url])
    assert done.returncode != 0
    assert "do not match the plan" in done.stderr
