"""A recipe's model as a `torch.distributed.checkpoint` directory (the layout torchtitan's and
OLMo-core's loaders take as an initial, "seed" checkpoint), written one tensor at a time.

`dcp.save` cannot write a model it does not hold: its FileSystemWriter keeps every tensor of a
file until the file is closed (torch 2.13, `filesystem.py`, `_write_files_from_queue`). So this
writes what it writes, with torch's own pieces: each tensor `torch.save`d in turn into
`__0_0.distcp` (its offset and length recorded, as `_write_item` records them), then the
pickled `Metadata` (`TensorStorageMetadata` of one whole chunk per tensor, `_StorageInfo` per
`MetadataIndex`, `planner_data` {fqn: (fqn,)} as the default planner flattens a flat dict,
version `CURRENT_DCP_VERSION`) to `.metadata`, through a temporary name. Tied tensors are
written under each name (a DCP load asks for every key of the model's state dict). Each tensor
is fetched as a bundle of its own (`select`), so it is verified against the server's
Repr-Digest; memory: the largest tensor. Keys carry the recipe's `dcp_prefix` (OLMo-core's
checkpoints hold the model under `model.`; torchtitan's at the top).

Needs torch (imported here, not by the rest of the client).
"""

from __future__ import annotations

import json
import pickle
import struct
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch.distributed.checkpoint import filesystem, metadata

from .dtypes import BY_CODE, torch_dtype

if TYPE_CHECKING:
    from . import Client, Progress

DATA = "__0_0.distcp"  # rank 0, thread 0: FileSystemWriter's name for a one-process save
META = ".metadata"


def _tensor(
    client: Client, body: Mapping[str, Any], name: str, connections: int, verify: bool
) -> torch.Tensor:
    """The member `name` of the recipe bundle, fetched as a bundle of its own (and checked)."""
    r = client.bundle_resource({**body, "select": [name]})
    buffer = bytearray(r.length)
    client.fetch_into(r, memoryview(buffer), connections=connections, verify=verify)
    (n,) = struct.unpack("<Q", buffer[:8])
    entry = json.loads(buffer[8 : 8 + n])[name]
    begin, end = (8 + n + o for o in entry["data_offsets"])
    data = memoryview(buffer)[begin:end]
    dtype = torch_dtype(BY_CODE[entry["dtype"]])
    flat = torch.frombuffer(data, dtype=dtype) if end > begin else None
    shape = tuple(entry["shape"])
    if flat is None:
        return torch.empty(shape, dtype=dtype)
    return flat.view(shape)


def _write_metadata(directory: Path, state: dict[str, Any], storage: dict[Any, Any]) -> None:
    """`.metadata` as FileSystemWriter.finish writes it (pickled `Metadata`), through a
    temporary name: written last, when every tensor is."""
    meta = metadata.Metadata(
        state_dict_metadata=state,
        planner_data={name: (name,) for name in state},
        storage_data=storage,
        storage_meta=metadata.StorageMeta(checkpoint_id=str(directory), save_id=str(uuid.uuid4())),
        version=filesystem.CURRENT_DCP_VERSION,
    )
    part = directory / f"{META}.tmp"
    with part.open("wb") as f:
        pickle.dump(meta, f)
    part.replace(directory / META)


def write(
    client: Client,
    body: Mapping[str, Any],
    directory: str | Path,
    *,
    connections: int = 1,
    progress: Progress | None = None,
    verify: bool = True,
) -> tuple[int, int]:
    """The recipe bundle `body` as a DCP directory; (seed, bytes of tensor data). The old
    `.metadata` goes first: a run that fails leaves no metadata over half-written data."""
    whole = client.describe_bundle(body)
    body = {**body, "seed": int(whole["seed"])}
    prefix = str(client.recipe(str(body["recipe"])).get("dcp_prefix", ""))
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    (directory / META).unlink(missing_ok=True)
    total = sum(t["data_offsets"][1] - t["data_offsets"][0] for t in whole["tensors"])
    state: dict[str, Any] = {}
    storage: dict[Any, Any] = {}
    done = 0
    with (directory / DATA).open("wb") as stream:
        for t in whole["tensors"]:
            name, source = prefix + t["name"], t.get("tied_to") or t["name"]
            tensor = _tensor(client, body, source, connections, verify)
            at = stream.tell()
            torch.save(tensor, stream)
            origin = torch.Size([0] * tensor.dim())
            index = metadata.MetadataIndex(name, origin)
            storage[index] = filesystem._StorageInfo(DATA, at, stream.tell() - at)
            state[name] = metadata.TensorStorageMetadata(
                metadata.TensorProperties(dtype=tensor.dtype),
                tensor.size(),
                [metadata.ChunkStorageMetadata(origin, tensor.size())],
            )
            del tensor
            done += t["data_offsets"][1] - t["data_offsets"][0]
            if progress is not None:
                progress(done, total)
    _write_metadata(directory, state, storage)
    return int(whole["seed"]), total
