"""Fill a torch module, DTensor-sharded or not, from a bundle or recipe request: each rank
fetches exactly the part of every tensor it holds (docs/shards.md).

    from service.client import Client
    from service.client.distributed import load_module

    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(config)
    fully_shard(model)                       # or parallelize_module(model, mesh, plan)
    with Client(url) as c:
        load_module(c, model, {"seed": 0, "recipe": "hf.llama", "config": cfg,
                               "dtype": "bfloat16"})

Needs torch; imported only when used. How a rank asks: `describe` of the whole bundle gives each
member's single-tensor request (its stream name, scheme and numbers; a tied member's is its
source's); the rank computes each parameter's local shape and global offset from its placements
and mesh coordinate (torch's `compute_local_shape_and_global_offset`, which handles uneven
`Shard(d)` as torch.chunk and several mesh dimensions), and asks one bundle whose `tensors` are
those requests, each with its `slice`. One request per rank, for any placements; the bytes are
written straight into the local tensors' memory as they arrive (`TensorSink`), then checked
against the server's Repr-Digest.
"""

from __future__ import annotations

import bisect
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch
from torch.distributed.tensor import DTensor
from torch.distributed.tensor._utils import compute_local_shape_and_global_offset
from torch.distributed.tensor.placement_types import _StridedShard

from .dtypes import torch_dtype
from .ranges import Resource
from .verify import Seen, check

if TYPE_CHECKING:
    from service.client import Client

BUNDLE_PARTS = ("shard", "shards")  # cuts of a whole bundle: this function makes its own


@dataclass
class Loaded:
    """What a rank fetched: `bytes` of tensor data (the safetensors header not counted) in
    `requests` GETs of one bundle (0 when the rank holds nothing), the names filled, and the
    module's tensors the bundle does not name (non-persistent buffers: the caller's to set)."""

    bytes: int = 0
    requests: int = 0
    filled: list[str] = field(default_factory=list)
    untouched: list[str] = field(default_factory=list)


@dataclass
class Want:
    """One member of the rank's bundle: a stream's request, the slice, the tensors it fills."""

    request: dict[str, Any]
    slice: str | None
    targets: list[torch.Tensor]


def local_part(tensor: torch.Tensor) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """(local shape, global offset) of what this rank holds of `tensor`: all of it unless it is
    a DTensor, then what its placements and the rank's mesh coordinate give (torch.chunk's
    pieces for an uneven `Shard(d)`, empty past them; Replicate: all of it). A `Partial`
    tensor is the sum of its ranks' local tensors, which no fetch of the whole can fill."""
    if not isinstance(tensor, DTensor):
        return tuple(tensor.shape), (0,) * tensor.dim()
    if any(p.is_partial() for p in tensor.placements):
        raise NotImplementedError(
            f"placements {tensor.placements}: a Partial tensor is the sum of its ranks' local "
            "tensors; initialize it Replicate (or Shard) and redistribute"
        )
    if any(isinstance(p, _StridedShard) for p in tensor.placements):
        raise NotImplementedError(
            f"placements {tensor.placements} hold a strided (non-box) part; not supported"
        )
    shape, offset = compute_local_shape_and_global_offset(
        tensor.shape, tensor.device_mesh, tensor.placements
    )
    return tuple(shape), tuple(offset)


def slice_text(shape: tuple[int, ...], offset: tuple[int, ...], full: list[int]) -> str | None:
    """The service's `slice` for the box at `offset` of `shape`; None for the whole tensor."""
    if list(shape) == list(full):
        return None
    return ",".join(f"{o}:{o + n}" for o, n in zip(offset, shape, strict=True))


def _local(tensor: torch.Tensor) -> torch.Tensor:
    """The tensor this rank writes: a DTensor's local tensor (a view of its storage)."""
    return tensor.to_local() if isinstance(tensor, DTensor) else tensor


def _allocate(module: torch.nn.Module, device: torch.device | str | None) -> None:
    """Storage for every tensor still on the meta device (uninitialized; filled after)."""
    tensors = [*module.parameters(), *module.buffers()]
    if any(_local(t).is_meta for t in tensors):
        ties = _ties(module)
        module.to_empty(device=device or _device(tensors))
        for name, source in ties.items():  # to_empty makes a new tensor per name: tie again
            owner, _, attr = name.rpartition(".")
            setattr(module.get_submodule(owner), attr, module.get_parameter(source))


def _ties(module: torch.nn.Module) -> dict[str, str]:
    """{parameter name: the first name of the same parameter} for the names after the first."""
    first: dict[int, str] = {}
    ties = {}
    for name, p in module.named_parameters(remove_duplicate=False):
        ties[name] = first.setdefault(id(p), name)
    return {name: source for name, source in ties.items() if name != source}


def _device(tensors: list[torch.Tensor]) -> str:
    for t in tensors:
        if isinstance(t, DTensor):
            return t.device_mesh.device_type
    return "cpu"


def _members(client: Client, body: Mapping[str, Any]) -> tuple[int, dict[str, dict[str, Any]]]:
    """(seed, {member name: its describe entry}) of the whole bundle."""
    given = sorted(k for k in BUNDLE_PARTS if body.get(k) is not None)
    if given:
        raise ValueError(f"the body cuts the bundle ({', '.join(given)}); give it whole")
    if body.get("seed") is None:
        raise ValueError("the body needs a seed: every rank must ask for the same tensors")
    described = client.describe_bundle(body)
    return int(described["seed"]), {m["name"]: m for m in described["tensors"]}


def _wants(
    module: torch.nn.Module, members: dict[str, dict[str, Any]], strict: bool, loaded: Loaded
) -> list[Want]:
    """One Want per (stream request, slice) this rank holds a non-empty part of."""
    by_key: dict[str, Want] = {}
    seen: set[int] = set()
    for name, tensor in module.state_dict(keep_vars=True).items():
        member = members.get(name)
        if member is None:
            if strict:
                raise KeyError(f"{name} is not a member of the bundle")
            loaded.untouched.append(name)
            continue
        if list(tensor.shape) != member["shape"]:
            raise ValueError(f"{name}: the module's shape {list(tensor.shape)} is not the "
                             f"bundle's {member['shape']}")  # fmt: skip
        shape, offset = local_part(tensor)
        if list(_local(tensor).shape) != list(shape):
            raise ValueError(f"{name}: local tensor {list(_local(tensor).shape)}, expected {shape}")
        if id(tensor) in seen or 0 in shape:  # nothing held here (past torch.chunk's pieces)
            continue
        seen.add(id(tensor))
        request = {k: v for k, v in member["request"].items() if k != "seed"}
        part = slice_text(shape, offset, member["shape"])
        key = json.dumps([request, part], sort_keys=True)
        by_key.setdefault(key, Want(request, part, [])).targets.append(tensor)
        loaded.filled.append(name)
    _one_part_per_stream(list(by_key.values()))
    return list(by_key.values())


def _one_part_per_stream(wants: list[Want]) -> None:
    names = [w.request["name"] for w in wants]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise ValueError(f"tied tensors held as different parts on this rank: {twice}")


def rank_body(seed: int, body: Mapping[str, Any], wants: list[Want]) -> dict[str, Any]:
    """The bundle this rank asks: every wanted stream as a `tensors` member with its slice."""
    tensors = [{**w.request, **({} if w.slice is None else {"slice": w.slice})} for w in wants]
    out: dict[str, Any] = {"seed": seed, "tensors": tensors}
    for key in ("device", "name"):
        if key in body:
            out[key] = body[key]
    return out


class TensorSink:
    """The rank bundle's bytes laid where they go (a `Sink` for `Client._into`): the header into
    a small buffer, each member's data straight into its local tensor's memory when that is a
    contiguous CPU tensor of the member's dtype, else into a staging tensor copied after. So a
    rank holds its part once, not a body and then the tensors."""

    def __init__(self, resource: Resource, wants: dict[str, Want]) -> None:
        members = resource.info["tensors"]
        data = sum(m["data_offsets"][1] - m["data_offsets"][0] for m in members)
        base = resource.length - data
        self.header = bytearray(base)
        self.regions: list[tuple[int, memoryview]] = [(0, memoryview(self.header))]
        self.staged: list[tuple[torch.Tensor, list[torch.Tensor]]] = []
        for m in sorted(members, key=lambda m: int(m["data_offsets"][0])):
            targets = [_local(t) for t in wants[m["name"]].targets]
            into = _into(targets[0], torch_dtype(m["dtype"]), m["shape"])
            rest = targets[1:] if into is targets[0] else targets
            if rest:
                self.staged.append((into, rest))
            start, stop = m["data_offsets"]
            view = _bytes(into)
            if len(view) != stop - start:
                raise ValueError(f"{m['name']}: {stop - start} bytes for a tensor of {len(view)}")
            self.regions.append((base + start, view))
        self.starts = [at for at, _ in self.regions]

    def __setitem__(self, where: slice, data: memoryview, /) -> None:
        at = int(where.start)
        while len(data):
            i = bisect.bisect_right(self.starts, at) - 1
            start, view = self.regions[i]
            n = min(len(data), start + len(view) - at)
            view[at - start : at - start + n] = data[:n]
            at, data = at + n, data[n:]

    def digest(self) -> bytes:
        """SHA-256 of the bytes as laid out (the regions tile the body in order)."""
        h = hashlib.sha256()
        for _, view in self.regions:
            h.update(view)
        return h.digest()

    def finish(self) -> None:
        for source, targets in self.staged:
            for target in targets:
                target.copy_(source)


def _into(target: torch.Tensor, dtype: torch.dtype, shape: list[int]) -> torch.Tensor:
    """`target` itself when the bytes can land in it, else a CPU staging tensor."""
    direct = target.device.type == "cpu" and target.dtype == dtype and target.is_contiguous()
    return target if direct else torch.empty(shape, dtype=dtype)


def _bytes(tensor: torch.Tensor) -> memoryview:
    """The writable bytes of a contiguous CPU tensor."""
    flat = tensor.detach().reshape(-1).view(torch.uint8)
    return flat.numpy().data.cast("B")


def load_module(
    client: Client,
    module: torch.nn.Module,
    body: Mapping[str, Any],
    *,
    device: torch.device | str | None = None,
    connections: int = 1,
    strict: bool = True,
) -> Loaded:
    """Fill `module` (on the meta device or anywhere; plain, FSDP2 or tensor parallel) from the
    bundle request `body` (a recipe, layers or tensors, with a seed): tensors on the meta device
    are first allocated (`to_empty`, on `device` or the mesh's device type), then each rank
    fetches only its part of each parameter and buffer, in one verified GET, and writes it in
    place. With `strict`, a state-dict name the bundle lacks is a KeyError."""
    loaded = Loaded()
    _allocate(module, device)
    seed, members = _members(client, body)
    wants = _wants(module, members, strict, loaded)
    loaded.untouched += [
        n for n, _ in module.named_buffers() if n not in members and n not in loaded.untouched
    ]
    if not wants:
        return loaded
    resource = client.bundle_resource(rank_body(seed, body, wants))
    with torch.no_grad():
        sink = TensorSink(resource, {w.request["name"]: w for w in wants})
        seen = Seen()
        client._into(resource, sink, connections, None, seen)
        check(resource.url, seen.digest or client.repr_digest(resource), sink.digest())
        sink.finish()
    loaded.requests = 1
    loaded.bytes = resource.length - len(sink.header)
    return loaded
