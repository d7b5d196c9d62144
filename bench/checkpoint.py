"""A whole model's initial checkpoint on disk: `weightgen checkpoint` (a live server on loopback
and the CLI, each its own process) against transformers' `from_config(dtype=bfloat16)` +
`save_pretrained` in a subprocess, for a TinyLlama-sized `hf.llama` config (1.1B parameters,
bfloat16), in one run on the same machine; wall time and peak resident memory of each process
(the kernel's high-water mark, `ru_maxrss` of the waited child; the server's from VmHWM). With
`--8b`, a Llama-3-8B config (16 GB in bfloat16) written by the CLI alone.

    .venv/bin/python -m bench.checkpoint [--8b] [--dir /var/tmp/ckpt]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

from bench.live import live_server

TINYLLAMA = {"model_type": "llama", "vocab_size": 32000, "hidden_size": 2048,
             "intermediate_size": 5632, "num_hidden_layers": 22, "num_attention_heads": 32,
             "num_key_value_heads": 4, "max_position_embeddings": 2048, "rms_norm_eps": 1e-5,
             "tie_word_embeddings": False, "dtype": "bfloat16"}  # fmt: skip
LLAMA_3_8B = {"model_type": "llama", "vocab_size": 128256, "hidden_size": 4096,
              "intermediate_size": 14336, "num_hidden_layers": 32, "num_attention_heads": 32,
              "num_key_value_heads": 8, "max_position_embeddings": 8192, "rope_theta": 500000.0,
              "tie_word_embeddings": False, "dtype": "bfloat16"}  # fmt: skip
BASELINE = """
import sys, torch, transformers
config = transformers.AutoConfig.for_model(**{cfg!r})
model = transformers.AutoModelForCausalLM.from_config(config, dtype=torch.bfloat16)
model.save_pretrained(sys.argv[1], max_shard_size="5GB")
"""
GIB = 2**30


def timed(command: list[str]) -> tuple[float, int]:
    """(wall seconds, peak RSS bytes) of a child process run to completion."""
    began = time.perf_counter()
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - began
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{command[:3]} failed with status {status}")
    print(
        f"  {Path(command[2]).name if command[1] == '-m' else command[1]} CPU: user "
        f"{usage.ru_utime:.1f} s, system {usage.ru_stime:.1f} s"
    )
    return wall, usage.ru_maxrss * 1024


def hwm(pid: int) -> int:
    """A live process's peak resident memory (VmHWM) in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmHWM for process {pid}")


def ours(
    config: dict[str, object], out: Path, work: Path, **settings: str
) -> tuple[float, int, int, int]:
    """(wall s, CLI peak, server peak, server idle) for `weightgen checkpoint` on a new server
    (one connection: the digest is taken while the file is written)."""
    (work / "config.json").write_text(json.dumps(config))
    env = {"WEIGHTGEN_MAX_ELEMENTS": str(2**32), "WEIGHTGEN_MAX_BYTES": str(2**36), **settings}
    with live_server(work, env) as server:
        idle = hwm(server.pid)
        user, system = cpu(server.pid)
        wall, cli = timed([sys.executable, "-m", "service.cli", "checkpoint", "hf.llama",
                           "--config", str(work / "config.json"), "--seed", "0",
                           "--max-shard-size", "5GB", "-o", str(out),
                           "--url", server.url])  # fmt: skip
        peak = hwm(server.pid)
        user, system = (b - a for a, b in zip((user, system), cpu(server.pid), strict=True))
    print(f"  server CPU during the write: user {user:.1f} s, system {system:.1f} s")
    return wall, cli, peak, idle


def cpu(pid: int) -> tuple[float, float]:
    """A live process's (user, system) CPU seconds so far, from /proc/<pid>/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    tick = os.sysconf("SC_CLK_TCK")
    return int(fields[11]) / tick, int(fields[12]) / tick


def size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.iterdir() if p.is_file())


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--8b", dest="big", action="store_true", help="also Llama-3-8B")
    parser.add_argument("--dir", type=Path, default=Path("/var/tmp/weightgen-ckpt"))
    args = parser.parse_args()
    root: Path = args.dir
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}"
    )
    wall, cli, server, idle = ours(TINYLLAMA, root / "ours", root)
    print(
        f"TinyLlama 1.1B bf16, weightgen checkpoint: {wall:.1f} s, {size(root / 'ours') / 1e9:.2f} GB; "
        f"peak RSS CLI {cli / GIB:.2f} GiB + server {server / GIB:.2f} GiB (idle {idle / GIB:.2f}) = {(cli + server) / GIB:.2f} GiB"
    )
    script = BASELINE.format(cfg=TINYLLAMA)
    base_wall, base_rss = timed([sys.executable, "-c", script, str(root / "theirs")])
    print(
        f"TinyLlama 1.1B bf16, transformers from_config + save_pretrained: {base_wall:.1f} s, "
        f"{size(root / 'theirs') / 1e9:.2f} GB; peak RSS {base_rss / GIB:.2f} GiB"
    )
    print(
        f"ratio (transformers / weightgen): {base_wall / wall:.1f}x faster, "
        f"{base_rss / (cli + server):.1f}x less memory"
    )
    shutil.rmtree(root / "theirs")
    shutil.rmtree(root / "ours")
    # glibc's own mmap threshold instead of the pinned one: fewer fresh pages per block
    wall, cli, server, _ = ours(TINYLLAMA, root / "ours", root, WEIGHTGEN_MALLOC_MMAP_THRESHOLD="0")
    print(
        f"TinyLlama 1.1B bf16, weightgen checkpoint, WEIGHTGEN_MALLOC_MMAP_THRESHOLD=0: {wall:.1f} s "
        f"({base_wall / wall:.1f}x); peak RSS CLI {cli / GIB:.2f} GiB + server {server / GIB:.2f} GiB"
    )
    shutil.rmtree(root / "ours")
    if args.big:
        wall, cli, server, idle = ours(LLAMA_3_8B, root / "big", root)
        print(
            f"Llama-3-8B bf16, weightgen checkpoint: {wall:.1f} s, {size(root / 'big') / 1e9:.2f} GB; "
            f"peak RSS CLI {cli / GIB:.2f} GiB + server {server / GIB:.2f} GiB = {(cli + server) / GIB:.2f} GiB"
        )
        shutil.rmtree(root / "big")


if __name__ == "__main__":
    main()
