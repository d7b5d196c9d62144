"""End-to-end HTTP throughput against two baselines, interleaved in one run (the performance targets, docs/architecture.md).

    OPENBLAS_NUM_THREADS=1 .venv/bin/python -m bench.http [--repeats 5] [--small-seconds 10]

Starts on loopback, one uvicorn worker each: weightgen (`python -m service`), a baseline
FastAPI app streaming `torch.Tensor.normal_` chunks, and a bare FastAPI app answering 16 KiB.
Large: GET 256 MiB and 1 GiB of float32 normals from weightgen (he_normal, raw) and from the
baseline, each read by two clients: `curl` (C, little CPU: the servers set the pace) and an
httpx client (Python: on two cores it needs about one of them, and sets the pace for both);
medians of interleaved runs. Small: 64x64 float32 by GET under `wrk` (16 connections, 2
threads) against the bare app's 16 KiB. Memory: weightgen's peak RSS above idle while a 4 GiB
tensor streams. Prints markdown for docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

from bench.live import curl, drain, free_port, live_process, live_server, peak_rss

BASELINES = """
import torch
from fastapi import FastAPI
from fastapi.responses import Response, StreamingResponse

torch.set_num_threads(1)
app = FastAPI()
SMALL = bytes(16384)
CHUNK = 1 << 18  # float32 values per chunk: 1 MiB


@app.get("/normal")
def normal(n: int) -> StreamingResponse:
    def chunks():
        left = n
        while left > 0:
            k = min(CHUNK, left)
            yield torch.empty(k).normal_().numpy().tobytes()
            left -= k

    return StreamingResponse(chunks(), media_type="application/octet-stream", headers={"Content-Length": str(4 * n)})


@app.get("/small")
def small() -> Response:
    return Response(SMALL, media_type="application/octet-stream")
"""


def wrk(url: str, seconds: int) -> float:
    out = subprocess.run(
        ["wrk", "-t2", "-c16", f"-d{seconds}s", url], capture_output=True, text=True, check=True
    ).stdout
    match = re.search(r"Requests/sec:\s+([\d.]+)", out)
    return float(match.group(1)) if match else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--small-seconds", type=int, default=10)
    args = parser.parse_args()
    uvicorn = [sys.executable, "-m", "uvicorn", "--log-level", "warning", "--no-access-log"]
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        (work / "baselines.py").write_text(textwrap.dedent(BASELINES))
        base = free_port()
        with (
            live_server(work) as server,
            live_process(
                [*uvicorn, "baselines:app", "--port", str(base)],
                base,
                work,
                probe="/docs",
                cwd=work,
            ),
        ):
            print(
                f"machine: {platform.machine()}, {os.cpu_count()} cpus; {args.repeats} interleaved runs, medians"
            )
            print(
                "\n| large GET (float32 normals) | client | weightgen MB/s | baseline MB/s | ratio |\n|---|---|---:|---:|---:|"
            )
            clients = {"curl": curl, "httpx": drain}
            for mib in (256, 1024):
                n = mib * (1 << 20) // 4
                side = 4096
                ours = (
                    f"{server.url}/v1/tensors/he_normal?shape={n // side},{side}&seed=1&format=raw"
                )
                theirs = f"http://127.0.0.1:{base}/normal?n={n}"
                times: dict[tuple[str, str], list[float]] = {}
                for _ in range(args.repeats):
                    for name, read in clients.items():
                        for side_name, url in (("ours", ours), ("theirs", theirs)):
                            times.setdefault((name, side_name), []).append(read(url))
                mb = mib * (1 << 20) / 1e6
                for name in clients:
                    ra = mb / statistics.median(times[name, "ours"])
                    rb = mb / statistics.median(times[name, "theirs"])
                    print(f"| {mib} MiB | {name} | {ra:.0f} | {rb:.0f} | {ra / rb:.2f} |")
            if shutil.which("wrk"):
                small = f"{server.url}/v1/tensors/he_normal?shape=64,64&seed=1&format=raw"
                bare = f"http://127.0.0.1:{base}/small"
                x, y = [], []
                for _ in range(args.repeats):
                    x.append(wrk(small, args.small_seconds))
                    y.append(wrk(bare, args.small_seconds))
                rx, ry = statistics.median(x), statistics.median(y)
                print(
                    f"\n| small GET, wrk -t2 -c16 | weightgen req/s | bare FastAPI req/s | ratio |\n|---|---:|---:|---:|\n| 64x64 float32 vs 16 KiB | {rx:.0f} | {ry:.0f} | {rx / ry:.2f} |"
                )
            huge = f"{server.url}/v1/tensors/he_normal?shape={(1 << 30) // 4096},4096&seed=2&format=raw"
            _, idle, peak = peak_rss(server.pid, lambda: drain(huge))
            print(
                f"\nmemory: a 4 GiB stream raised weightgen's RSS from {idle / 2**20:.0f} to {peak / 2**20:.0f} MiB (+{(peak - idle) / 2**20:.0f} MiB)"
            )


if __name__ == "__main__":
    main()
