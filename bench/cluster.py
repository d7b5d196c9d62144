"""Replicas of weightgen behind the project's nginx config, on loopback (what
deploy/compose.yaml runs in containers). Used by the load and fault benchmarks and the
config test: the same nginx.conf, with upstream hosts and paths pointed at this machine."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from bench.live import free_port, live_server, wait_healthy

ROOT = Path(__file__).resolve().parents[1]
NGINX_CONF = ROOT / "deploy" / "nginx" / "nginx.conf"


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


@contextmanager
def nginx_process(conf: Path, listen: int, stderr: int | IO[bytes] | None = None) -> Iterator[str]:
    """nginx on `conf`, in the foreground, waited for until it answers on `listen`; its URL.
    Stopped gracefully (SIGQUIT, as `nginx -s quit`) on exit, killed if it will not."""
    nginx = nginx_binary()
    if nginx is None:
        raise RuntimeError("nginx is not installed (apt-get install nginx)")
    proc = subprocess.Popen([nginx, "-c", str(conf), "-g", "daemon off;"], stderr=stderr)
    try:
        url = f"http://127.0.0.1:{listen}"
        wait_healthy(url, proc)
        yield url
    finally:
        proc.send_signal(signal.SIGQUIT)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@dataclass
class Cluster:
    url: str  # nginx
    replicas: list[subprocess.Popen[bytes]]
    replica_urls: list[str]


@contextmanager
def cluster(
    workdir: Path, replicas: int = 2, env: dict[str, str] | None = None
) -> Iterator[Cluster]:
    (workdir / "cache").mkdir(parents=True, exist_ok=True)
    with contextlib.ExitStack() as stack:  # replicas stop after nginx, in any case
        servers = [stack.enter_context(live_server(workdir, env)) for _ in range(replicas)]
        listen = free_port()
        (workdir / "nginx.conf").write_text(render([s.port for s in servers], listen, workdir))
        with nginx_process(workdir / "nginx.conf", listen) as url:
            yield Cluster(url, [s.proc for s in servers], [s.url for s in servers])
