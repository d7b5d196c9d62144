"""A request, resolved: the scheme's numbers, the distribution the engine draws, the format
header, the exact length and the ETag. No HTTP, no pydantic.

Everything that can fail for a request fails in `plan`, before any byte is produced. A `Plan`
(one tensor) and a `BundlePlan` (service.bundle) are both a `Payload`: what the API answers.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, fields, replace
from functools import cached_property
from typing import Literal, Protocol

from service import distributions as dist
from service import rng, schemes
from service.draws import distribution
from service.dtypes import DType, DTypeName, FormatName, dtype
from service.engines import Engine, Engines, Sampling
from service.errors import InvalidRequest, LimitExceeded, ShapeError, UnsupportedCombination
from service.formats import TensorInfo, Writer, writer
from service.schemes import Convention, FanSpec, Params, SchemePlan
from service.shapes import MAX_RANK, Shape, numel
from service.slices import Part, Slice, resolve

Device = Literal["auto", "cpu", "cuda"]
SeedSource = Literal["request", "service"]
MAX_SEED = 2**64 - 1
MAX_QR_ELEMENTS = 1 << 22  # orthogonal kinds: the whole float64 matrix in memory, then QR
MAX_SPARSE_ROWS = 1 << 20  # sparse: a column's keys (8 bytes a row) are ranked in memory
MAX_SPARSE_COLUMNS = 1 << 19  # sparse: 4 MiB of thresholds; the 32 MiB memo holds 8 streams'
MAX_SPARSE_ELEMENTS = 1 << 26  # sparse: any part ranks all rows of its columns (seconds here)


@dataclass(frozen=True)
class TensorSpec:
    """What a client asked for, validated for types at the edge; `format` None: the dtype's
    default (`DType.default_format`), `seed` None: the service draws one, `part` None: the
    whole tensor (else a slice or a shard of it, service.slices)."""

    shape: Shape
    scheme: str
    convention: Convention = "keras"
    params: Params = field(default_factory=Params)
    fans: FanSpec = field(default_factory=FanSpec)
    seed: int | None = None
    name: str = "weight"
    dtype: DTypeName = "float32"
    device: Device = "auto"
    format: FormatName | None = None
    zero_rows: tuple[int, ...] = ()
    part: Part | None = None


@dataclass(frozen=True)
class Limits:
    max_elements: int
    max_bytes: int


class Payload(Protocol):
    """A planned answer: its exact length, its validator and its bytes, span by span."""

    @property
    def content_length(self) -> int: ...
    @property
    def format(self) -> str: ...  # npy, safetensors or raw
    @property
    def etag(self) -> str: ...
    @property
    def seed_source(self) -> SeedSource: ...
    @property
    def strong(self) -> bool: ...  # bit-reproducible: a strong ETag, cheap in any range
    @property
    def header(self) -> bytes: ...  # the format's header, the payload's first bytes
    @property
    def plans(self) -> tuple[Plan, ...]: ...  # the tensors it holds: itself, or the members
    def spans(self, start: int, stop: int, block: int) -> Iterator[bytes | Span]: ...


def etag(document: Mapping[str, object], strong: bool) -> str:
    """A validator hashing the canonical document of an answer: equal answers, equal tags."""
    text = json.dumps(document, sort_keys=True)
    tag = '"' + hashlib.sha256(text.encode()).hexdigest()[:32] + '"'
    return tag if strong else "W/" + tag


def draw_seed(seed: int | None) -> tuple[int, SeedSource]:
    """The request's seed, or one the service draws (then the answer is not cacheable)."""
    return (seed, "request") if seed is not None else (secrets.randbits(64), "service")


@dataclass(frozen=True)
class Span:
    """Elements [lo, hi) of a plan's tensor, of whose bytes only [byte_lo, byte_hi) are wanted."""

    plan: Plan
    lo: int
    hi: int
    byte_lo: int
    byte_hi: int


def data_spans(plan: Plan, data_lo: int, data_hi: int, block: int) -> Iterator[Span]:
    """Bytes [data_lo, data_hi) of a tensor's data, as blocks of at most `block` elements."""
    if data_hi <= data_lo:
        return
    size = plan.dtype.itemsize
    first, last = data_lo // size, -(-data_hi // size)
    for lo in range(first, last, block):
        hi = min(lo + block, last)
        yield Span(plan, lo, hi, max(data_lo - lo * size, 0), min(data_hi, hi * size) - lo * size)


@dataclass(frozen=True)
class Plan:
    """One tensor, resolved: every field final, nothing left to default. With a `part`, the
    answer is that slice of the tensor: its shape and bytes are the slice's, its law, fans and
    numbers the whole tensor's."""

    name: str
    scheme: SchemePlan  # its shape is the whole tensor's
    fans: FanSpec  # as asked (part of the canonical request)
    zero_rows: tuple[int, ...]  # normalized: sorted, non-negative
    seed: int
    seed_source: SeedSource
    dtype: DType
    writer: Writer
    engine: Engine
    device: str
    algorithm: str = rng.ALGORITHM
    part: Slice | None = None  # never the whole tensor (service.slices.resolve)

    @property
    def full_shape(self) -> Shape:
        return self.scheme.shape

    @property
    def shape(self) -> Shape:
        """The answer's shape: the part's, or the whole tensor's."""
        return self.scheme.shape if self.part is None else self.part.shape

    @cached_property
    def sampling(self) -> Sampling:
        """What the engine draws: the distribution, never the scheme; and the part."""
        whole = sampling(self.scheme, self.seed, self.name, self.dtype, self.zero_rows)
        return whole if self.part is None else replace(whole, part=self.part)

    @property
    def numel(self) -> int:
        return self.sampling.produced

    @property
    def nbytes(self) -> int:
        return self.numel * self.dtype.itemsize

    @property
    def format(self) -> str:
        return self.writer.name

    @property
    def strong(self) -> bool:
        """Bit-reproducible (a strong ETag); QR-based kinds are equal to rounding only."""
        return not isinstance(self.sampling.distribution, dist.STRUCTURED)

    @property
    def plans(self) -> tuple[Plan, ...]:
        return (self,)

    @cached_property
    def header(self) -> bytes:
        """The format's header (npy's, or safetensors' with the metadata), made once."""
        return self.writer.header(TensorInfo(self.name, self.shape, self.dtype, self.metadata()))

    @property
    def content_length(self) -> int:
        return len(self.header) + self.nbytes

    @cached_property
    def etag(self) -> str:
        document: dict[str, object] = {"request": self.canonical(), "algorithm": self.algorithm}
        if self.writer.revision > 1:  # the first revision's tags stay what they always were
            document["header"] = self.writer.revision
        return etag(document, self.strong)

    def canonical(self) -> dict[str, object]:
        """The request with every default resolved: equal requests give equal dicts."""
        return dict(self._canonical)

    @cached_property
    def _canonical(self) -> dict[str, object]:
        p = self.scheme
        out: dict[str, object] = {
            "shape": list(p.shape),
            "scheme": p.scheme,
            "convention": p.convention,
            **p.params,
        }
        for f in fields(self.fans):
            value = getattr(self.fans, f.name)
            if value is not None:
                out[f.name] = list(value) if isinstance(value, tuple) else value
        if self.zero_rows:
            out["zero_rows"] = list(self.zero_rows)
        if self.part is not None:
            out["slice"] = self.part.text
        out |= {"seed": self.seed, "name": self.name, "dtype": self.dtype.name}
        return out | {"format": self.format}

    def metadata(self) -> dict[str, str]:
        """The numbers that define the tensor, as strings (safetensors __metadata__, headers)."""
        return dict(self._metadata)

    @cached_property
    def _metadata(self) -> dict[str, str]:
        p, law = self.scheme, self.scheme.law
        values: dict[str, object] = {
            "scheme": p.scheme,
            "convention": p.convention,
            "kind": law.kind,
            # only fans the values use: the header bytes stay those of every pinned request
            "fan_in": p.fan_in if p.uses_fans else None,
            "fan_out": p.fan_out if p.uses_fans else None,
            "mode": p.mode,
            "gain": p.gain,
            "std": law.stddev,
            "limit": law.limit,
            "low": law.low,
            "high": law.high,
            "mean": law.mean,
            "effective_std": law.effective_std,
            "zero_rows": ",".join(map(str, self.zero_rows)) or None,
            "full_shape": None if self.part is None else ",".join(map(str, self.full_shape)),
            "slice": None if self.part is None else self.part.text,
            "seed": self.seed,
            "algorithm": self.algorithm,
        }
        return {k: _text(v) for k, v in values.items() if v is not None}

    def spans(self, start: int, stop: int, block: int) -> Iterator[bytes | Span]:
        """Byte range [start, stop) of the payload: header bytes, then element blocks."""
        head = len(self.header)
        if start < head:
            yield self.header[start : min(stop, head)]
        yield from data_spans(self, max(start, head) - head, stop - head, block)


def sampling(
    p: SchemePlan, seed: int, name: str, dt: DType, zero_rows: tuple[int, ...] = ()
) -> Sampling:
    """The engine's input for a scheme's plan: its distribution, and the stream of `name`."""
    return Sampling(distribution(p), p.shape, seed, rng.stream_id(name), dt, zero_rows)


def _text(value: object) -> str:
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        return str(int(value))
    return repr(value) if isinstance(value, float) else str(value)


def _rows(spec: TensorSpec) -> tuple[int, ...]:
    """zero_rows normalized like torch's padding_idx: negative counts from the end."""
    if not spec.zero_rows:
        return ()
    n = spec.shape[0] if spec.shape else 0
    if not all(-n <= r < n for r in spec.zero_rows):
        raise ShapeError(
            f"zero_rows {list(spec.zero_rows)} must index axis 0 of shape {list(spec.shape)} "
            f"(-{n} … {n - 1})"
        )
    return tuple(sorted({r % n for r in spec.zero_rows}))


def _check_size(spec: TensorSpec, dt: DType, limits: Limits) -> None:
    count = numel(spec.shape)
    if count > limits.max_elements:
        raise LimitExceeded(
            f"shape {list(spec.shape)} has {count} elements; this service serves at most "
            f"{limits.max_elements} per tensor (WEIGHTGEN_MAX_ELEMENTS)"
        )
    if count * dt.itemsize > limits.max_bytes:
        raise LimitExceeded(
            f"shape {list(spec.shape)} as {dt.name} is {count * dt.itemsize} bytes; this service "
            f"serves at most {limits.max_bytes} bytes per tensor (WEIGHTGEN_MAX_BYTES)"
        )


def _resolve(spec: TensorSpec) -> SchemePlan:
    try:
        scheme = schemes.resolve(spec.scheme, spec.shape, spec.convention, spec.params, spec.fans)
    except ArithmeticError as exc:  # e.g. negative_slope=1e308 squared
        raise InvalidRequest(
            f"the parameters of this request overflow float64 arithmetic ({exc}); "
            "use numbers of a sensible size"
        ) from None
    if (
        scheme.law.kind in ("orthogonal", "delta_orthogonal")
        and numel(spec.shape) > MAX_QR_ELEMENTS
    ):
        raise LimitExceeded(
            f"{scheme.scheme} builds the whole matrix and factors it (QR); shape "
            f"{list(spec.shape)} has {numel(spec.shape)} elements, this service does that for "
            f"at most {MAX_QR_ELEMENTS}"
        )
    if scheme.law.kind == "sparse":
        _check_sparse(spec.shape)
    return scheme


def _check_sparse(shape: Shape) -> None:
    """sparse's bounds: rows, kept thresholds, and the ranking any part costs (docs/decisions)."""
    rows, cols = shape
    for what, size, bound in (
        ("rows", rows, MAX_SPARSE_ROWS),
        ("columns", cols, MAX_SPARSE_COLUMNS),
        ("elements", rows * cols, MAX_SPARSE_ELEMENTS),
    ):
        if size > bound:
            raise LimitExceeded(
                f"sparse ranks every column's mask keys over all of its rows and keeps each "
                f"column's threshold; shape {list(shape)} has {size} {what}, this service does "
                f"that for at most {bound}"
            )


def _check_integral(scheme: SchemePlan, dt: DType) -> None:
    kind = scheme.law.kind
    if dt.integer and not (kind == "constant" and scheme.law.loc.is_integer()):
        raise UnsupportedCombination(
            f"dtype {dt.name} holds only integral constants (zeros, ones, constant); "
            f"received scheme {scheme.scheme!r} of kind {kind}"
        )


def plan(spec: TensorSpec, limits: Limits, engines: Engines) -> Plan:
    """Resolve `spec` or raise the domain error that says what is wrong and what is allowed."""
    if len(spec.shape) > MAX_RANK:
        raise ShapeError(
            f"shape {list(spec.shape)} has rank {len(spec.shape)}; ranks 0 … {MAX_RANK} are served"
        )
    dt = dtype(spec.dtype, spec.format)
    _check_size(spec, dt, limits)
    scheme = _resolve(spec)
    rows = _rows(spec)
    part = resolve(spec.part, spec.shape)
    _check_integral(scheme, dt)
    engine, device = engines.select(spec.device)
    seed, source = draw_seed(spec.seed)
    out = writer(spec.format or dt.default_format)
    return Plan(
        spec.name, scheme, spec.fans, rows, seed, source, dt, out, engine, device, part=part
    )
