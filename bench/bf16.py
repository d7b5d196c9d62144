"""bfloat16 normals in the fused kernel, before and after its float32 Φ⁻¹ shortcut, in one run.

    OPENBLAS_NUM_THREADS=1 .venv/bin/python -m bench.bf16 [--elements N] [--repeats R]

- before: what the service did until the shortcut, float32 values (`generate`) narrowed by
  `to_bfloat16`, each thread its own part;
- exact: `generate_bf16(exact=True)`, the float64 Φ⁻¹ with each chunk narrowed in cache;
- shortcut: `generate_bf16`, the float32 Φ⁻¹ where it is proved to give the same bits (the
  AVX-512 build; the others run the exact path).
With float32 normal and uniform (`generate`) for scale: uniform is Philox and the store alone.
Every configuration runs R times, interleaved round-robin so a noisy neighbour hits all alike;
the median, in ns per value and as a speed-up over `before` on as many threads. Prints markdown.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from service.config import Settings
from service.distributions import Normal, Uniform
from service.engines import fast

SIGMA = 0.02  # a large model's init std
Case = Callable[[], object]


def kernel_cases(n: int, threads: int) -> dict[str, Case]:
    """The configurations on `threads` threads (FastKernel's split, as the engine runs them)."""
    kernel = fast.FastKernel(threads)
    normal = fast.Draw(Normal, (1, 7, False), sigma=SIGMA)
    uniform = fast.Draw(Uniform, (1, 7, False), low=-SIGMA, width=2 * SIGMA)
    f32 = np.empty(n, np.float32)
    bits = np.empty(n, np.uint16)

    def split(part: Callable[[int, int], Any]) -> Case:
        return lambda: kernel._split(n, part)  # the engine's thread split, same shares

    def before(lo: int, hi: int) -> None:  # FastKernel.fill's bfloat16 branch until now
        normal.generate(f32[lo:hi], lo, hi)
        normal.core.to_bfloat16(f32[lo:hi], bits[lo:hi])

    t = f"{threads} thread{'s' if threads > 1 else ''}"
    return {
        f"{t}: float32 normal": split(lambda lo, hi: normal.generate(f32[lo:hi], lo, hi)),
        f"{t}: float32 uniform": split(lambda lo, hi: uniform.generate(f32[lo:hi], lo, hi)),
        f"{t}: bfloat16 normal, before": split(before),
        f"{t}: bfloat16 normal, exact": split(
            lambda lo, hi: normal.generate_bf16(bits[lo:hi], lo, hi, exact=True)
        ),
        f"{t}: bfloat16 normal, shortcut": split(
            lambda lo, hi: normal.generate_bf16(bits[lo:hi], lo, hi)
        ),
    }


def medians(runs: dict[str, Case], repeats: int) -> dict[str, float]:
    """Median seconds of each configuration, run round-robin after one warm-up each."""
    times: dict[str, list[float]] = {k: [] for k in runs}
    for fn in runs.values():
        fn()
    for _ in range(repeats):
        for name, fn in runs.items():
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
    return {k: statistics.median(v) for k, v in times.items()}


def redone_share(n: int) -> float:
    """The share of values the shortcut leaves to the float64 path (near a rounding midpoint)."""
    bits = np.empty(n, np.uint16)
    return fast.Draw(Normal, (1, 7, False), sigma=SIGMA).generate_bf16(bits, 0, n) / n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--elements", type=int, default=Settings().block_elements)
    parser.add_argument("--repeats", type=int, default=21)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    if not fast.available():
        raise SystemExit("the fused kernel was not built here")
    n = args.elements
    runs = kernel_cases(n, 1)
    if args.threads > 1:
        runs |= kernel_cases(n, args.threads)
    took = medians(runs, args.repeats)
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cpus; "
        f"numpy {np.__version__}; kernel {fast.isa()}; σ = {SIGMA}; {n} elements x "
        f"{args.repeats} interleaved runs, median; shortcut left {redone_share(n):.3%} "
        "to the float64 path"
    )
    print("\n| configuration | ns/value | M values/s | × before |\n|---|---:|---:|---:|")
    for name, seconds in took.items():
        before = took[name.split(":")[0] + ": bfloat16 normal, before"]
        print(
            f"| {name} | {seconds / n * 1e9:.2f} | {n / seconds / 1e6:.0f} | {before / seconds:.2f} |"
        )


if __name__ == "__main__":
    main()
