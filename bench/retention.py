"""Memory a server keeps after bursts of aborted streams: its RSS idle, then after each of four
rounds of 200 streams of a 256 MiB tensor, each read for 2 MiB and dropped (8 at a time), once
the server is quiet again. One server per variant, each a fresh process:

- `glibc dynamic threshold`: `WEIGHTGEN_MALLOC_MMAP_THRESHOLD=0`, malloc as glibc sets it up;
- `+ malloc_trim each second`: the same, with `malloc_trim(0)` called by a thread once a second
  (what a trim-after-bursts hook would do at best);
- `MALLOC_ARENA_MAX=2`: the same, with fewer per-thread arenas to retain memory in;
- `threshold pinned at 128 KiB`: the service's default (`service/allocator.py`): every block
  buffer (MiBs) is its own mapping, returned when freed.

    OPENBLAS_NUM_THREADS=1 .venv/bin/python -m bench.retention [--rounds 4] [--streams 200]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from bench.live import free_port, live_process, rss

TRIMMER = """
import ctypes, sys, threading, time
libc = ctypes.CDLL("libc.so.6")
def trim():
    while True:
        time.sleep(1.0)
        libc.malloc_trim(0)
threading.Thread(target=trim, daemon=True).start()
from service.cli import main
main(["serve", *sys.argv[1:]])
"""
GLIBC = {"WEIGHTGEN_MALLOC_MMAP_THRESHOLD": "0"}
SERVE = [sys.executable, "-m", "service"]
VARIANTS = {
    "glibc dynamic threshold": (SERVE, GLIBC),
    "+ malloc_trim each second": ([sys.executable, "-c", TRIMMER], GLIBC),
    "MALLOC_ARENA_MAX=2": (SERVE, {**GLIBC, "MALLOC_ARENA_MAX": "2"}),
    "threshold pinned at 128 KiB": (SERVE, {}),
}
URL = "/v1/tensors/he_normal?shape=8192,8192&seed=1&format=raw"


def aborted(url: str) -> None:
    with httpx.stream("GET", url, timeout=60) as r:
        for got, _ in enumerate(r.iter_raw(1 << 20)):
            if got >= 1:
                return


def settled(pid: int) -> int:
    """RSS once it stops falling (streams finish their block in flight), in MiB."""
    last = rss(pid)
    for _ in range(20):
        time.sleep(0.5)
        now = rss(pid)
        if now >= last:
            break
        last = now
    return last >> 20


def run(name: str, rounds: int, streams: int, workdir: Path) -> str:
    command, env = VARIANTS[name]
    port = free_port()
    full = [*command, "--host", "127.0.0.1", "--port", str(port)]
    with live_process(full, port, workdir, env=env) as server:
        httpx.get(server.url + URL.replace("8192,8192", "64,64"), timeout=10)
        idle = settled(server.pid)
        after = []
        with ThreadPoolExecutor(8) as pool:
            for _ in range(rounds):
                list(pool.map(lambda _: aborted(server.url + URL), range(streams)))
                after.append(settled(server.pid))
    return f"| {name} | {idle} | " + " | ".join(str(a) for a in after) + " |"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--streams", type=int, default=200)
    args = parser.parse_args()
    heads = " | ".join(f"after round {i + 1}" for i in range(args.rounds))
    print(f"| allocator | idle MiB | {heads} |")
    print("|---|---:|" + "---:|" * args.rounds)
    with tempfile.TemporaryDirectory() as tmp:
        for name in VARIANTS:
            print(run(name, args.rounds, args.streams, Path(tmp)), flush=True)


if __name__ == "__main__":
    main()
