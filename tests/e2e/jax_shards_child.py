"""The JAX half of tests/e2e/test_jax_shards.py, run as `python jax_shards_child.py URL` in its own
process (jax initializes its backend once per process, and XLA_FLAGS must hold
`--xla_force_host_platform_device_count=4` before it does). Prints one JSON object: per case, the
SHA-256 of the assembled array and of the unsharded answer (fetched with plain httpx, not through
the module under test), the slices the module fetched, and the tensor bytes the server generated
meanwhile (its /metrics)."""

from __future__ import annotations

import hashlib
import json
import re
import sys
from collections.abc import Callable
from typing import Any

import httpx
import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec, Sharding

from service.client import Client
from service.client.jax_arrays import Fetched, array, bundle_arrays, slice_text

GENERATED = re.compile(r"^weightgen_generated_bytes_total\{[^}]*\} (\S+)$", re.M)
RECIPE = {
    "recipe": "hf.gpt2",
    "config": {"n_layer": 1, "n_embd": 8, "n_head": 2, "vocab_size": 20, "n_positions": 12},
    "dtype": "bfloat16",
    "seed": 11,
}


def P(*axes: str | None) -> PartitionSpec:  # noqa: N802 - JAX's usual name
    return PartitionSpec(*axes)  # type: ignore[no-untyped-call]  # jax leaves it untyped


def generated(base: str) -> float:
    text = httpx.get(f"{base}/metrics", timeout=10).text
    return sum(float(v) for v in GENERATED.findall(text))


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def meshes() -> dict[str, Mesh]:
    devices = np.array(jax.devices()[:4])
    return {"x": Mesh(devices, ("x",)), "ab": Mesh(devices.reshape(2, 2), ("a", "b"))}


def tensor_case(
    c: Client, base: str, mesh: Mesh, spec: PartitionSpec, dtype: str, seed: int | None
) -> dict[str, Any]:
    shape, got = [8, 12], list[Fetched]()
    before = generated(base)
    sharding = NamedSharding(mesh, spec)
    arr = array(c, "he_normal", shape, sharding, seed=seed, dtype=dtype, record=got.append)
    spent = generated(base) - before
    picked = {f.seed for f in got}  # one seed for every device, the service's when none given
    assert len(picked) == 1, picked
    url = c.describe("he_normal", shape, seed=picked.pop(), dtype=dtype, format="raw")["url"]
    whole = httpx.get(f"{base}{url}" if url.startswith("/") else url, timeout=30)
    whole.raise_for_status()
    return {
        "dtype": str(arr.dtype),
        "shape": list(arr.shape),
        "assembled": sha(np.asarray(arr).tobytes()),
        "whole": sha(whole.content),
        "fetched": [f.slice for f in got],
        "generated": spent,
        "on_devices": sorted(s.device.id for s in arr.addressable_shards),
    }


def rule(mesh: Mesh) -> Any:
    def sharding(name: str, shape: tuple[int, ...]) -> Sharding:  # noqa: ARG001 - the rule's form
        if len(shape) == 2 and shape[1] % 4 == 0:
            return NamedSharding(mesh, P(None, "x"))
        if len(shape) == 1 and shape[0] % 16 == 0:
            return NamedSharding(mesh, P("x"))
        return NamedSharding(mesh, P())

    return sharding


def bundle_case(c: Client, base: str, mesh: Mesh) -> dict[str, Any]:
    got: list[Fetched] = []
    before = generated(base)
    arrays = bundle_arrays(c, RECIPE, rule(mesh), record=got.append)
    spent = generated(base) - before
    d = c.describe_bundle(RECIPE)
    data = c.fetch(c.bundle_resource(RECIPE))
    members = {}
    for m in d["tensors"]:
        a, b = (d["header_bytes"] + o for o in m["data_offsets"])
        members[m["name"]] = {
            "shape": m["shape"],
            "dtype": str(arrays[m["name"]].dtype),
            "assembled": sha(np.asarray(arrays[m["name"]]).tobytes()),
            "whole": sha(data[a:b]),
            "fetched": [f.slice for f in got if f.name == m["name"]],
        }
    return {"members": members, "generated": spent, "fetched_bytes": sum(f.nbytes for f in got)}


def refusals(c: Client, mesh: Mesh) -> dict[str, str]:
    """What the module refuses, each with its message (an empty message: not refused)."""
    tries: dict[str, Callable[[], object]] = {
        "step": lambda: slice_text((slice(0, 8, 2),), (8,)),
        "negative": lambda: slice_text((slice(-4, None),), (8,)),
        "float64": lambda: array(c, "he_normal", [8, 4], NamedSharding(mesh, P()), dtype="float64"),
        "cut": lambda: array(c, "he_normal", [8, 4], NamedSharding(mesh, P()), slice="0:4"),
    }
    out = {}
    for name, attempt in tries.items():
        try:
            attempt()
            out[name] = ""
        except ValueError as exc:
            out[name] = str(exc)
    return out


def main(base: str) -> None:
    m = meshes()
    with Client(base, timeout=30, retries=1) as c:
        out = {
            "devices": len(jax.devices()),
            "x_rows_f32": tensor_case(c, base, m["x"], P("x", None), "float32", 1),
            "x_cols_bf16": tensor_case(c, base, m["x"], P(None, "x"), "bfloat16", 2),
            "ab_f32": tensor_case(c, base, m["ab"], P("a", "b"), "float32", 3),
            "ab_bf16": tensor_case(c, base, m["ab"], P("a", "b"), "bfloat16", 4),
            "a_replicated_f32": tensor_case(c, base, m["ab"], P("a", None), "float32", 5),
            "service_seed_f32": tensor_case(c, base, m["x"], P("x", None), "float32", None),
            "bundle": bundle_case(c, base, m["x"]),
            "refused": refusals(c, m["x"]),
        }
    print(json.dumps(out))


if __name__ == "__main__":
    main(sys.argv[1])
