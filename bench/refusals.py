"""How fast, and in how much memory, a bundle with an out-of-bounds preset argument is refused:
a 401-digit integer, a negative, a huge count, and a count that is in bounds but makes more
members than a bundle holds. Through the ASGI app in process (no network), after a warm-up;
median and worst milliseconds of the repeats, and the peak Python allocation (tracemalloc) of
one request, for POST /v1/bundles/describe and for the GET manifest URL.

    .venv/bin/python -m bench.refusals [--repeats 50]
"""

from __future__ import annotations

import argparse
import base64
import json
import statistics
import time
import tracemalloc
import zlib
from typing import Any

from starlette.testclient import TestClient

from service.api import create_app

CASES: dict[str, dict[str, Any]] = {
    "num_layers = 10^400": {"num_layers": 10**400},
    "num_layers = -1": {"num_layers": -1},
    "num_layers = 1,000,000": {"num_layers": 1_000_000},
    "hidden_size = 10^400": {"hidden_size": 10**400},
    "num_layers = 10,000, bidirectional (80,000 members)": {
        "num_layers": 10_000,
        "bidirectional": True,
    },
}


def body(args: dict[str, Any]) -> dict[str, Any]:
    layer = {"preset": "torch.LSTM", "name": "a", "input_size": 2, "hidden_size": 2, **args}
    return {"seed": 1, "layers": [layer]}


def url(manifest: dict[str, Any]) -> str:
    packed = zlib.compress(json.dumps(manifest).encode())
    return "/v1/bundles/" + base64.urlsafe_b64encode(packed).decode().rstrip("=")


def measure(client: TestClient, how: str, manifest: dict[str, Any], repeats: int) -> list[str]:
    def once() -> int:
        if how == "POST":
            return client.post("/v1/bundles/describe", json=manifest).status_code
        return client.get(url(manifest)).status_code

    once()
    times = []
    for _ in range(repeats):
        began = time.perf_counter()
        status = once()
        times.append(1000 * (time.perf_counter() - began))
    tracemalloc.start()
    once()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return [
        str(status),
        f"{statistics.median(times):.1f}",
        f"{max(times):.1f}",
        f"{peak / 1024:.0f}",
    ]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=50)
    repeats = parser.parse_args().repeats
    client = TestClient(create_app())
    print("| torch.LSTM argument | request | status | median ms | worst ms | peak KiB |")
    print("|---|---|---:|---:|---:|---:|")
    for label, args in CASES.items():
        for how in ("POST", "GET"):
            row = measure(client, how, body(args), repeats)
            print(f"| {label} | {how} | " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
