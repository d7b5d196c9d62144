"""Ranks that fetch only their shard: 4 processes (gloo on CPU), each with a TinyLlama-sized
`hf.llama` model (1.1B parameters, bfloat16) built on the meta device and sharded by FSDP2
(`fully_shard` per decoder layer and the root), filling it with
`service.client.distributed.load_module` in parallel, against one process filling the unsharded
model whole with the same function; one live server on loopback for both, in one run. Reported:
each process's wall time (from the start of all of them to its end, imports included), its `load_module` time, the bytes it
fetched, and its peak resident memory (`ru_maxrss` of the waited child); the server's peak.

    OPENBLAS_NUM_THREADS=1 .venv/bin/python -m bench.distributed [--world 4]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any

from bench.checkpoint import TINYLLAMA, hwm
from bench.live import free_port, live_server

GIB = 2**30
BODY: dict[str, Any] = {"seed": 0, "recipe": "hf.llama", "config": TINYLLAMA, "dtype": "bfloat16"}


def rank(url: str, rank: int, world: int, port: int, t0: float) -> None:
    """One process: build on meta, shard (world > 1), fill; print what it took as JSON."""
    import torch
    import torch.distributed as dist
    import transformers

    from service.client import Client
    from service.client.distributed import load_module

    torch.set_num_threads(1)
    auto: Any = transformers.AutoModelForCausalLM
    config: Any = TINYLLAMA
    with torch.device("meta"):
        model = auto.from_config(transformers.AutoConfig.for_model(**config))
    if world > 1:
        from torch.distributed.device_mesh import init_device_mesh
        from torch.distributed.fsdp import fully_shard

        dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank,
                                world_size=world)  # fmt: skip
        mesh = init_device_mesh("cpu", (world,))
        for layer in model.model.layers:
            fully_shard(layer, mesh=mesh)
        fully_shard(model, mesh=mesh)
        dist.barrier()
    began = time.perf_counter()
    with Client(url, timeout=600) as client:
        loaded = load_module(client, model, BODY)
    seconds = time.perf_counter() - began
    if world > 1:
        dist.barrier()
        dist.destroy_process_group()
    print(json.dumps({"load": seconds, "bytes": loaded.bytes, "wall": time.time() - t0}))


def run(url: str, world: int) -> list[dict[str, float]]:
    """`world` processes started together; per process: wall, load s, bytes, peak RSS."""
    port, t0 = free_port(), time.time()
    internal = ["--world", str(world), "--port", str(port), "--url", url, "--t0", repr(t0)]
    command = [sys.executable, "-m", "bench.distributed", *internal, "--rank"]
    procs = [subprocess.Popen([*command, str(r)], stdout=subprocess.PIPE) for r in range(world)]
    out = []
    for proc in procs:
        assert proc.stdout is not None
        text = proc.stdout.read()
        _, status, usage = os.wait4(proc.pid, 0)
        if os.waitstatus_to_exitcode(status) != 0:
            raise SystemExit(f"a rank failed with status {status}")
        report = json.loads(text.decode().strip().splitlines()[-1])
        out.append({**report, "rss": usage.ru_maxrss * 1024})
    return out


def show(label: str, reports: list[dict[str, float]]) -> None:
    for r, rep in enumerate(reports):
        print(
            f"{label} process {r}: wall {rep['wall']:.1f} s (load_module {rep['load']:.1f} s), "
            f"{rep['bytes'] / 1e9:.3f} GB fetched, peak RSS {rep['rss'] / GIB:.2f} GiB"
        )
    print(
        f"{label}: slowest process {max(r['wall'] for r in reports):.1f} s, slowest load "
        f"{max(r['load'] for r in reports):.1f} s, {sum(r['bytes'] for r in reports) / 1e9:.3f} GB "
        f"in all, peak RSS {max(r['rss'] for r in reports) / GIB:.2f} GiB per process at most"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--world", type=int, default=4)
    parser.add_argument("--rank", type=int, default=None, help="(internal) run as this rank")
    parser.add_argument("--port", type=int, default=0, help="(internal) gloo's port")
    parser.add_argument("--url", default="", help="(internal) the server")
    parser.add_argument("--t0", type=float, default=0.0, help="(internal) when it was started")
    args = parser.parse_args()
    if args.rank is not None:
        rank(args.url, args.rank, args.world, args.port, args.t0)
        return
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, Python "
          f"{platform.python_version()}")  # fmt: skip
    env = {"WEIGHTGEN_MAX_ELEMENTS": str(2**32), "WEIGHTGEN_MAX_BYTES": str(2**36)}
    with TemporaryDirectory() as work, live_server(Path(work), env) as server:
        show(f"FSDP2 x{args.world}", run(server.url, args.world))
        peak = hwm(server.pid)
        show("one process, whole", run(server.url, 1))
        print(f"server peak RSS {max(peak, hwm(server.pid)) / GIB:.2f} GiB")


if __name__ == "__main__":
    main()
