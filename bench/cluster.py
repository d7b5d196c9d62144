"""Replicas of weightgen behind the project's nginx config, on loopback (what
deploy/compose.yaml runs in containers). Used by the load and fault benchmarks and the
config test: the same nginx.conf, with upstream hosts and paths pointed at this machine."""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
NGINX_CONF = ROOT / "deploy" / "nginx" / "nginx.conf"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def render(ports: Sequence[int], listen: int, workdir: Path) -> str:
    """deploy/nginx/nginx.conf for loopback: replicas at 127.0.0.1:<ports>, files in workdir
    (which must hold a `cache` directory)."""
    conf = NGINX_CONF.read_text()
    servers = "".join(f"        server 127.0.0.1:{p} max_fails=2 fail_timeout=5s;\n" for p in ports)
    conf = re.sub(r"(?m)^        server weightgen-\d+:8000[^\n]*\n", "", conf)
    conf = conf.replace("    upstream weightgen {\n", "    upstream weightgen {\n" + servers)
    conf = conf.replace("listen 8080;", f"listen 127.0.0.1:{listen};")
    conf = conf.replace("/tmp/", f"{workdir}/")  # temp paths and the pid file
    conf = conf.replace("/var/cache/nginx/", f"{workdir}/cache/")
    if os.geteuid() == 0:  # workers would drop to nobody, who cannot enter a private workdir
        conf = "user root;\n" + conf
    return conf


def nginx_binary() -> str | None:
    return shutil.which("nginx") or (
        "/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None
    )


@dataclass
class Cluster:
    url: str  # nginx
    replicas: list[subprocess.Popen[bytes]]
    replica_urls: list[str]


def _wait(url: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not come up")


@contextmanager
def cluster(
    workdir: Path, replicas: int = 2, env: dict[str, str] | None = None
) -> Iterator[Cluster]:
    nginx = nginx_binary()
    if nginx is None:
        raise RuntimeError("nginx is not installed (apt-get install nginx)")
    (workdir / "cache").mkdir(parents=True, exist_ok=True)
    ports = [free_port() for _ in range(replicas)]
    procs = []
    for p in ports:
        with (workdir / f"replica-{p}.log").open("wb") as log:
            procs.append(
                subprocess.Popen(
                    [sys.executable, "-m", "service", "--host", "127.0.0.1", "--port", str(p)],
                    env={**os.environ, **(env or {})},
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            )
    listen = free_port()
    (workdir / "nginx.conf").write_text(render(ports, listen, workdir))
    proxy = subprocess.Popen([nginx, "-c", str(workdir / "nginx.conf"), "-g", "daemon off;"])
    try:
        for p in ports:
            _wait(f"http://127.0.0.1:{p}")
        _wait(f"http://127.0.0.1:{listen}")
        yield Cluster(f"http://127.0.0.1:{listen}", procs, [f"http://127.0.0.1:{p}" for p in ports])
    finally:
        proxy.send_signal(signal.SIGQUIT)
        for replica in procs:
            replica.terminate()
        for proc in [proxy, *procs]:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
