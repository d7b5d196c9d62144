"""Replicas dying in the middle of a download behind the shipped nginx config: the client sees
either the exact bytes or an error (a short body), never a 200/206 with wrong bytes; a resume
with Range + If-Range completes the file byte for byte; an answer cut short is never stored.

Two `python -m service` processes behind deploy/nginx/nginx.conf, rewritten as
tests/e2e/test_deploy.py does (bench.cluster.render: loopback hosts, ports and paths) plus one
response header naming the replica that serves (`$upstream_addr`, an observation only), so the
test can SIGKILL that one. docs/operations.md, "The nginx cache", says why there is no `slice`.
"""

from __future__ import annotations

import contextlib
import hashlib
import signal
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from bench.cluster import nginx_binary, nginx_process, render
from bench.live import Server, free_port, live_process

NGINX = nginx_binary()
pytestmark = pytest.mark.skipif(
    NGINX is None, reason="nginx is not installed (make test installs it where apt-get can)"
)

MIB = 1 << 20
LENGTH = 64 * MIB  # 16384 x 1024 float32, raw
PATH = "/v1/tensors/he_normal?shape=16384,1024&seed=21&format=raw"
# 16 KiB blocks: a replica sends slower than a client reads (~80 MB/s against ~500 on the 2-core
# VM), so a kill after N bytes reached the client lands inside the replica's body
REPLICA_ENV = {"WEIGHTGEN_BLOCK_ELEMENTS": "4096"}
CACHE_STATUS = "add_header X-Cache-Status $upstream_cache_status always;"
SERVED_BY = "add_header X-Test-Upstream $upstream_addr always;"  # the test's one addition


@dataclass
class Deployment:
    """nginx and two replicas on loopback; a replica can be killed and started again."""

    workdir: Path
    stack: contextlib.ExitStack
    ports: list[int] = field(default_factory=lambda: [free_port(), free_port()])
    servers: dict[int, Server] = field(default_factory=dict)
    url: str = ""
    kills: int = 0

    def start(self, port: int) -> None:
        command = [sys.executable, "-m", "service", "--host", "127.0.0.1", "--port", str(port)]
        cm = live_process(command, port, self.workdir, env=REPLICA_ENV)
        self.servers[port] = self.stack.enter_context(cm)

    def kill(self, port: int) -> None:
        proc = self.servers[port].proc
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        self.kills += 1

    def revive(self) -> None:
        """Start again every replica that was killed (waited for until healthy)."""
        for port, server in list(self.servers.items()):
            if server.proc.poll() is not None:
                self.start(port)

    @property
    def error_log(self) -> str:
        return (self.workdir / "nginx.err").read_text(errors="replace")


@pytest.fixture
def deployment(tmp_path: Path) -> Iterator[Deployment]:
    assert NGINX is not None
    (tmp_path / "cache").mkdir()
    with contextlib.ExitStack() as stack:
        d = Deployment(tmp_path, stack)
        for port in d.ports:
            d.start(port)
        listen = free_port()
        conf = render(d.ports, listen, tmp_path)
        assert conf.count(CACHE_STATUS) == 1
        (tmp_path / "nginx.conf").write_text(
            conf.replace(CACHE_STATUS, f"{CACHE_STATUS}\n            {SERVED_BY}")
        )
        with (
            (tmp_path / "nginx.err").open("wb") as err,
            nginx_process(tmp_path / "nginx.conf", listen, err) as url,
        ):
            d.url = url
            yield d


@dataclass
class Got:
    status: int
    cache: str
    body: bytes
    cut: str | None  # the client's error, None when the body came whole
    killed: int | None  # the replica killed while it served

    def __str__(self) -> str:
        return f"{self.status} {self.cache}, {len(self.body)} bytes, {self.cut or 'whole'}"


def get(d: Deployment, headers: dict[str, str], kill_after: int | None) -> Got:
    """GET through nginx; SIGKILL the replica serving it once `kill_after` bytes arrived."""
    body, cut, killed = bytearray(), None, None
    with httpx.stream("GET", d.url + PATH, headers=headers, timeout=60) as r:
        served_by = r.headers.get("x-test-upstream", "").split(",")[-1].strip()
        expected = int(r.headers["content-length"])
        try:
            for chunk in r.iter_raw():
                body += chunk
                due = kill_after is not None and killed is None and len(body) >= kill_after
                if due and served_by:  # a HIT has no replica to kill
                    killed = int(served_by.rsplit(":", 1)[1])
                    d.kill(killed)
        except httpx.RemoteProtocolError as exc:  # the connection closed before Content-Length
            cut = str(exc)
        assert (cut is None) == (len(body) == expected), (cut, len(body), expected)
        return Got(r.status_code, r.headers.get("x-cache-status", ""), bytes(body), cut, killed)


def resume(d: Deployment, have: int, etag: str, kill_after: int | None = None) -> Got:
    """The rest from `have` on, as a client resumes (Range + If-Range); a 502 (no replica up
    for nginx yet) is an error the client retries, never bytes."""
    deadline = time.monotonic() + 15
    while True:
        got = get(d, {"Range": f"bytes={have}-", "If-Range": etag}, kill_after)
        if got.status != 502 or time.monotonic() > deadline:
            return got
        time.sleep(0.1)


def test_a_replica_killed_mid_download_never_yields_wrong_bytes(deployment: Deployment) -> None:
    d = deployment
    with httpx.stream("GET", f"http://127.0.0.1:{d.ports[0]}{PATH}", timeout=60) as r:
        etag = r.headers["etag"]
        direct = b"".join(r.iter_raw())
    assert len(direct) == LENGTH
    clean = hashlib.sha256(direct).hexdigest()

    cuts = 0
    stored = False  # whether a whole answer has gone through nginx (and so into its cache)
    # (kill the serving replica after this many bytes of the GET, and of the first resume)
    for first_kill, resume_kill in ((MIB, None), (LENGTH // 2, MIB), (LENGTH - 2 * MIB, None)):
        began = time.monotonic()
        got = get(d, {}, first_kill)
        print(f"GET, kill after {first_kill}: {got}")
        assert got.status == 200
        assert got.cache == ("HIT" if stored else "MISS")  # a body cut short was not stored
        data = bytearray(got.body)
        assert data == direct[: len(data)]  # no byte of another replica spliced in
        if got.cut is None:
            stored = True
        else:
            cuts += 1
            assert got.killed is not None
        parts = 0
        while len(data) < LENGTH:
            kill = resume_kill if parts == 0 else None
            rest = resume(d, len(data), etag, kill)
            parts += 1
            print(f"  resume from {len(data)}, kill after {kill}: {rest}")
            assert rest.status == 206, rest.status
            assert rest.body == direct[len(data) : len(data) + len(rest.body)]
            data += rest.body
            cuts += rest.cut is not None
            d.revive()  # the killed replica comes back before the next kill
            assert parts <= 3
        assert hashlib.sha256(data).hexdigest() == clean
        d.revive()
        print(f"  sha256 equal; {time.monotonic() - began:.1f} s with the restarts")

    assert cuts >= 2, "the kills came too late to cut a body: nothing was tested"
    assert d.kills >= 2
    assert "upstream prematurely closed connection" in d.error_log

    # the cache: a whole GET fills it (if no round did), answers and ranges come from it
    whole = get(d, {}, None)
    assert whole.body == direct
    assert whole.cache == ("HIT" if stored else "MISS")
    again = get(d, {}, None)
    assert (again.cache, again.body == direct) == ("HIT", True)
    part = resume(d, LENGTH - 3 * MIB - 5, etag)
    assert (part.status, part.cache, part.body) == (206, "HIT", direct[-3 * MIB - 5 :])
    changed = get(d, {"Range": "bytes=100-", "If-Range": '"another"'}, None)
    assert (changed.status, changed.cache, changed.body == direct) == (200, "HIT", True)
    entries = [p for p in (d.workdir / "cache").rglob("*") if p.is_file()]
    assert len(entries) == 1, entries  # one whole answer; no slice, no partial file left
    assert entries[0].stat().st_size > LENGTH
