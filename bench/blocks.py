"""Block size against throughput: one server per block size, a 1 GiB float32 GET from each
(read by curl, so that the server sets the pace), interleaved, medians.

    OPENBLAS_NUM_THREADS=1 .venv/bin/python -m bench.blocks [--repeats 5]
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import tempfile
from pathlib import Path

from bench.live import curl, live_server

BLOCKS = (1 << 18, 1 << 19, 1 << 20, 1 << 21, 1 << 22)
PATH = "/v1/tensors/he_normal?shape=65536,4096&seed=1&format=raw"  # 1 GiB


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    times: dict[int, list[float]] = {b: [] for b in BLOCKS}
    with tempfile.TemporaryDirectory() as tmp, contextlib.ExitStack() as stack:
        servers = {
            b: stack.enter_context(live_server(Path(tmp), {"WEIGHTGEN_BLOCK_ELEMENTS": str(b)}))
            for b in BLOCKS
        }
        for _ in range(args.repeats):
            for b, server in servers.items():
                times[b].append(curl(server.url + PATH))
    for b, t in times.items():
        print(
            f"| {b} elements ({4 * b >> 20} MiB float32) | {1024 / statistics.median(t):.0f} MiB/s |"
        )


if __name__ == "__main__":
    main()
