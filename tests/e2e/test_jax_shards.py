"""JAX arrays sharded over four host devices, each device fetching only its index from a live
server (service.client.jax_arrays, docs/shards.md): two meshes and three partition specs, float32
and bfloat16, a tensor and a recipe's members. The assembled arrays are byte-identical to the
unsharded answer, each device asked for exactly its piece (the slices are computed here, by hand,
not by JAX), and the server generated exactly the pieces' bytes, never a whole tensor more.

JAX runs in a subprocess (tests/e2e/jax_shards_child.py): it initializes its backend once per
process, and the host device count must be in XLA_FLAGS before it does."""

from __future__ import annotations

import importlib.util
import itertools
import json
import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from bench.live import Server

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("jax") is None,
    reason="jax is not installed (pip install jax: the dev extra pins it)",
)
ROOT = Path(__file__).resolve().parents[2]
SHAPE = (8, 12)
ITEMSIZE = {"float32": 4, "bfloat16": 2}


@pytest.fixture(scope="module")
def results(server: Server) -> dict[str, Any]:
    flags = os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=4"
    env = {**os.environ, "XLA_FLAGS": flags.strip(), "JAX_PLATFORMS": "cpu"}
    done = subprocess.run(
        [
            sys.executable,
            "-W",
            "error",
            "-m",
            "tests.e2e.jax_shards_child",
            f"http://{server.base}",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    out: dict[str, Any] = json.loads(done.stdout)
    return out


def cuts(shape: tuple[int, ...], pieces: tuple[int, ...]) -> list[str]:
    """The slices of `shape` cut evenly into `pieces` per axis, every combination once."""
    axes = [
        [f"{size * i // n}:{size * (i + 1) // n}" for i in range(n)]
        for size, n in zip(shape, pieces, strict=True)
    ]
    return sorted(",".join(c) for c in itertools.product(*axes))


CASES = {  # case: (dtype, pieces per axis: what the mesh and the PartitionSpec cut)
    "x_rows_f32": ("float32", (4, 1)),  # Mesh((4,), ("x",)), P("x", None)
    "x_cols_bf16": ("bfloat16", (1, 4)),  # Mesh((4,), ("x",)), P(None, "x")
    "ab_f32": ("float32", (2, 2)),  # Mesh((2, 2), ("a", "b")), P("a", "b")
    "ab_bf16": ("bfloat16", (2, 2)),
    "a_replicated_f32": ("float32", (2, 1)),  # P("a", None): two devices per piece
    "service_seed_f32": ("float32", (4, 1)),  # no seed given: one picked for every device
}


def test_four_host_devices(results: dict[str, Any]) -> None:
    assert results["devices"] == 4


@pytest.mark.parametrize("case", CASES)
def test_assembled_array_is_the_unsharded_answer(results: dict[str, Any], case: str) -> None:
    got, (dtype, _) = results[case], CASES[case]
    assert got["dtype"] == dtype
    assert got["shape"] == list(SHAPE)
    assert got["on_devices"] == [0, 1, 2, 3]
    assert got["assembled"] == got["whole"]


@pytest.mark.parametrize("case", CASES)
def test_each_device_fetched_only_its_index(results: dict[str, Any], case: str) -> None:
    got, (dtype, pieces) = results[case], CASES[case]
    assert sorted(got["fetched"]) == cuts(SHAPE, pieces)  # a replicated piece once
    # the server generated the pieces' bytes, which add up to the tensor once: no whole fetch
    assert got["generated"] == math.prod(SHAPE) * ITEMSIZE[dtype]


def member_pieces(shape: tuple[int, ...]) -> tuple[int, ...]:
    """The child's rule: 2-D with a last axis of a multiple of 4: P(None, "x"); 1-D of a multiple
    of 16: P("x"); else replicated (JAX asks once for the whole)."""
    if len(shape) == 2 and shape[1] % 4 == 0:
        return (1, 4)
    if len(shape) == 1 and shape[0] % 16 == 0:
        return (4,)
    return (1,) * len(shape)


def test_recipe_members_sharded_by_rule(results: dict[str, Any]) -> None:
    bundle = results["bundle"]
    members = bundle["members"]
    assert len(members) == 17  # hf.gpt2, one layer (lm_head tied to wte)
    total = 0
    for name, m in members.items():
        shape = tuple(m["shape"])
        assert m["dtype"] == "bfloat16", name
        assert m["assembled"] == m["whole"], name
        assert sorted(m["fetched"]) == cuts(shape, member_pieces(shape)), name
        total += math.prod(shape) * 2
    kinds = {member_pieces(tuple(m["shape"])) for m in members.values()}
    assert kinds == {(1, 4), (4,), (1,)}  # column-sharded, row-sharded and replicated members
    assert bundle["fetched_bytes"] == total
    assert bundle["generated"] == total


def test_refusals_are_clear(results: dict[str, Any]) -> None:
    refused = results["refused"]
    assert "has step 2; the service sends no steps" in refused["step"]
    assert "is not within 0:8" in refused["negative"]
    assert "needs jax_enable_x64" in refused["float64"]
    assert "already has slice" in refused["cut"]
