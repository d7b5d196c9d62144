"""End-to-end integrity against a live server: a proxy between the client and the server that
flips a byte, or splices a body (the tail shifted, then a resume that appends the right end),
is caught by the client's check against `Repr-Digest`, and the CLI exits 5 leaving no file."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
import re
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from bench.live import Server
from service.cli import EXIT_INTEGRITY
from service.client import AsyncClient, Client, IntegrityError, Resource

ROOT = Path(__file__).resolve().parents[2]
TENSOR = ("he_normal", [256, 512])  # 512 KiB: streamed (and digested) by the server
HOP = {"connection", "keep-alive", "transfer-encoding", "date", "server"}


class Tampering(ThreadingHTTPServer):
    """An HTTP proxy to `upstream` that changes GET bodies. `flip`: one byte of every body.
    `splice`: the first whole body loses `gap` bytes at `cut` (everything after is shifted)
    and ends short, as when a slice of a cached object went missing."""

    daemon_threads = True

    def __init__(self, upstream: str, mode: str, cut: int = 100_000, gap: int = 4096) -> None:
        super().__init__(("127.0.0.1", 0), Relay)
        self.upstream, self.mode, self.cut, self.gap = upstream, mode, cut, gap
        self.spliced, self.requests = False, list[tuple[str, dict[str, str]]]()
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def tamper(self, status: int, body: bytes) -> bytes:
        if self.mode == "flip" and body:
            at = len(body) // 2
            return body[:at] + bytes([body[at] ^ 0x01]) + body[at + 1 :]
        with self.lock:
            if self.mode == "splice" and status == 200 and not self.spliced:
                self.spliced = True
                return body[: self.cut] + body[self.cut + self.gap :]
        return body


class Relay(BaseHTTPRequestHandler):
    server: Tampering

    def do_GET(self) -> None:
        self._relay(body=True)

    def do_HEAD(self) -> None:
        self._relay(body=False)

    def do_POST(self) -> None:  # describe: passed through untouched
        self._relay(body=True, sent=self.rfile.read(int(self.headers["Content-Length"])))

    def _relay(self, *, body: bool, sent: bytes | None = None) -> None:
        headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP | {"host"}}
        self.server.requests.append((self.command, headers))
        with httpx.Client(base_url=self.server.upstream, timeout=60) as upstream:
            answer = upstream.request(self.command, self.path, headers=headers, content=sent)
        data = answer.content if body else b""
        if self.command == "GET":
            data = self.server.tamper(answer.status_code, data)
        self.send_response(answer.status_code)
        for k, v in answer.headers.items():
            if k.lower() not in HOP:
                self.send_header(k, v)  # Content-Length as the server sent it
        self.end_headers()
        self.wfile.write(data)  # HTTP/1.0: the connection closes, a short body shows

    def log_message(self, *_: object) -> None:
        pass


@pytest.fixture
def proxy(server: Server, request: pytest.FixtureRequest) -> Iterator[Tampering]:
    p = Tampering(server.url, request.param)
    threading.Thread(target=p.serve_forever, daemon=True).start()
    try:
        yield p
    finally:
        p.shutdown()
        p.server_close()


def resource(server: Server, seed: int) -> Resource:
    with Client(server.url) as c:
        return c.resource(*TENSOR, seed=seed, format="raw")


@pytest.mark.parametrize("proxy", ["flip"], indirect=True)
@pytest.mark.parametrize("connections", [1, 3])
def test_a_flipped_byte_is_an_integrity_error_and_leaves_no_file(
    server: Server, proxy: Tampering, tmp_path: Path, connections: int
) -> None:
    r = resource(server, seed=10 + connections)
    path = tmp_path / "w.bin"
    with Client(proxy.url, backoff=0.01) as c, pytest.raises(IntegrityError) as info:
        c.save(r, path, connections=connections)
    assert info.value.expected is not None
    assert info.value.received is not None
    assert info.value.expected != info.value.received
    assert "sha-256=:" in str(info.value)
    assert list(tmp_path.iterdir()) == []  # neither w.bin nor w.bin.part
    with Client(proxy.url, backoff=0.01) as c, pytest.raises(IntegrityError):
        c.fetch(r, connections=connections)

    async def fetch() -> bytes:
        async with AsyncClient(proxy.url, backoff=0.01) as ac:
            return await ac.fetch(r, connections=connections)

    with pytest.raises(IntegrityError):
        asyncio.run(fetch())


@pytest.mark.parametrize("proxy", ["splice"], indirect=True)
def test_a_spliced_body_resumed_to_the_right_length_is_caught(
    server: Server, proxy: Tampering, tmp_path: Path
) -> None:
    r = resource(server, seed=20)
    with Client(proxy.url, backoff=0.01) as c, pytest.raises(IntegrityError, match="Repr-Digest"):
        c.save(r, tmp_path / "w.bin")
    assert proxy.spliced
    resumed = [h for m, h in proxy.requests if m == "GET" and "Range" in h]
    assert resumed
    assert resumed[0]["Range"] == f"bytes={r.length - proxy.gap}-{r.length - 1}"
    assert list(tmp_path.iterdir()) == []


def test_without_the_proxy_the_same_download_verifies(server: Server, tmp_path: Path) -> None:
    r = resource(server, seed=40)
    path = tmp_path / "w.bin"
    with Client(server.url) as c:
        c.save(r, path, connections=3)
        digest = c.repr_digest(r)
        assert c.fetch(r) == path.read_bytes()
    assert digest == hashlib.sha256(path.read_bytes()).digest()


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "service.cli", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, cwd=ROOT)


@pytest.mark.parametrize("proxy", ["flip"], indirect=True)
def test_the_cli_exits_5_on_a_mismatch_and_0_without_the_proxy(
    server: Server, proxy: Tampering, tmp_path: Path
) -> None:
    out = tmp_path / "w.safetensors"
    fetch = ("fetch", "he_normal", "256", "512", "--seed", "30", "-o", str(out))
    bad = cli(*fetch, "--url", proxy.url)
    assert bad.returncode == EXIT_INTEGRITY, bad.stderr
    assert "Repr-Digest" in bad.stderr
    assert list(tmp_path.iterdir()) == []
    unchecked = cli(*fetch, "--url", proxy.url, "--no-verify")
    assert unchecked.returncode == 0, unchecked.stderr  # the check, and only it, refused
    good = cli(*fetch, "--url", server.url)
    assert good.returncode == 0, good.stderr
    assert out.read_bytes() != b""
    assert not (tmp_path / "w.safetensors.part").exists()
    manifest = tmp_path / "m.json"
    manifest.write_text(
        '{"seed": 1, "layers": [{"preset": "torch.Linear", "name": "fc", '
        '"in_features": 256, "out_features": 256}]}'
    )
    bundle = cli("bundle", str(manifest), "-o", str(tmp_path / "b.safetensors"), "--url", proxy.url)
    assert bundle.returncode == EXIT_INTEGRITY, bundle.stderr
    assert not (tmp_path / "b.safetensors").exists()


def recipe() -> str:
    """The shell recipe of docs/clients.md that checks a download with curl and sha256sum."""
    text = (ROOT / "docs" / "clients.md").read_text()
    found = [b for b in re.findall(r"```sh\n(.*?)```", text, re.S) if "Want-Repr-Digest" in b]
    assert len(found) == 1, "docs/clients.md has one curl + sha256sum recipe"
    return str(found[0])


TOOLS = all(shutil.which(t) for t in ("curl", "base64", "sha256sum", "od", "bash"))


@pytest.mark.skipif(not TOOLS, reason="needs curl, base64, sha256sum and od on PATH")
@pytest.mark.parametrize("proxy", ["flip"], indirect=True)
def test_the_documented_curl_recipe_verifies_and_catches(
    server: Server, proxy: Tampering, tmp_path: Path
) -> None:
    script = recipe()
    good = subprocess.run(
        ["bash", "-c", script.replace("localhost:8000", server.base)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        env=dict(os.environ),
    )
    assert good.returncode == 0, good.stderr
    assert "verified" in good.stdout
    saved = next(tmp_path.iterdir())
    path = re.search(r"localhost:8000(/v1/[^'\"\s]+)", script)
    assert path is not None
    digest = httpx.head(server.url + path[1]).headers["repr-digest"].split(":")[1]
    assert base64.b64decode(digest) == hashlib.sha256(saved.read_bytes()).digest()
    saved.unlink()
    bad = subprocess.run(
        ["bash", "-c", script.replace("http://localhost:8000", proxy.url)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert bad.returncode != 0
    assert "mismatch" in bad.stderr
    assert list(tmp_path.iterdir()) == []
