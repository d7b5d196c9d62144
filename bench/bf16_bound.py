"""The exhaustive bound of the kernel's bfloat16 fast path: builds bench/bf16_bound.c (the
kernel's source included, setup.py's flags) and runs it over every 32-bit word, or a range.

    .venv/bin/python -m bench.bf16_bound [--first W] [--last W] [--threads T]

Prints the program's report (largest relative error of the float32 Φ⁻¹ per branch, the branch
test and tail checks, the margin under the kernel's BF16_RHO) with the machine and the time it
took; exits with the program's status (1: a check failed). Needs gcc and an AVX-512 CPU. All
2^32 words take about two minutes on two cores here.
"""

from __future__ import annotations

import argparse
import ast
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SOURCE = ROOT / "bench/bf16_bound.c"


def setup_flags() -> list[str]:
    """extra_compile_args of setup.py, read from its source (running it would build)."""
    for node in ast.walk(ast.parse((ROOT / "setup.py").read_text())):
        if isinstance(node, ast.keyword) and node.arg == "extra_compile_args":
            flags: list[str] = ast.literal_eval(node.value)
            return flags
    raise RuntimeError("setup.py has no extra_compile_args")


def build(out: Path, compiler: str = "gcc") -> None:
    """The bound program at `out`: the kernel's code as the extension builds it (contraction
    off), so the float32 Φ⁻¹ it measures is the one the service runs."""
    include = f"-I{ROOT / 'service/engines'}"
    command = [compiler, *setup_flags(), "-Wall", "-Werror", "-Wno-unused-function", include]
    subprocess.run(
        [*command, str(SOURCE), "-o", str(out), "-lm", "-pthread"], check=True, capture_output=True
    )


def run(binary: Path, first: int, last: int, threads: int) -> subprocess.CompletedProcess[str]:
    """The program over words [first, last): its report in stdout, status 1 if a check failed."""
    args = [str(binary), str(first), str(last), str(threads)]
    return subprocess.run(args, capture_output=True, text=True, check=False)


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--first", type=lambda s: int(s, 0), default=0)
    parser.add_argument("--last", type=lambda s: int(s, 0), default=1 << 32)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        binary = Path(tmp) / "bf16_bound"
        build(binary)
        began = time.perf_counter()
        result = run(binary, args.first, args.last, args.threads)
        took = time.perf_counter() - began
    print(f"machine: {platform.machine()}, {cpu_model()}; Python {platform.python_version()}")
    print(result.stdout, end="")
    print(result.stderr, end="", file=sys.stderr)
    print(f"{took:.1f} s")
    sys.exit(result.returncode)


if __name__ == "__main__":
    main()
