"""Planning a whole model from its recipe: a Llama-3-8B-shaped `hf.llama` config (hidden 4096,
32 layers, vocab 128256, 8 key/value heads; 291 tensors, 16 GB in bfloat16), from request
validation to the laid-out safetensors header, through the ASGI app in process
(`POST /v1/bundles/describe`), after a warm-up; median and worst of the repeats.

    .venv/bin/python -m bench.recipes [--repeats 20]
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time

from starlette.testclient import TestClient

from service.api import create_app

LLAMA_8B = {
    "model_type": "llama",
    "hidden_size": 4096,
    "intermediate_size": 14336,
    "num_hidden_layers": 32,
    "num_attention_heads": 32,
    "num_key_value_heads": 8,
    "vocab_size": 128256,
    "tie_word_embeddings": False,
}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=20)
    repeats = parser.parse_args().repeats
    client = TestClient(create_app())
    body = {"seed": 1, "recipe": "hf.llama", "config": LLAMA_8B, "dtype": "bfloat16"}
    first = client.post("/v1/bundles/describe", json=body)
    first.raise_for_status()
    times = []
    for _ in range(repeats):
        began = time.perf_counter()
        client.post("/v1/bundles/describe", json=body).raise_for_status()
        times.append(1000 * (time.perf_counter() - began))
    described = first.json()
    print(f"machine: {platform.machine()}; {repeats} repeats")
    print(
        f"hf.llama 8B: {len(described['tensors'])} tensors, {described['content_length']} bytes; "
        f"describe median {statistics.median(times):.1f} ms, worst {max(times):.1f} ms"
    )


if __name__ == "__main__":
    main()
