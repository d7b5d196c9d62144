"""A bundle: many named tensors (a model's initial state dict) as one safetensors stream.

Each member is planned exactly as the single-tensor request with the same name, seed and
parameters, and draws from its own name's stream, so a member's bytes never depend on the
other members or on their order. No HTTP, no pydantic.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cached_property

from service import rng
from service.dtypes import DTypeName
from service.engines import Engines
from service.errors import InvalidRequest, LimitExceeded
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

MAX_TENSORS = 10_000


@dataclass(frozen=True)
class BundleSpec:
    members: tuple[Member, ...]
    seed: int | None = None
    dtype: DTypeName = "float32"
    device: Device = "auto"


@dataclass(frozen=True)
class Entry:
    plan: Plan
    offset: int  # of the tensor's bytes in the data buffer


@dataclass(frozen=True)
class BundlePlan:
    seed: int
    seed_source: SeedSource
    dtype: DTypeName
    entries: tuple[Entry, ...]  # in header order
    header: bytes
    algorithm: str = rng.ALGORITHM

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
        """Bundle parameters and each member's canonical request, in header order."""
        tensors = []
        for e in self.entries:
            c = e.plan.canonical()
            tensors.append({k: v for k, v in c.items() if k not in ("seed", "format")})
        return {"seed": self.seed, "dtype": self.dtype, "tensors": tensors}

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


def metadata(seed: int, plans: list[Plan]) -> dict[str, str]:
    """`format: pt` (what transformers expects), the bundle's parameters, each member's plan."""
    out = {
        "format": "pt",
        "weightgen.seed": str(seed),
        "weightgen.algorithm": rng.ALGORITHM,
    }
    for p in plans:
        numbers = {k: v for k, v in p.metadata().items() if k not in ("seed", "algorithm")}
        out[f"weightgen.plan.{p.name}"] = json.dumps(numbers, separators=(",", ":"))
    return out


def plan_bundle(spec: BundleSpec, limits: Limits, engines: Engines) -> BundlePlan:
    """Plan every member (as its single-tensor request) and lay out the safetensors file."""
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
    seed, source = draw_seed(spec.seed)
    plans = [
        plan(
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
            ),
            limits,
            engines,
        )
        for m in spec.members
    ]
    total = sum(p.nbytes for p in plans)
    if total > limits.max_bytes:
        raise LimitExceeded(
            f"the bundle's tensors hold {total} bytes; this service serves at most "
            f"{limits.max_bytes} (WEIGHTGEN_MAX_BYTES)"
        )
    by_name = {p.name: p for p in plans}
    layout = st.order([st.Entry(p.name, p.shape, p.dtype) for p in plans])
    entries, offset = [], 0
    for e in layout:
        entries.append(Entry(by_name[e.name], offset))
        offset += e.nbytes
    header = st.header(layout, metadata(seed, [by_name[e.name] for e in layout]))
    return BundlePlan(seed, source, spec.dtype, tuple(entries), header)
