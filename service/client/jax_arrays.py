"""Sharded `jax.Array`s from weightgen, each device fetching only its own piece (docs/shards.md).

`jax.make_array_from_callback(shape, sharding, callback)` asks the callback for every addressable
device's index into the global array (a tuple of steps-free slices); here the callback asks the
service for exactly that `slice` of the tensor (or of a bundle's or recipe's member) and returns
it as a numpy array, downloaded through `Client.fetch_into` (checked against the server's
Repr-Digest). No process ever fetches or holds the whole tensor unless its devices hold it.

    import jax
    from jax.sharding import Mesh, NamedSharding, PartitionSpec as P
    from service.client import Client
    from service.client.jax_arrays import array, bundle_arrays

    mesh = Mesh(jax.devices()[:4], ("x",))
    with Client("http://127.0.0.1:8000") as c:
        w = array(c, "he_normal", [4096, 1024], NamedSharding(mesh, P(None, "x")), seed=7)
        params = bundle_arrays(c, {"recipe": "hf.gpt2", "seed": 1}, NamedSharding(mesh, P()))

Imported only when used: it imports jax (not a dependency of the service).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import jax
import numpy as np
import numpy.typing as npt
from jax.sharding import Sharding

from . import Client
from .bodies import tensor_body
from .dtypes import numpy_dtype

__all__ = [
    "Fetched",
    "Rule",
    "array",
    "bundle_arrays",
    "numpy_dtype",
    "request_array",
    "slice_text",
]

Index = tuple[slice, ...]
# one sharding for every member, one per member name, or a function of (name, full shape)
Rule = Sharding | Mapping[str, Sharding] | Callable[[str, tuple[int, ...]], Sharding]
_PART_KEYS = ("slice", "shard")
_WIDE = ("float64", "int64")  # JAX makes them 32-bit unless jax_enable_x64 is on


@dataclass(frozen=True)
class Fetched:
    """One download: the member (or tensor) name, the canonical slice asked, its bytes, and the
    seed of the request (the service's pick when none was given)."""

    name: str
    slice: str
    nbytes: int
    seed: int


Record = Callable[[Fetched], None]


def slice_text(index: Sequence[slice], shape: Sequence[int]) -> str:
    """A JAX device index as the service's canonical `slice`: `start:stop` on every axis.

    JAX's indices are basic slices without steps (`slice(None)` for a whole axis); anything else
    (a step, a negative or out-of-range bound, an integer, more axes than the shape) is refused
    with a ValueError rather than sent."""
    if len(index) > len(shape):
        raise ValueError(f"index {index!r} has more axes than the shape {list(shape)}")
    axes = []
    for axis, size in enumerate(shape):
        s = index[axis] if axis < len(index) else slice(None)
        if not isinstance(s, slice):
            raise ValueError(f"axis {axis}: {s!r} is not a slice; only start:stop slices are sent")
        if s.step not in (None, 1):
            raise ValueError(f"axis {axis}: {s!r} has step {s.step}; the service sends no steps")
        start = 0 if s.start is None else s.start
        stop = size if s.stop is None else s.stop
        if not 0 <= start <= stop <= size:
            raise ValueError(f"axis {axis}: {s!r} is not within 0:{size} with start <= stop")
        axes.append(f"{start}:{stop}")
    return ",".join(axes)


def _part_shape(text: str) -> tuple[int, ...]:
    return tuple(int(b) - int(a) for a, b in (axis.split(":") for axis in text.split(",") if axis))


def fetch_part(client: Client, request: Mapping[str, Any], text: str) -> npt.NDArray[Any]:
    """`full[slice]` of a whole-tensor request (seed resolved) as a numpy array, verified."""
    body = {**request, "slice": text, "format": "raw"}
    r = client.resource(str(body.pop("scheme")), list(body.pop("shape")), **body)
    dtype = numpy_dtype(str(r.info["request"].get("dtype", "float32")))
    shape = _part_shape(text)
    if tuple(r.info["shape"]) != shape or r.length != math.prod(shape) * dtype.itemsize:
        raise ValueError(
            f"asked slice {text} ({shape}, {dtype.name}); the service describes shape "
            f"{r.info['shape']} in {r.length} bytes"
        )
    out: npt.NDArray[Any] = np.empty(shape, dtype=dtype)
    client.fetch_into(r, out.reshape(-1).view(np.uint8).data)
    return out


def _whole(request: Mapping[str, Any]) -> None:
    """Parts are the sharding's to decide: a request already cut is refused."""
    given = [k for k in _PART_KEYS if request.get(k) is not None]
    if given:
        raise ValueError(
            f"the request already has {' and '.join(given)}; give the whole tensor's request "
            "(the sharding decides each device's part)"
        )


def _check_width(dtype: str) -> None:
    if dtype in _WIDE and not jax.enable_x64.value:
        raise ValueError(
            f"dtype {dtype} needs jax_enable_x64 (JAX would narrow it to 32 bits); enable it "
            "or ask for a 32-bit or narrower dtype"
        )


def request_array(
    client: Client,
    request: Mapping[str, Any],
    sharding: Sharding,
    *,
    shape: Sequence[int] | None = None,
    dtype: str | None = None,
    name: str = "",
    record: Record | None = None,
) -> jax.Array:
    """A sharded jax.Array of a whole-tensor request (the `POST /v1/tensors` body, or a bundle
    member's describe `request`), each device's callback fetching exactly its index; an index
    shared by several devices (replication) is fetched once. Without a seed, the request is
    described once first, so a seed the service picks is the same for every device.
    `shape`/`dtype` default to the request's."""
    _whole(request)
    request = {k: v for k, v in request.items() if k != "format"}
    if request.get("seed") is None:
        rest = {k: v for k, v in request.items() if k not in ("scheme", "shape")}
        d = client.describe(str(request["scheme"]), list(request["shape"]), **rest)
        request = {k: v for k, v in d["request"].items() if k != "format"}
    full = tuple(int(n) for n in (shape if shape is not None else request["shape"]))
    dtype = dtype or str(request.get("dtype", "float32"))
    _check_width(dtype)
    label = name or str(request.get("name", "") or request["scheme"])
    fetched: dict[str, npt.NDArray[Any]] = {}

    def callback(index: Index | None) -> npt.NDArray[Any]:
        text = slice_text(index if index is not None else (), full)
        if text not in fetched:
            fetched[text] = fetch_part(client, request, text)
            if record is not None:
                record(Fetched(label, text, fetched[text].nbytes, int(request["seed"])))
        return fetched[text]

    return jax.make_array_from_callback(full, sharding, callback)


def array(
    client: Client,
    scheme: str,
    shape: Sequence[int],
    sharding: Sharding,
    *,
    record: Record | None = None,
    **params: Any,
) -> jax.Array:
    """A sharded jax.Array of a tensor (`scheme`, `shape`, the tensor request's params), every
    device fetching only its index (`request_array`)."""
    body = tensor_body(scheme, shape, params)
    return request_array(client, body, sharding, record=record)


def _sharding_of(rule: Rule, name: str, shape: tuple[int, ...]) -> Sharding:
    if isinstance(rule, Sharding):
        return rule
    if isinstance(rule, Mapping):
        if name not in rule:
            raise KeyError(f"no sharding for member {name!r}")
        found: Sharding = rule[name]
        return found
    return rule(name, shape)


def bundle_arrays(
    client: Client,
    manifest: Mapping[str, Any],
    sharding: Rule,
    *,
    record: Record | None = None,
) -> dict[str, jax.Array]:
    """A bundle or recipe (the `POST /v1/bundles` body, whole: no `shard`/`shards`) as
    {member name: sharded jax.Array}. `sharding` is one Sharding for all, a {name: Sharding}
    map naming every member, or a function of (name, full shape). The bundle is described once
    (its seed resolved); each member is then fetched as its own single-tensor request
    (describe's `request`), each device asking only its index of it."""
    for key in ("shard", "shards"):
        if manifest.get(key) is not None:
            raise ValueError(f"give the whole bundle without {key}: the sharding decides parts")
    d = client.describe_bundle(manifest)
    if isinstance(sharding, Mapping):
        unknown = sorted(set(sharding) - {m["name"] for m in d["tensors"]})
        if unknown:
            raise KeyError(f"shardings name what is not a member of the bundle: {unknown}")
    out: dict[str, jax.Array] = {}
    for m in d["tensors"]:
        shape = tuple(int(n) for n in m["shape"])
        request = {k: v for k, v in m["request"].items() if k != "format"}
        out[m["name"]] = request_array(
            client,
            request,
            _sharding_of(sharding, m["name"], shape),
            shape=shape,
            dtype=str(m["dtype"]),
            name=m["name"],
            record=record,
        )
    return out
