"""A model's initial checkpoint on disk, as `transformers`' `save_pretrained` lays it out, made
from a recipe bundle without ever holding the model.

One describe of the whole recipe fixes the seed and names every tensor; tied copies are left
out (as `save_pretrained` leaves them out: the model re-ties them on load); the rest is split
into shards by huggingface_hub's rule (`split_torch_state_dict_into_shards`: in order, a new
shard when the next tensor would pass `max_shard_size`, a tensor bigger than that alone), and
each shard is fetched as the bundle of just its tensors (`select`): parallel ranges, a `.part`
file renamed when whole and checked against the server's Repr-Digest. A shard already on disk
whose digest was recorded when it was verified (`.weightgen/<shard>.json`, with its ETag) is
hashed again and kept, not fetched. Then `model.safetensors.index.json` (more than one shard)
and `config.json`. Memory: the client's buffers (the file is written with O_DIRECT or pwrite,
`files.py`) and the server's blocks, whatever the model's size.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .files import sha256 as file_sha256

if TYPE_CHECKING:
    from . import Client, Progress

SINGLE = "model.safetensors"
INDEX = "model.safetensors.index.json"
STATE = ".weightgen"  # verified digests of the shards written, for a resumed run
# huggingface_hub's SIZE_UNITS (decimal, as save_pretrained reads "5GB"), and transformers'
# convert_file_size_to_int binary units
UNITS = {"TB": 10**12, "GB": 10**9, "MB": 10**6, "KB": 10**3,
         "TIB": 2**40, "GIB": 2**30, "MIB": 2**20, "KIB": 2**10}  # fmt: skip
DEFAULT_SHARD = "50GB"  # save_pretrained's default in transformers 5.24
ITEMSIZE = {"float64": 8, "float32": 4, "float16": 2, "bfloat16": 2,
            "float8_e4m3fn": 1, "float8_e5m2": 1}  # fmt: skip


def parse_size(text: str | int) -> int:
    """`5GB` (10^9), `500MB`, `2GiB` (2^30) or a number of bytes, as transformers reads it."""
    if isinstance(text, int) or str(text).strip().isdigit():
        size = int(text)
    else:
        found = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([A-Za-z]+)\s*", str(text))
        unit = found.group(2).upper() if found else ""
        if found is None or unit not in UNITS:
            raise ValueError(
                f"max shard size {text!r} is not a size; expected bytes or a number with one of "
                "KB, MB, GB, TB (powers of 10) or KiB, MiB, GiB, TiB (powers of 2)"
            )
        size = int(float(found.group(1)) * UNITS[unit])
    if size < 1:
        raise ValueError(f"max shard size must be at least 1 byte; received {text!r}")
    return size


@dataclass(frozen=True)
class Shard:
    filename: str
    names: tuple[str, ...]
    nbytes: int


def _natural(name: str) -> list[tuple[int, int | str]]:
    """layers.2 before layers.10: names in natural order, so a shard holds whole layers in a
    row. Not the module order save_pretrained follows (that is not in describe's answer):
    which tensor lands in which file may differ from its split, never which tensors there are
    or how the index maps them."""
    return [(0, int(p)) if p.isdigit() else (1, p) for p in re.split(r"(\d+)", name)]


def nbytes(tensor: Mapping[str, Any]) -> int:
    count = 1
    for d in tensor["shape"]:
        count *= int(d)
    return count * ITEMSIZE[str(tensor["dtype"])]


def shards(tensors: Sequence[Mapping[str, Any]], max_bytes: int) -> list[Shard]:
    """The untied tensors split as huggingface_hub splits a state dict (`_base.py`,
    split_state_dict_into_shards_factory), named as save_pretrained names the files."""
    kept = sorted(
        (t for t in tensors if t.get("tied_to") is None), key=lambda t: _natural(t["name"])
    )
    groups: list[list[Mapping[str, Any]]] = []
    current: list[Mapping[str, Any]] = []
    size = 0
    for t in kept:
        n = nbytes(t)
        if n > max_bytes:
            groups.append([t])
            continue
        if current and size + n > max_bytes:
            groups.append(current)
            current, size = [], 0
        current.append(t)
        size += n
    if current:
        groups.append(current)
    total = len(groups)
    return [
        Shard(
            SINGLE if total == 1 else f"model-{i + 1:05d}-of-{total:05d}.safetensors",
            tuple(t["name"] for t in g),
            sum(nbytes(t) for t in g),
        )
        for i, g in enumerate(groups)
    ]


@dataclass(frozen=True)
class Written:
    directory: Path
    seed: int
    shards: tuple[Shard, ...]
    fetched: tuple[str, ...]  # the shards downloaded this time (the others were kept)
    bytes: int  # of the shard files


def _state(directory: Path, shard: Shard) -> Path:
    return directory / STATE / f"{shard.filename}.json"


def _kept(directory: Path, shard: Shard, etag: str, length: int) -> bool:
    """Whether the shard on disk is the one described: its length, and its SHA-256 the digest
    recorded when it was verified against the server's, for this very ETag."""
    path, state = directory / shard.filename, _state(directory, shard)
    if not (path.is_file() and state.is_file() and path.stat().st_size == length):
        return False
    try:
        recorded = json.loads(state.read_text())
    except ValueError:
        return False
    return bool(recorded.get("etag") == etag and recorded.get("sha256") == file_sha256(path).hex())


def _write_json(path: Path, data: Mapping[str, Any]) -> None:
    part = path.with_name(path.name + ".part")
    part.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    part.replace(path)


def config_json(recipe: Mapping[str, Any], config: Mapping[str, Any], dtype: str) -> dict[str, Any]:
    """config.json as save_pretrained writes it: the given config with its model_type, the
    architecture, and the dtype the tensors are stored in."""
    out = {k: v for k, v in config.items() if k != "torch_dtype"}
    out.setdefault("model_type", recipe["model_type"])
    out.setdefault("architectures", [recipe["model"]])
    out["dtype"] = dtype
    return out


def _stale(directory: Path, planned: set[str]) -> None:
    """Shards of an earlier save with another count, as save_pretrained removes them."""
    for path in directory.glob("model-*-of-*.safetensors"):
        if path.name not in planned and re.fullmatch(
            r"model-\d{5}-of-\d{5}\.safetensors", path.name
        ):
            path.unlink()
            _state(directory, Shard(path.name, (), 0)).unlink(missing_ok=True)
    if len(planned) > 1:
        (directory / SINGLE).unlink(missing_ok=True)
    else:
        (directory / INDEX).unlink(missing_ok=True)


def write(
    client: Client,
    body: Mapping[str, Any],
    directory: str | Path,
    *,
    max_shard_size: str | int = DEFAULT_SHARD,
    connections: int = 1,
    progress: Progress | None = None,
    verify: bool = True,
) -> Written:
    """The checkpoint of a recipe bundle (`body`: recipe, config, seed, dtype) in `directory`."""
    limit = parse_size(max_shard_size)
    whole = client.describe_bundle(body)
    seed = int(whole["seed"])
    plan = shards(whole["tensors"], limit)
    directory = Path(directory)
    (directory / STATE).mkdir(parents=True, exist_ok=True)
    _stale(directory, {s.filename for s in plan})
    total, done, fetched = sum(s.nbytes for s in plan), 0, []
    for shard in plan:
        r = client.bundle_resource({**body, "seed": seed, "select": list(shard.names)})
        if not _kept(directory, shard, r.etag, r.length):
            _state(directory, shard).unlink(missing_ok=True)
            base = done
            step = None if progress is None else (lambda n, _, b=base: progress(b + n, total))
            digest = client.download(
                r, directory / shard.filename, connections=connections, progress=step,
                verify=verify,
            )  # fmt: skip
            if digest is not None:
                _write_json(_state(directory, shard), {"etag": r.etag, "sha256": digest.hex()})
            fetched.append(shard.filename)
        done += shard.nbytes
        if progress is not None:
            progress(done, total)
    _finish(client, body, whole, plan, directory)
    files = sum((directory / s.filename).stat().st_size for s in plan)
    return Written(directory, seed, tuple(plan), tuple(fetched), files)


def _finish(
    client: Client,
    body: Mapping[str, Any],
    whole: Mapping[str, Any],
    plan: list[Shard],
    directory: Path,
) -> None:
    """The index (sharded only) and config.json, each written whole or not at all."""
    if len(plan) > 1:
        kept = [t for t in whole["tensors"] if t.get("tied_to") is None]
        parameters = sum(nbytes(t) // ITEMSIZE[str(t["dtype"])] for t in kept)
        index = {
            "metadata": {"total_parameters": parameters, "total_size": sum(s.nbytes for s in plan)},
            "weight_map": {name: s.filename for s in plan for name in s.names},
        }
        _write_json(directory / INDEX, index)
    recipe = client.recipe(str(body["recipe"]))
    dtype = str(whole["tensors"][0]["dtype"])
    given = whole.get("hf_config") or body.get("config") or {}  # a converter's, where one is
    _write_json(directory / "config.json", config_json(recipe, given, dtype))
