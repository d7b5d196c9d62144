"""Values per second of each engine × distribution × dtype, against torch and numpy's own RNGs.

    OPENBLAS_NUM_THREADS=1 .venv/bin/python -m bench.engines [--elements N] [--repeats R]
    WEIGHTGEN_KERNEL=avx2 (or =portable) ...   a lower build of the kernel than the CPU's best

Every configuration runs R times, interleaved round-robin so a noisy neighbour hits all of them
alike; the table shows the median rate and its ratio to `torch.Tensor.normal_` (float32) on
one thread (it does not scale past one here). Prints markdown, ready for docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from collections.abc import Callable

import numpy as np
import torch

from service import schemes
from service.config import Settings
from service.dtypes import DTYPES
from service.engines import fast
from service.engines.numpy_engine import NumpyEngine
from service.engines.torch_engine import TorchEngine
from service.plan import sampling

LAWS = {
    "normal": ("he_normal", "torch"),
    "truncated_normal": ("he_normal", "keras"),
    "uniform": ("he_uniform", "keras"),
}


def cases(n: int, dtypes: list[str], threads: int) -> dict[str, Callable[[], object]]:
    shape = (n // 1024, 1024)
    out: dict[str, Callable[[], object]] = {}
    buf = torch.empty(n)
    gen = np.random.default_rng(0)
    out["baseline torch.Tensor.normal_ float32"] = lambda: buf.normal_()
    out["baseline numpy standard_normal float32"] = lambda: gen.standard_normal(n, np.float32)
    engines = {
        "fused kernel, 1 thread": NumpyEngine(threads=1),
        **(
            {f"fused kernel, {threads} threads": NumpyEngine(threads=threads)}
            if threads > 1
            else {}
        ),
        "numpy reference": NumpyEngine(fast=False),
        "torch reference": TorchEngine(),
    }
    for label, engine in engines.items():
        if label.startswith("fused") and not engine.fast:  # type: ignore[attr-defined]
            continue
        for law, (scheme, convention) in LAWS.items():
            plan = schemes.resolve(scheme, shape, convention)
            for dt in dtypes:
                s = sampling(plan, 1, "weight", DTYPES[dt])  # type: ignore[index]
                out[f"{label}: {law} {dt}"] = (
                    lambda e=engine, s=s: e.generate(s, 0, n, "cpu")  # type: ignore[misc]
                )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    # the service's block: what one engine call generates in a stream. Much larger arrays are
    # mmap'd afresh by every call, and two threads faulting them in contend (float64 at 2^22
    # elements, 32 MiB: 97 M/s on two threads against 427 on one)
    parser.add_argument("--elements", type=int, default=Settings().block_elements)
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--threads", type=int, default=2, help="for the fused kernel")
    parser.add_argument("--dtypes", default="float32,float64,bfloat16")
    args = parser.parse_args()
    torch.set_num_threads(1)  # torch's normal_ does not scale past one thread here
    runs = cases(args.elements, args.dtypes.split(","), args.threads)
    times: dict[str, list[float]] = {k: [] for k in runs}
    for fn in runs.values():  # warm-up
        fn()
    for _ in range(args.repeats):
        for name, fn in runs.items():
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
    rate = {k: args.elements / statistics.median(v) for k, v in times.items()}
    base = rate["baseline torch.Tensor.normal_ float32"]
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cpus; "
        f"torch {torch.__version__}, numpy {np.__version__}; torch 1 thread; kernel {fast.isa()}; "
        f"{args.elements} elements x {args.repeats} interleaved runs, median"
    )
    print("\n| configuration | M values/s | × torch normal_ |\n|---|---:|---:|")
    for name, r in rate.items():
        print(f"| {name} | {r / 1e6:.1f} | {r / base:.2f} |")


if __name__ == "__main__":
    main()
