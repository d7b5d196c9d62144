"""Reliability checks of a deployment on loopback: two replicas behind the project's nginx.

    .venv/bin/python -m bench.ops load   [--seconds 60] [--clients 8]
    .venv/bin/python -m bench.ops fault  [--mib 512]
    .venv/bin/python -m bench.ops memory [--streams 16] [--gib 1]

load: concurrent clients send a mix of small GETs (64x64 float32, a new seed each time, so no
cache hit) and large ones (16 MiB, a few fixed seeds, cached by nginx after the first); counts
failures, prints throughput and p50/p99 latency per kind.
fault: a large download through nginx; one replica is killed in the middle; the client resumes
with Range/If-Range; the file's SHA-256 must equal a clean download's.
memory: N concurrent streams of G GiB from one replica; prints the peak RSS rise over idle
against the bound the settings imply (streams x 3 blocks + 64 MiB).
Results go to docs/operations.md with the command and the machine.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import platform
import random
import tempfile
import threading
import time
from pathlib import Path

import httpx

from bench.cluster import cluster
from bench.live import peak_rss
from service.client import Client


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def load(seconds: float, clients: int) -> None:
    with tempfile.TemporaryDirectory() as tmp, cluster(Path(tmp)) as c:
        stop = time.monotonic() + seconds
        stats: dict[str, list[float]] = {"small": [], "large": []}
        sizes = {"small": 0, "large": 0}
        failures: list[str] = []
        lock = threading.Lock()

        def worker(seed: int) -> None:
            rng = random.Random(seed)
            with httpx.Client(base_url=c.url, timeout=60) as http:
                while time.monotonic() < stop:
                    large = rng.random() < 0.1
                    kind = "large" if large else "small"
                    url = (
                        f"/v1/tensors/he_normal?shape=2048,2048&seed={rng.randrange(4)}&format=raw"
                        if large
                        else f"/v1/tensors/he_normal?shape=64,64&seed={rng.randrange(2**63)}"
                    )
                    began = time.perf_counter()
                    try:
                        r = http.get(url)
                        ok = r.status_code == 200 and len(r.content) == int(
                            r.headers["content-length"]
                        )
                    except httpx.HTTPError as exc:
                        ok, r = False, None
                        failures.append(repr(exc))
                    took = time.perf_counter() - began
                    with lock:
                        if ok and r is not None:
                            stats[kind].append(took)
                            sizes[kind] += len(r.content)
                        elif r is not None:
                            failures.append(f"{r.status_code} {url}")

        threads = [threading.Thread(target=worker, args=(i,)) for i in range(clients)]
        began = time.monotonic()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        elapsed = time.monotonic() - began
        machine = f"{platform.machine()}, {os.cpu_count()} cpus"
        print(f"load: {clients} clients, {elapsed:.0f} s, nginx + 2 replicas; {machine}")
        print(f"failed requests: {len(failures)} {failures[:3]}")
        print(
            "| kind | requests | req/s | MB/s | p50 ms | p99 ms |\n|---|---:|---:|---:|---:|---:|"
        )
        for kind, times in stats.items():
            rate, mbs = len(times) / elapsed, sizes[kind] / elapsed / 1e6
            p50, p99 = 1000 * percentile(times, 0.5), 1000 * percentile(times, 0.99)
            print(f"| {kind} | {len(times)} | {rate:.0f} | {mbs:.0f} | {p50:.1f} | {p99:.1f} |")


def fault(mib: int) -> None:
    elements = mib * (1 << 20) // 4
    shape = [elements // 4096, 4096]
    with tempfile.TemporaryDirectory() as tmp, cluster(Path(tmp), replicas=3) as c:
        with Client(c.replica_urls[2]) as direct:
            r = direct.resource("he_normal", shape, seed=11, format="raw")
            clean = hashlib.sha256(direct.fetch(r)).hexdigest()

        # 1. replica A serves the stream and dies at 1/3; the client resumes on replica B
        data, cut = bytearray(), "the whole body (the kill came too late)"
        try:
            with httpx.stream("GET", c.replica_urls[0] + r.url, timeout=60) as first:
                for chunk in first.iter_raw():
                    data += chunk
                    if len(data) > r.length // 3:
                        c.replicas[0].kill()
        except httpx.HTTPError as exc:
            cut = f"{len(data)} bytes, then {type(exc).__name__}"
        headers = {"Range": f"bytes={len(data)}-", "If-Range": r.etag}
        rest = httpx.get(c.replica_urls[1] + r.url, headers=headers, timeout=60)
        data += rest.content
        resumed = hashlib.sha256(data).hexdigest()
        where = f"{rest.status_code} {rest.headers.get('content-range')}"
        print(f"fault 1: {mib} MiB from replica A, killed after {cut}; resumed on B: {where}")
        print(f"  clean sha256   {clean}\n  resumed sha256 {resumed}\n  equal: {resumed == clean}")

        # 2. through nginx: the replica serving the answer dies; the client resumes the rest
        killed = threading.Event()

        def progress(done: int, total: int) -> None:
            if not killed.is_set() and done > total // 3:
                c.replicas[1].kill()
                killed.set()

        with Client(c.url, backoff=0.1) as via_nginx:
            began = time.perf_counter()
            got = hashlib.sha256(via_nginx.fetch(r, progress=progress)).hexdigest()
            took = time.perf_counter() - began
        print(f"fault 2: {mib} MiB through nginx, a second replica killed at 1/3; {took:.1f} s")
        print(f"  sha256 {got}\n  equal: {got == clean}")
        if resumed != clean or got != clean or rest.status_code != 206:
            raise SystemExit(1)


def memory(streams: int, gib: int) -> None:
    side = int((gib * (1 << 30) // 4) ** 0.5)
    env = {"WEIGHTGEN_MAX_STREAMS": str(streams)}
    with tempfile.TemporaryDirectory() as tmp, cluster(Path(tmp), replicas=1, env=env) as c:
        pid = c.replicas[0].pid
        url = f"{c.replica_urls[0]}/v1/tensors/he_normal?shape={side},{side}&format=raw&seed="

        httpx.get(url + "0").raise_for_status()  # warm up the engine and the allocator
        received = [0] * streams

        def drain(i: int) -> None:
            with httpx.stream("GET", url + str(i + 1), timeout=600) as r:
                for chunk in r.iter_raw():
                    received[i] += len(chunk)

        def all_streams() -> float:
            began = time.perf_counter()
            threads = [threading.Thread(target=drain, args=(i,)) for i in range(streams)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            return time.perf_counter() - began

        took, idle, peak = peak_rss(pid, all_streams, every=0.05)
        block = 4 * (1 << 20)  # WEIGHTGEN_BLOCK_ELEMENTS x 4 bytes
        bound = streams * 3 * block + (64 << 20)
        total = sum(received)
        gib_all = total / 2**30
        print(
            f"memory: {streams} streams of {side}x{side} float32, {gib_all:.1f} GiB in {took:.1f} s"
        )
        mib = [x / 2**20 for x in (idle, peak, peak - idle, bound)]
        print(
            "RSS idle {:.0f} MiB, peak {:.0f} MiB, rise {:.0f} MiB; bound {:.0f} MiB".format(*mib)
        )
        if peak - idle > bound or total != streams * side * side * 4:
            raise SystemExit(1)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="check", required=True)
    p = sub.add_parser("load")
    p.add_argument("--seconds", type=float, default=60)
    p.add_argument("--clients", type=int, default=8)
    p = sub.add_parser("fault")
    p.add_argument("--mib", type=int, default=512)
    p = sub.add_parser("memory")
    p.add_argument("--streams", type=int, default=16)
    p.add_argument("--gib", type=int, default=1)
    args = parser.parse_args()
    if args.check == "load":
        load(args.seconds, args.clients)
    elif args.check == "fault":
        fault(args.mib)
    else:
        memory(args.streams, args.gib)


if __name__ == "__main__":
    main()
