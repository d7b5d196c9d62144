"""Where a checkpoint's time goes: the CPU each stage of `bench.checkpoint`'s TinyLlama-sized
`hf.llama` bundle (1.1B parameters, bfloat16) costs on its own, so that the stages can be set
against the wall time of the whole. In one process, no HTTP: the bundle's bytes generated block
by block as a stream makes them (the engine's threads); SHA-256 of those bytes (what the server
does for `Repr-Digest`, and the client again to check it); then, with a live server on
loopback, the bundle fetched by curl into /dev/null (the server alone: generation, digest and
sending, with the cheapest client) when curl is there; the narrowing of a million float32
values to bfloat16 by ml_dtypes' cast (the reference path) and by the kernel's `to_bfloat16`;
and 2.2 GB of 2 MiB block arrays filled and dropped, fresh from numpy under the server's pinned
mmap threshold against the engine's pool (`engines/blocks.py`): the system time of fresh pages.

    .venv/bin/python -m bench.budget [--layers 22]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import ml_dtypes
import numpy as np

from bench.checkpoint import TINYLLAMA, cpu
from bench.live import live_server
from service import allocator
from service.api.deps import Services
from service.api.metrics import Metrics
from service.api.models import BundleRequest
from service.api.stream import generate
from service.bundle import BundlePlan, plan_bundle
from service.config import Settings
from service.engines import fast
from service.engines.blocks import Blocks
from service.plan import Span


def _bundle(layers: int) -> tuple[BundlePlan, int]:
    s = Services.build(Settings(), {})
    config = {**TINYLLAMA, "num_hidden_layers": layers}
    body = BundleRequest.model_validate(
        {"seed": 0, "recipe": "hf.llama", "config": config, "dtype": "bfloat16"}
    )
    return plan_bundle(body.to_spec(), s.limits, s.engines), s.settings.block_elements


def _blocks(b: BundlePlan, block: int) -> Iterator[bytes | memoryview]:
    metrics = Metrics()
    for piece in b.spans(0, b.content_length, block):
        yield generate(piece, metrics, "safetensors") if isinstance(piece, Span) else piece


def _timed(what: str, run: Callable[[], int]) -> None:
    began, before = time.perf_counter(), os.times()
    n = run()
    after = os.times()
    print(
        f"{what}: {n / 1e9:.2f} GB in {time.perf_counter() - began:.2f} s wall, CPU user "
        f"{after.user - before.user:.2f} s, system {after.system - before.system:.2f} s"
    )


def _served(layers: int) -> None:
    """curl of the bundle from a live server into /dev/null: its wall time and the server's CPU."""
    curl = shutil.which("curl")
    if curl is None:
        print("curl is not installed: the served row is left out")
        return
    config = {**TINYLLAMA, "num_hidden_layers": layers}
    body = {"seed": 1, "recipe": "hf.llama", "config": config, "dtype": "bfloat16"}
    env = {"WEIGHTGEN_MAX_ELEMENTS": str(2**32), "WEIGHTGEN_MAX_BYTES": str(2**36)}
    with tempfile.TemporaryDirectory() as work, live_server(Path(work), env) as server:
        url = server.url + httpx.post(f"{server.url}/v1/bundles/describe", json=body).json()["url"]
        user, system = cpu(server.pid)
        began = time.perf_counter()
        subprocess.run([curl, "-sf", "-o", os.devnull, url], check=True)
        wall = time.perf_counter() - began
        user, system = (b - a for a, b in zip((user, system), cpu(server.pid), strict=True))
    print(f"served to curl: {wall:.2f} s wall; server CPU user {user:.2f} s, system {system:.2f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--layers", type=int, default=22, help="hidden layers (TinyLlama: 22)")
    args = parser.parse_args()
    print(f"machine: {os.cpu_count()} CPUs; hf.llama TinyLlama-sized, {args.layers} layers, bf16")
    b, block = _bundle(args.layers)

    def drawn() -> int:
        return sum(len(data) for data in _blocks(b, block))

    def hashed() -> int:
        h, n = hashlib.sha256(), 0
        for data in _blocks(b, block):
            h.update(data)
            n += len(data)
        return n

    _timed("generated", drawn)
    _timed("generated and hashed (one thread after the other)", hashed)
    _served(args.layers)
    _narrowing()
    _pages()


def _narrowing(n: int = 1 << 20, rounds: int = 200) -> None:
    values = np.random.default_rng(0).standard_normal(n).astype(np.float32)
    out = np.empty(n, np.uint16)
    began = time.perf_counter()
    for _ in range(rounds):
        values.astype(ml_dtypes.bfloat16)
    cast = (time.perf_counter() - began) / rounds
    if fast.CORE is None:
        print(f"bfloat16 narrowing of {n} values: ml_dtypes {cast * 1e3:.2f} ms (no kernel)")
        return
    began = time.perf_counter()
    for _ in range(rounds):
        fast.CORE.to_bfloat16(values, out)
    kernel = (time.perf_counter() - began) / rounds
    print(
        f"bfloat16 narrowing of {n} values: ml_dtypes {cast * 1e3:.2f} ms (GIL held), "
        f"kernel {kernel * 1e3:.2f} ms (GIL released)"
    )


def _pages(count: int = 1100, n: int = 1 << 20) -> None:
    """Block arrays of n bfloat16 values, filled and dropped: numpy's (a new mapping each, under
    the threshold `serve` pins) and the pool's (the same mapping again once let go)."""
    allocator.pin_mmap_threshold(Settings().malloc_mmap_threshold)
    pool = Blocks()
    for what, make in (("fresh numpy arrays", lambda: np.empty(n, np.uint16)),
                       ("the block pool", lambda: pool.empty(n, np.uint16))):  # fmt: skip
        before = os.times()
        for _ in range(count):
            make().fill(1)
        spent = os.times().system - before.system
        print(
            f"{count} blocks of {2 * n >> 20} MiB filled and dropped, {what}: system {spent:.2f} s"
        )


if __name__ == "__main__":
    main()
