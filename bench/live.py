"""Live weightgen processes on loopback, and what benchmarks and end-to-end tests measure of
them: a free port, a server started and waited for, resident memory from /proc, a whole body
read. One place for the benchmarks under bench/ and the tests under tests/e2e/."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import httpx

T = TypeVar("T")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def rss(pid: int) -> int:
    """Resident set size of a process in bytes, from /proc."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


def peak_rss(pid: int, work: Callable[[], T], every: float = 0.02) -> tuple[T, int, int]:
    """(what `work` returned, RSS before it, peak RSS while it ran), sampled every `every` s."""
    idle = peak = rss(pid)
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, rss(pid))
            time.sleep(every)

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        result = work()
    finally:
        done.set()
        sampler.join()
    return result, idle, peak


def drain(url: str, timeout: float = 600) -> float:
    """Seconds to GET and read the whole body."""
    began = time.perf_counter()
    with httpx.stream("GET", url, timeout=timeout) as r:
        r.raise_for_status()
        for _ in r.iter_raw(1 << 20):
            pass
    return time.perf_counter() - began


def curl(url: str) -> float:
    """Seconds curl takes to GET `url` into /dev/null, by its own clock: a C client that needs
    little CPU, so on a small machine the server, not the client, sets the pace."""
    out = subprocess.run(
        ["curl", "-sS", "--fail", "-o", "/dev/null", "-w", "%{time_total}", url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return float(out)


def wait_healthy(
    url: str,
    proc: subprocess.Popen[bytes] | None = None,
    log: Path | None = None,
    probe: str = "/healthz",
) -> None:
    """Wait up to 30 s for `url` + `probe` to answer 200; fail early if `proc` exits."""
    deadline = time.monotonic() + 30
    while True:
        try:
            if httpx.get(f"{url}{probe}", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline or (proc is not None and proc.poll() is not None):
            told = f":\n{log.read_text()}" if log is not None and log.exists() else ""
            raise RuntimeError(f"{url} did not come up{told}")
        time.sleep(0.1)


@dataclass
class Server:
    base: str  # host:port
    proc: subprocess.Popen[bytes]
    log: Path

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def port(self) -> int:
        return int(self.base.rsplit(":", 1)[1])

    @property
    def url(self) -> str:
        return f"http://{self.base}"


@contextmanager
def live_process(
    command: list[str],
    port: int,
    workdir: Path,
    *,
    probe: str = "/healthz",
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
) -> Iterator[Server]:
    """`command`, serving on loopback `port`, log in workdir, waited for until `probe` answers;
    stopped on exit."""
    log = workdir / f"server-{port}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            command,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=cwd,
            env={**os.environ, **(env or {})},
        )
    server = Server(f"127.0.0.1:{port}", proc, log)
    try:
        wait_healthy(server.url, proc, log, probe)
        yield server
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextmanager
def live_server(workdir: Path, env: dict[str, str] | None = None) -> Iterator[Server]:
    """`python -m service` on a free loopback port, log in workdir; stopped on exit."""
    port = free_port()
    command = [sys.executable, "-m", "service", "--host", "127.0.0.1", "--port", str(port)]
    with live_process(command, port, workdir, env=env) as server:
        yield server
