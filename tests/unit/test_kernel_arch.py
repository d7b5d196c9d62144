"""The fused kernel's portable C build gives the same bytes on another architecture: built with
setup.py's flags for the host and, cross-compiled, for aarch64 (run under qemu-user), the
hashes of its outputs are equal, deep tails, wide values and offsets past 2^40 included. On x86
the harness also checks the SIMD builds against the portable one, and a second host build
without target clones checks the plain x86-64 code, which this CPU would never pick. Skipped
where the cross compiler or qemu is missing (`make test` installs them with apt where it can),
and on an aarch64 host (it would compare aarch64 with itself)."""

from __future__ import annotations

import ast
import platform
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
HARNESS = Path(__file__).with_name("kernel_harness.c")
CROSS, QEMU = "aarch64-linux-gnu-gcc", "qemu-aarch64"


def setup_flags() -> list[str]:
    """extra_compile_args of setup.py, read from its source (running it would build)."""
    for node in ast.walk(ast.parse((ROOT / "setup.py").read_text())):
        if isinstance(node, ast.keyword) and node.arg == "extra_compile_args":
            flags: list[str] = ast.literal_eval(node.value)
            return flags
    raise AssertionError("setup.py has no extra_compile_args")


def build(compiler: str, out: Path, *extra: str) -> None:
    flags = setup_flags()
    assert "-ffp-contract=off" in flags
    include = f"-I{ROOT / 'service/engines'}"
    command = [compiler, *flags, "-Wall", "-Werror", *extra, include, str(HARNESS)]
    subprocess.run([*command, "-o", str(out), "-lm"], check=True, capture_output=True)


@pytest.mark.skipif(platform.machine() in ("aarch64", "arm64"), reason="the host is aarch64")
@pytest.mark.skipif(
    shutil.which("gcc") is None or shutil.which(CROSS) is None or shutil.which(QEMU) is None,
    reason=f"needs gcc, {CROSS} and {QEMU} (apt: gcc-aarch64-linux-gnu qemu-user)",
)
def test_the_portable_kernel_gives_the_same_bytes_on_aarch64(tmp_path: Path) -> None:
    build("gcc", tmp_path / "host")
    build("gcc", tmp_path / "plain", "-DWEIGHTGEN_NO_CLONES")
    build(CROSS, tmp_path / "aarch64", "-static")
    host = subprocess.run([tmp_path / "host"], capture_output=True, text=True, check=True)
    plain = subprocess.run([tmp_path / "plain"], capture_output=True, text=True, check=True)
    arm = subprocess.run([QEMU, tmp_path / "aarch64"], capture_output=True, text=True, check=True)
    assert len(host.stdout.splitlines()) == 21  # 7 cases x (2 ranges + runs)
    assert plain.stdout == host.stdout
    assert arm.stdout == host.stdout
