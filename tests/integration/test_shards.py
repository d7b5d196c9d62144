"""`slice` and `shard` on GET/HEAD/POST /v1/tensors: in every format the bytes are numpy's
slicing (torch.chunk's piece) of the whole answer, read back through the reference readers,
with a tensor's HTTP semantics (ETag, 304, Range, If-Range, HEAD, Content-Location); refusals
are problems that say what was received and what is allowed."""

from __future__ import annotations

import io
import json
import struct
from typing import Any

import numpy as np
import pytest
import safetensors.torch
import torch
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from service.dtypes import DTYPES, DTypeName

FLOATS = sorted(d for d, t in DTYPES.items() if not t.integer)
NPY_DTYPES = ("float16", "float32", "float64")
BIG = "/v1/tensors/he_normal?shape=300,200&seed=3"  # a 120 KB slice of it is streamed


def whole(client: TestClient, query: str, shape: tuple[int, ...], dtype: DTypeName) -> np.ndarray:
    """The whole tensor's bytes, one uint8 row per element, in its shape."""
    r = client.get(f"{query}&format=raw&dtype={dtype}")
    assert r.status_code == 200, r.text
    return np.frombuffer(r.content, np.uint8).reshape(*shape, DTYPES[dtype].itemsize)


def data_of(r: Any, fmt: str) -> tuple[bytes, tuple[int, ...]]:
    """The element bytes and the shape of an answer, read by the format's reference reader."""
    if fmt == "raw":
        shape = tuple(int(d) for d in r.headers["x-init-shape"].split(",") if d)
        return r.content, shape
    if fmt == "npy":
        array = np.load(io.BytesIO(r.content), allow_pickle=False)
        return array.tobytes(), array.shape
    (tensor,) = safetensors.torch.load(r.content).values()
    return tensor.contiguous().view(torch.uint8).numpy().tobytes(), tuple(tensor.shape)


@st.composite
def sliced(draw: st.DrawFn) -> tuple[tuple[int, ...], str, tuple[slice, ...]]:
    """A shape, a slice as a client writes it (ends omitted, trailing axes left out) and the
    numpy index it means."""
    shape = tuple(draw(st.lists(st.integers(0, 9), min_size=1, max_size=3)))
    named = draw(st.integers(0, len(shape)))
    texts, index = [], []
    for n in shape[:named]:
        a = draw(st.integers(0, n))
        b = draw(st.integers(a, n))
        start, stop = draw(st.sampled_from([(a, b), (None, b), (a, None), (None, None)]))
        if stop is None:
            b = n
        texts.append(f"{'' if start is None else a}:{'' if stop is None else b}")
        index.append(slice(a if start is not None else 0, b))
    return shape, ",".join(texts), tuple(index)


@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(sliced(), st.sampled_from(FLOATS), st.sampled_from(["npy", "safetensors", "raw"]))
def test_a_slice_is_numpys_slice_of_the_whole_in_every_format(
    client: TestClient,
    case: tuple[tuple[int, ...], str, tuple[slice, ...]],
    dtype: DTypeName,
    fmt: str,
) -> None:
    shape, text, index = case
    if fmt == "npy" and dtype not in NPY_DTYPES:
        fmt = "safetensors"
    query = f"/v1/tensors/he_uniform?shape={','.join(map(str, shape))}&seed=9"
    expected = whole(client, query, shape, dtype)[index]
    r = client.get(f"{query}&dtype={dtype}&format={fmt}&slice={text}")
    assert r.status_code == 200, r.text
    assert int(r.headers["content-length"]) == len(r.content)
    data, got_shape = data_of(r, fmt)
    assert got_shape == expected.shape[:-1]
    assert data == expected.tobytes()
    assert r.headers["x-init-shape"] == ",".join(map(str, expected.shape[:-1]))


@pytest.mark.parametrize(
    ("shape", "dim", "count"),
    [((10, 7), 0, 4), ((10, 7), 1, 3), ((10, 7), -1, 2), ((6, 5), 0, 4), ((5, 3, 4), 2, 3)],
)
def test_a_shard_is_torch_chunk_of_the_whole(
    client: TestClient, shape: tuple[int, ...], dim: int, count: int
) -> None:
    query = f"/v1/tensors/he_normal?shape={','.join(map(str, shape))}&seed=4&dtype=bfloat16"
    full = safetensors.torch.load(client.get(f"{query}&format=safetensors").content)["weight"]
    chunks = torch.chunk(full, count, dim)
    for index, chunk in enumerate(chunks):
        r = client.get(f"{query}&format=safetensors&shard={dim}:{index}:{count}")
        assert r.status_code == 200, r.text
        assert torch.equal(safetensors.torch.load(r.content)["weight"], chunk)
        body = {"scheme": "he_normal", "shape": list(shape), "seed": 4, "dtype": "bfloat16"}
        post = {
            **body,
            "format": "safetensors",
            "shard": {"dim": dim, "index": index, "count": count},
        }
        assert client.post("/v1/tensors", json=post).content == r.content
    past = client.get(f"{query}&shard={dim}:{len(chunks)}:{count}")
    assert past.status_code == 422
    assert f"makes {len(chunks)} pieces" in past.json()["detail"]


def test_a_slice_names_itself_and_the_whole_tensor(client: TestClient) -> None:
    r = client.get("/v1/tensors/he_normal?shape=64,48&seed=3&format=safetensors&slice=8:24,:16")
    w = client.get("/v1/tensors/he_normal?shape=64,48&seed=3&format=safetensors")
    h = r.headers
    assert (h["x-init-shape"], h["x-init-full-shape"], h["x-init-slice"]) == (
        "16,16",
        "64,48",
        "8:24,0:16",
    )
    assert "x-init-slice" not in w.headers
    for key in ("x-init-std", "x-init-fan-in", "x-init-fan-out", "x-init-limit"):
        assert h[key] == w.headers[key]  # the law of the whole tensor
    (n,) = struct.unpack("<Q", r.content[:8])
    header = json.loads(r.content[8 : 8 + n])
    assert header["weight"]["shape"] == [16, 16]
    meta = header["__metadata__"]
    assert (meta["full_shape"], meta["slice"]) == ("64,48", "8:24,0:16")
    location = h["content-location"]
    assert "slice=8:24,0:16" in location
    again = client.get(location)
    assert (again.content, again.headers["etag"]) == (r.content, h["etag"])
    described = client.get(location + "&describe=true").json()
    assert (described["url"], described["etag"], described["shape"]) == (
        location,
        h["etag"],
        [16, 16],
    )
    assert described["request"]["shape"] == [64, 48]


def test_validators_ranges_and_head_on_a_slice(client: TestClient) -> None:
    url = f"{BIG}&format=raw&slice=:,100:"
    r = client.get(url)
    expected = whole(client, BIG, (300, 200), "float32")[:, 100:].tobytes()
    assert r.content == expected
    etag = r.headers["etag"]
    assert not etag.startswith("W/")
    assert etag != client.get(f"{BIG}&format=raw").headers["etag"]
    assert client.get(f"{BIG}&format=raw&shard=1:1:2").headers["etag"] == etag  # its slice
    not_modified = client.get(url, headers={"If-None-Match": etag})
    assert not_modified.status_code == 304
    assert not_modified.headers["content-location"] == r.headers["content-location"]
    part = client.get(url, headers={"Range": "bytes=1000-70999"})
    assert part.status_code == 206
    assert part.headers["content-range"] == f"bytes 1000-70999/{len(expected)}"
    assert part.content == expected[1000:71000]
    kept = client.get(url, headers={"Range": "bytes=8-15", "If-Range": etag})
    assert (kept.status_code, kept.content) == (206, expected[8:16])
    changed = client.get(url, headers={"Range": "bytes=8-15", "If-Range": '"other"'})
    assert (changed.status_code, changed.content) == (200, expected)
    head = client.head(url)
    assert head.status_code == 200
    assert head.content == b""
    assert head.headers["content-length"] == str(len(expected))
    assert head.headers["etag"] == etag
    too_far = client.get(url, headers={"Range": f"bytes={len(expected)}-"})
    assert too_far.status_code == 416


def test_a_slice_of_an_orthogonal_tensor_is_its_slice_with_a_weak_tag(client: TestClient) -> None:
    query = "/v1/tensors/orthogonal?shape=24,16&seed=2&convention=torch"
    r = client.get(f"{query}&format=raw&slice=4:20,3:9")
    assert r.headers["etag"].startswith("W/")
    assert r.content == whole(client, query, (24, 16), "float32")[4:20, 3:9].tobytes()


def test_padding_rows_stay_zero_in_a_slice(client: TestClient) -> None:
    query = "/v1/tensors/normal?shape=10,6&seed=1&convention=torch&zero_rows=3,8"
    values = np.frombuffer(client.get(f"{query}&format=raw&slice=2:9,1:4").content, "<f4")
    rows = values.reshape(7, 3)
    assert not rows[1].any()
    assert not rows[6].any()
    assert rows[[0, 2, 3, 4, 5]].all()


@pytest.mark.parametrize(
    ("query", "detail"),
    [
        ("slice=0:65", "axis 0 takes start:stop with 0 <= start <= stop <= 64; received 0:65"),
        ("slice=9:4", "stop 4 < start 9 on axis 0"),
        ("slice=:,:,:", "names 3 axes; shape [64, 48] has 2"),
        ("slice=1,2", "is not start:stop per leading axis"),
        ("slice=-4:", "no negatives or steps"),
        ("slice=0:8:2", "no negatives or steps"),
        ("slice=0:4&shard=0:0:2", "give slice or shard, not both"),
        ("shard=2:0:2", "shard dim 2 is outside shape [64, 48] (rank 2; dims -2 … 1)"),
        ("shard=0:8:8", "makes 8 pieces (index 0 … 7); received index 8"),
        ("shard=0:0:0", "greater than or equal to 1"),
        ("shard=1:0", "is not dim:index:count"),
    ],
)
def test_parts_that_do_not_fit_are_problems(client: TestClient, query: str, detail: str) -> None:
    r = client.get(f"/v1/tensors/he_normal?shape=64,48&seed=3&{query}")
    assert r.status_code == 422, r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert detail in r.json()["detail"]


def test_post_takes_the_same_parts(client: TestClient) -> None:
    body = {"scheme": "he_normal", "shape": [64, 48], "seed": 3, "format": "raw"}
    got = client.post("/v1/tensors", json={**body, "slice": "5:9,40:"})
    assert (
        got.content
        == client.get("/v1/tensors/he_normal?shape=64,48&seed=3&format=raw&slice=5:9,40:").content
    )
    refused = client.post("/v1/tensors", json={**body, "shard": {"dim": 9, "index": 0, "count": 2}})
    assert refused.status_code == 422
    assert refused.json()["errors"][0]["pointer"] == "#/shard/dim"
