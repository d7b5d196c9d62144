"""A bundle: many named tensors (a model's initial state dict) as one safetensors stream.

Each member is planned exactly as the single-tensor request with the same name, seed and
parameters, and draws from its own name's stream, so a member's bytes never depend on the
other members or on their order. No HTTP, no pydantic.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import cached_property

from service import rng
from service.dtypes import DTypeName
from service.engines import Engines
from service.errors import InvalidRequest, LimitExceeded, ShapeError
from service.formats import safetensors as st
from service.plan import (
    Device,
    Limits,
    Plan,
    SeedSource,
    Span,
    TensorSpec,
    data_spans,
    draw_seed,
    etag,
    plan,
)
from service.presets import Member
from service.slices import Part, Shard, Slice, placed, resolve

MAX_TENSORS = 10_000


@dataclass(frozen=True)
class BundleSpec:
    members: tuple[Member, ...]
    seed: int | None = None
    dtype: DTypeName = "float32"
    device: Device = "auto"
    ignored_config: tuple[str, ...] = ()  # a recipe's config fields it does not read
    hf_config: Mapping[str, object] | None = None  # a recipe's converted config.json, if any
    select: tuple[str, ...] | None = None  # only these members, by name (None: all)
    shard: Shard | Mapping[str, Shard] | None = None  # every member, or those named


@dataclass(frozen=True)
class Entry:
    plan: Plan  # a tied member's is its source's: the same bytes
    offset: int  # of the tensor's bytes in the data buffer
    name: str = ""  # in the header; "" means the plan's name
    tied_to: str | None = None

    @property
    def label(self) -> str:
        return self.name or self.plan.name


@dataclass(frozen=True)
class BundlePlan:
    seed: int
    seed_source: SeedSource
    dtype: DTypeName
    entries: tuple[Entry, ...]  # in header order
    header: bytes
    algorithm: str = rng.ALGORITHM
    ignored_config: tuple[str, ...] = ()  # not part of the bytes, nor of the ETag
    hf_config: Mapping[str, object] | None = None  # neither

    @cached_property
    def nbytes(self) -> int:
        return sum(e.plan.nbytes for e in self.entries)

    @property
    def content_length(self) -> int:
        return len(self.header) + self.nbytes

    @property
    def format(self) -> str:
        return "safetensors"

    @cached_property
    def strong(self) -> bool:
        return all(e.plan.strong for e in self.entries)

    @cached_property
    def plans(self) -> tuple[Plan, ...]:
        return tuple(e.plan for e in self.entries)

    def canonical(self) -> dict[str, object]:
        """Bundle parameters and each member's canonical request, in header order; tied members
        (only where there are any) as {name: source}, their bytes being their source's."""
        tensors = []
        for e in self.entries:
            if e.tied_to is None:
                c = e.plan.canonical()
                tensors.append({k: v for k, v in c.items() if k not in ("seed", "format")})
        out: dict[str, object] = {"seed": self.seed, "dtype": self.dtype, "tensors": tensors}
        ties = {e.label: e.tied_to for e in self.entries if e.tied_to is not None}
        if ties:
            out["tied"] = dict(sorted(ties.items()))
        return out

    @cached_property
    def etag(self) -> str:
        return etag({"bundle": self.canonical(), "algorithm": self.algorithm}, self.strong)

    def spans(self, start: int, stop: int, block: int) -> Iterator[bytes | Span]:
        head = len(self.header)
        if start < head:
            yield self.header[start : min(stop, head)]
        for e in self.entries:
            lo = head + e.offset
            hi = lo + e.plan.nbytes
            if hi > start and lo < stop:
                yield from data_spans(e.plan, max(start, lo) - lo, min(stop, hi) - lo, block)


def metadata(seed: int, entries: list[tuple[str, Plan, str | None]]) -> dict[str, str]:
    """`format: pt` (what transformers expects), the bundle's parameters, each member's plan
    (a tied member's is its source's, with `tied_to`)."""
    out = {
        "format": "pt",
        "weightgen.seed": str(seed),
        "weightgen.algorithm": rng.ALGORITHM,
    }
    for name, p, tied_to in entries:
        numbers = {k: v for k, v in p.metadata().items() if k not in ("seed", "algorithm")}
        if tied_to is not None:
            numbers["tied_to"] = tied_to
        out[f"weightgen.plan.{name}"] = json.dumps(numbers, separators=(",", ":"))
    return out


def _check(spec: BundleSpec) -> None:
    if not spec.members:
        raise InvalidRequest("a bundle needs at least one tensor (tensors or layers)")
    if len(spec.members) > MAX_TENSORS:
        raise LimitExceeded(
            f"a bundle holds at most {MAX_TENSORS} tensors; received {len(spec.members)}"
        )
    twice = sorted(n for n, c in Counter(m.name for m in spec.members).items() if c > 1)
    if twice:
        raise InvalidRequest(
            f"tensor names must be unique in a bundle; given more than once: {', '.join(twice)}"
        )


def _ties(spec: BundleSpec) -> dict[str, str]:
    """{tied member: its source}: each source an untied member of the same shape."""
    by_name = {m.name: m for m in spec.members}
    ties = {}
    for m in spec.members:
        if m.tied_to is None:
            continue
        source = by_name.get(m.tied_to)
        if source is None or source.tied_to is not None:
            raise InvalidRequest(
                f"{m.name} is tied to {m.tied_to!r}, which is not an untied member of the bundle"
            )
        if tuple(source.shape) != tuple(m.shape):
            raise InvalidRequest(
                f"{m.name} {list(m.shape)} is tied to {m.tied_to} of another shape "
                f"{list(source.shape)}"
            )
        ties[m.name] = m.tied_to
    return ties


def _few(names: list[str]) -> str:
    shown = ", ".join(names[:5])
    return shown + (f" (and {len(names) - 5} more)" if len(names) > 5 else "")


def _selected(spec: BundleSpec, ties: dict[str, str]) -> list[Member]:
    """The members `select` names (all without it), in the bundle's order: each a member of the
    bundle, once; a tied member only with its source (its bytes and law are the source's)."""
    if spec.select is None:
        return list(spec.members)
    if not spec.select:
        raise InvalidRequest("select names no member; leave it out for all of them")
    wanted = Counter(spec.select)
    twice = sorted(n for n, c in wanted.items() if c > 1)
    unknown = sorted(set(wanted) - {m.name for m in spec.members})
    alone = sorted(f"{n} (select {ties[n]} too)" for n in wanted if ties.get(n, n) not in wanted)
    found = [
        f"{what}: {_few(names)}"
        for what, names in (
            ("given more than once", twice),
            ("not members of the bundle", unknown),
            ("tied to a member not selected", alone),
        )
        if names
    ]
    if found:
        raise InvalidRequest(f"select names members of the bundle, once each; {'; '.join(found)}")
    return [m for m in spec.members if m.name in wanted]


def _cut(m: Member, part: Part | None) -> Slice | None:
    """The member's part resolved against its shape; a misfit names the member."""
    try:
        return resolve(part, m.shape)
    except ShapeError as exc:
        raise ShapeError(f"member {m.name}: {exc.detail}") from None


def _parts(spec: BundleSpec, kept: list[Member]) -> dict[str, Part | None]:
    """Each kept member's part: its own (`tensors` entries' slice or shard), or the bundle's
    `shard`, or its entry in the `shards` map, never two of them. A tied member holds its
    source's bytes, so it takes its source's part; named with another, it is refused."""
    by_shard = spec.shard if isinstance(spec.shard, Shard) else None
    by_name = dict(spec.shard) if isinstance(spec.shard, Mapping) else {}
    unknown = sorted(set(by_name) - {m.name for m in spec.members})
    if unknown:
        raise InvalidRequest(f"shards names members of the bundle; not members: {_few(unknown)}")
    out: dict[str, Part | None] = {}
    for m in kept:
        shard = by_shard or by_name.get(m.name)
        # a rank's plan: past torch.chunk's pieces, the empty piece DTensor gives that rank
        given = None if shard is None else placed(shard, m.shape)
        if given is not None and m.part is not None:
            raise InvalidRequest(
                f"{m.name} has its own slice or shard and the bundle's shard cuts it too; give one"
            )
        out[m.name] = given if given is not None else m.part
        _cut(m, out[m.name])
    for m in kept:
        source = m.tied_to
        if source is None:
            continue
        if m.name not in by_name:
            out[m.name] = out[source]
        elif _cut(m, out[m.name]) != _cut(m, out[source]):
            raise InvalidRequest(
                f"{m.name} is tied to {source} and holds its bytes, so it takes {source}'s part; "
                "leave it out of shards or give it the same shard"
            )
    return out


def _plan(
    m: Member, part: Part | None, spec: BundleSpec, seed: int, limits: Limits, engines: Engines
) -> Plan:
    """A member planned as the single-tensor request with its name (and its part)."""
    return plan(
        TensorSpec(
            m.shape,
            m.scheme,
            m.convention,
            m.params,
            m.fans,
            seed,
            m.name,
            m.dtype or spec.dtype,
            spec.device,
            "raw",
            m.zero_rows,
            part,
        ),
        limits,
        engines,
    )


def plan_bundle(spec: BundleSpec, limits: Limits, engines: Engines) -> BundlePlan:
    """Plan every member (as its single-tensor request; only those `select` names, when it is
    given) and lay out the safetensors file; a tied member is laid out as a copy of its source's
    plan, under its own name."""
    _check(spec)
    ties = _ties(spec)
    kept = _selected(spec, ties)
    parts = _parts(spec, kept)
    seed, source = draw_seed(spec.seed)
    by_name = {
        m.name: _plan(m, parts[m.name], spec, seed, limits, engines)
        for m in kept
        if m.tied_to is None
    }
    for m in kept:
        if m.tied_to is not None:
            by_name[m.name] = by_name[m.tied_to]
    total = sum(by_name[m.name].nbytes for m in kept)
    if total > limits.max_bytes:
        raise LimitExceeded(
            f"the bundle's tensors hold {total} bytes; this service serves at most "
            f"{limits.max_bytes} (WEIGHTGEN_MAX_BYTES)"
        )
    layout = st.order([st.Entry(n, p.shape, p.dtype) for n, p in by_name.items()])
    entries, offset = [], 0
    for e in layout:
        tied = ties.get(e.name)
        entries.append(Entry(by_name[e.name], offset, "" if tied is None else e.name, tied))
        offset += e.nbytes
    named = [(e.name, by_name[e.name], ties.get(e.name)) for e in layout]
    header = st.header(layout, metadata(seed, named))
    return BundlePlan(
        seed, source, spec.dtype, tuple(entries), header,
        ignored_config=spec.ignored_config, hf_config=spec.hf_config,
    )  # fmt: skip
