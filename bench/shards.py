"""A shard against the whole tensor: the seconds to produce the payload of a 1/8 column shard
(`shard=1:r:8`, tensor parallel's Shard(1)) of an 8192×8192 float32 tensor, and of a 1/8 row
shard, against the whole tensor, in one run (DESIGN §6: a 1/8 column shard ≤ 0.2× the whole).

    OPENBLAS_NUM_THREADS=1 .venv/bin/python -m bench.shards [--size N] [--repeats R] [--threads T]

Each payload is planned as the service plans it and generated span by span as a stream
generates it (`Plan.spans`, `engine.generate`, blocks of WEIGHTGEN_BLOCK_ELEMENTS, the kernel's
threads as the service's), without the sockets. The cases run R times round-robin, so a noisy
neighbour hits them alike; the table shows each case's median and its ratio to the whole.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from functools import partial

from service.config import Settings
from service.engines import Engines
from service.plan import Limits, Plan, Span, TensorSpec, plan
from service.slices import Shard


def produce(p: Plan, block: int) -> int:
    """Every byte of the payload, as a stream makes it; the number of bytes."""
    made = 0
    for piece in p.spans(0, p.content_length, block):
        if isinstance(piece, Span):
            made += len(p.engine.generate(p.sampling, piece.lo, piece.hi, p.device))
        else:
            made += len(piece)
    return made


def cases(size: int, threads: int) -> dict[str, Plan]:
    engines = Engines("numpy", ("cpu",), threads)
    limits = Limits(max_elements=1 << 40, max_bytes=1 << 42)

    def one(shard: Shard | None) -> Plan:
        spec = TensorSpec((size, size), "he_normal", "torch", seed=7, format="raw", part=shard)
        return plan(spec, limits, engines)

    return {
        "whole": one(None),
        "1/8 columns (shard=1:3:8)": one(Shard(1, 3, 8)),
        "1/8 rows (shard=0:3:8)": one(Shard(0, 3, 8)),
    }


def main() -> None:
    settings = Settings()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=8192)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=settings.threads)
    args = parser.parse_args()
    plans = cases(args.size, args.threads)
    runs: dict[str, Callable[[], int]] = {
        name: partial(produce, p, settings.block_elements) for name, p in plans.items()
    }
    seconds: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(args.repeats):
        for name, run in runs.items():
            began = time.perf_counter()
            run()
            seconds[name].append(time.perf_counter() - began)
    whole = statistics.median(seconds["whole"])
    print(f"{args.size}x{args.size} float32 he_normal, {args.threads} kernel thread(s)\n")
    print("| payload | bytes | median s | × whole |\n|---|---:|---:|---:|")
    for name, times in seconds.items():
        t = statistics.median(times)
        print(f"| {name} | {plans[name].content_length} | {t:.4f} | {t / whole:.3f} |")


if __name__ == "__main__":
    main()
