"""The Python client and the `weightgen` command against a live server."""

from __future__ import annotations

import asyncio
import json
import os
import pty
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import safetensors.numpy

from bench.live import Server, free_port
from service.client import AsyncClient, Client

BIG = ("he_normal", [1024, 1536])


class DroppingProxy:
    """A TCP proxy to the server that cuts the first connection after `cut` bytes of answer."""

    def __init__(self, upstream: str, cut: int) -> None:
        host, port = upstream.split(":")
        self.upstream = (host, int(port))
        self.cut, self.connections, self.requests = cut, 0, list[bytes]()
        self.listener = socket.create_server(("127.0.0.1", free_port()))
        self.base = f"127.0.0.1:{self.listener.getsockname()[1]}"
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            self.connections += 1
            limit = self.cut if self.connections == 1 else None
            threading.Thread(target=self._serve, args=(client, limit), daemon=True).start()

    def _serve(self, client: socket.socket, limit: int | None) -> None:
        server = socket.create_connection(self.upstream)
        request = client.recv(65536)
        self.requests.append(request)
        server.sendall(request)
        sent = 0
        try:
            while chunk := server.recv(65536):
                if limit is not None and sent + len(chunk) >= limit:
                    client.sendall(chunk[: limit - sent])
                    break
                client.sendall(chunk)
                sent += len(chunk)
        finally:
            client.close()
            server.close()

    def close(self) -> None:
        self.listener.close()


@pytest.fixture
def client(server: Server) -> Iterator[Client]:
    with Client(server.url, backoff=0.01) as c:
        yield c


def test_parallel_download_equals_a_single_one(client: Client) -> None:
    r = client.resource(*BIG, seed=3, format="safetensors")
    single = client.fetch(r)
    assert len(single) == r.length
    assert client.fetch(r, connections=4) == single


def test_resume_after_the_server_drops_the_connection(server: Server) -> None:
    with Client(server.url) as direct:
        r = direct.resource(*BIG, seed=4, format="raw")
        expected = direct.fetch(r)
    proxy = DroppingProxy(server.base, cut=1_000_000)
    try:
        with Client(f"http://{proxy.base}", backoff=0.01) as c:
            got = c.fetch(r)
    finally:
        proxy.close()
    assert got == expected
    assert proxy.connections >= 2
    resumed = proxy.requests[-1].decode("latin-1").lower()
    assert "range: bytes=" in resumed
    assert f"if-range: {r.etag}".lower() in resumed


def test_numpy_torch_and_state_dict(client: Client) -> None:
    w = client.numpy("glorot_uniform", [300, 200], seed=1)
    assert w.shape == (300, 200)
    assert w.std() == pytest.approx((1 / 250) ** 0.5, rel=0.02)
    bf = client.numpy("he_normal", [64, 64], seed=1, dtype="bfloat16")
    assert str(bf.dtype) == "bfloat16"
    t = client.torch("he_normal", [64, 64], seed=1, dtype="bfloat16", convention="torch")
    assert tuple(t.shape) == (64, 64)
    layers = [{"preset": "torch.Linear", "name": "fc", "in_features": 8, "out_features": 4}]
    state = client.state_dict({"seed": 2, "layers": layers}, connections=2)
    assert set(state) == {"fc.weight", "fc.bias"}


def test_async_client_gets_the_same_bytes(client: Client, server: Server) -> None:
    r = client.resource(*BIG, seed=5, format="npy")

    async def go() -> bytes:
        async with AsyncClient(server.url) as ac:
            ar = await ac.resource(*BIG, seed=5, format="npy")
            assert ar == r
            return await ac.fetch(ar, connections=3)

    assert asyncio.run(go()) == client.fetch(r)


def cli(*args: str, tty: bool = False) -> tuple[int, str, str]:
    command = [sys.executable, "-m", "service.cli", *args]
    if not tty:
        done = subprocess.run(command, capture_output=True, text=True, timeout=120)
        return done.returncode, done.stdout, done.stderr
    leader, follower = pty.openpty()
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=follower, text=True)
    os.close(follower)
    err = b""
    while True:
        try:
            data = os.read(leader, 65536)
        except OSError:
            break
        if not data:
            break
        err += data
    out = proc.communicate(timeout=120)[0]
    os.close(leader)
    return proc.returncode, out, err.decode()


def test_cli_fetch_writes_the_file_and_shows_progress_only_on_a_tty(
    server: Server, tmp_path: Path
) -> None:
    path = tmp_path / "w.safetensors"
    code, out, err = cli(
        "fetch", "he_normal", "2048", "2048", "--seed", "1", "-o", str(path), "--url", server.url
    )
    assert (code, err) == (0, "")
    assert "w.safetensors" in out
    assert safetensors.numpy.load_file(str(path))["weight"].shape == (2048, 2048)
    assert not (tmp_path / "w.safetensors.part").exists()
    code, _, err = cli(
        "fetch",
        "he_normal",
        "2048",
        "2048",
        "--seed",
        "1",
        "-o",
        str(tmp_path / "w.npy"),
        "--url",
        server.url,
        tty=True,
    )
    assert code == 0
    assert "MiB/s" in err
    assert np.load(tmp_path / "w.npy").shape == (2048, 2048)


def test_cli_describe_json_and_bundle(server: Server, tmp_path: Path) -> None:
    code, out, _ = cli(
        "describe", "he_normal", "3", "3", "32", "64", "--seed", "1", "--json", "--url", server.url
    )
    assert code == 0
    assert '"fan_in": 288' in out
    manifest = tmp_path / "m.json"
    layer = {"preset": "torch.Linear", "name": "fc", "in_features": 4, "out_features": 2}
    manifest.write_text(json.dumps({"seed": 1, "layers": [layer]}))
    code, out, _ = cli(
        "bundle", str(manifest), "-o", str(tmp_path / "b.safetensors"), "--url", server.url
    )
    assert code == 0
    assert "2 tensors" in out


def test_cli_exit_codes_and_messages(server: Server, tmp_path: Path) -> None:
    code, _, err = cli(
        "fetch", "xavir_normal", "4", "4", "-o", str(tmp_path / "x.npy"), "--url", server.url
    )
    assert code == 3
    assert "unknown scheme 'xavir_normal'; expected one of" in err
    assert not (tmp_path / "x.npy").exists()
    code, _, err = cli("schemes", "--url", f"http://127.0.0.1:{free_port()}")
    assert code == 4
    assert "cannot reach" in err
    code, _, err = cli("describe", "he_normal", "4", "-p", "oops")
    assert code == 2
    assert "KEY=VALUE" in err
