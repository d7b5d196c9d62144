"""A request, resolved: the scheme's numbers, the engine, the format header, the exact length
and the ETag. No HTTP, no pydantic.

Everything that can fail for a request fails in `plan`, before any byte is produced.
"""

from __future__ import annotations

import hashlib
import json
import math
import secrets
from collections.abc import Iterator
from dataclasses import dataclass, field, fields, replace
from functools import cached_property
from typing import Literal

from service import rng, schemes
from service.dtypes import DType, DTypeName, FormatName, dtype
from service.engines import Engine, Engines, Sampling
from service.errors import InvalidRequest, LimitExceeded, ShapeError, UnsupportedCombination
from service.formats import TensorInfo, Writer, writer
from service.schemes import Convention, FanSpec, Params, SchemePlan, Shape

Device = Literal["auto", "cpu", "cuda"]
MAX_RANK = 8
MAX_SEED = 2**64 - 1
WEAK_KINDS = frozenset({"orthogonal", "delta_orthogonal"})  # LAPACK: equal to rounding only
MAX_QR_ELEMENTS = 1 << 22  # orthogonal kinds: the whole float64 matrix in memory, then QR


@dataclass(frozen=True)
class TensorSpec:
    """What a client asked for, validated for types at the edge."""

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


@dataclass(frozen=True)
class Limits:
    max_elements: int
    max_bytes: int


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
    spec: TensorSpec  # seed and format filled in
    scheme: SchemePlan
    dtype: DType
    numel: int
    nbytes: int
    seed_source: Literal["request", "service"]
    engine: Engine
    device: str
    writer: Writer
    algorithm: str = rng.ALGORITHM

    @cached_property
    def header(self) -> bytes:
        """The format's header (npy's, or safetensors' with the metadata), made once."""
        info = TensorInfo(self.spec.name, self.spec.shape, self.dtype, self.metadata())
        return self.writer.header(info)

    @property
    def seed(self) -> int:
        if self.spec.seed is None:  # plan() always fills it
            raise ValueError("a Plan without a seed")
        return self.spec.seed

    @property
    def content_length(self) -> int:
        return len(self.header) + self.nbytes

    @property
    def format(self) -> str:
        return self.writer.name

    @property
    def strong(self) -> bool:
        return self.scheme.law.kind not in WEAK_KINDS

    @property
    def light(self) -> bool:
        """Cheap to generate in any slice (orthogonal kinds need a whole QR first)."""
        return self.strong

    @property
    def tensors(self) -> int:
        return 1

    @cached_property
    def etag(self) -> str:
        """A hash of the canonical request and the algorithm: equal requests, equal tags."""
        text = json.dumps(
            {"request": self.canonical(), "algorithm": self.algorithm}, sort_keys=True
        )
        tag = '"' + hashlib.sha256(text.encode()).hexdigest()[:32] + '"'
        return tag if self.strong else "W/" + tag

    def sampling(self) -> Sampling:
        return Sampling(self.scheme, self.seed, self.spec.name, self.dtype, self.spec.zero_rows)

    def canonical(self) -> dict[str, object]:
        """The request with every default resolved: equal requests give equal dicts."""
        return dict(self._canonical)

    @cached_property
    def _canonical(self) -> dict[str, object]:
        spec, fans = self.spec, self.spec.fans
        out: dict[str, object] = {
            "shape": list(spec.shape),
            "scheme": self.scheme.scheme,
            "convention": spec.convention,
            **self.scheme.params,
        }
        for f in fields(fans):
            value = getattr(fans, f.name)
            if value is not None:
                out[f.name] = list(value) if isinstance(value, tuple) else value
        if spec.zero_rows:
            out["zero_rows"] = list(spec.zero_rows)
        out |= {"seed": self.seed, "name": spec.name, "dtype": spec.dtype, "format": spec.format}
        return out

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
            "fan_in": p.fan_in,
            "fan_out": p.fan_out,
            "mode": p.mode,
            "gain": p.gain,
            "std": law.stddev,
            "limit": law.limit,
            "low": law.low,
            "high": law.high,
            "mean": law.mean,
            "effective_std": law.effective_std,
            "zero_rows": ",".join(map(str, self.spec.zero_rows)) or None,
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


def default_format(dt: DType) -> FormatName:
    """npy where numpy has the dtype, safetensors otherwise."""
    return "npy" if dt.npy else "safetensors"


def plan(spec: TensorSpec, limits: Limits, engines: Engines) -> Plan:
    """Resolve `spec` or raise the domain error that says what is wrong and what is allowed."""
    if len(spec.shape) > MAX_RANK:
        raise ShapeError(
            f"shape {list(spec.shape)} has rank {len(spec.shape)}; ranks 0 … {MAX_RANK} are served"
        )
    dt = dtype(spec.dtype, spec.format)
    numel = math.prod(spec.shape)
    if numel > limits.max_elements:
        raise LimitExceeded(
            f"shape {list(spec.shape)} has {numel} elements; this service serves at most "
            f"{limits.max_elements} per tensor (WEIGHTGEN_MAX_ELEMENTS)"
        )
    nbytes = numel * dt.itemsize
    if nbytes > limits.max_bytes:
        raise LimitExceeded(
            f"shape {list(spec.shape)} as {dt.name} is {nbytes} bytes; this service serves at "
            f"most {limits.max_bytes} bytes per tensor (WEIGHTGEN_MAX_BYTES)"
        )
    try:
        scheme = schemes.resolve(spec.scheme, spec.shape, spec.convention, spec.params, spec.fans)
    except ArithmeticError as exc:  # e.g. negative_slope=1e308 squared
        raise InvalidRequest(
            f"the parameters of this request overflow float64 arithmetic ({exc}); "
            "use numbers of a sensible size"
        ) from None
    if scheme.law.kind in WEAK_KINDS and numel > MAX_QR_ELEMENTS:
        raise LimitExceeded(
            f"{scheme.scheme} builds the whole matrix and factors it (QR); shape "
            f"{list(spec.shape)} has {numel} elements, this service does that for at most "
            f"{MAX_QR_ELEMENTS}"
        )
    rows = _rows(spec)
    if dt.integer and not (scheme.law.kind == "constant" and scheme.law.loc.is_integer()):
        raise UnsupportedCombination(
            f"dtype {dt.name} holds only integral constants (zeros, ones, constant); "
            f"received scheme {scheme.scheme!r} of kind {scheme.law.kind}"
        )
    engine, device = engines.select(spec.device)
    source: Literal["request", "service"] = "request" if spec.seed is not None else "service"
    seed = spec.seed if spec.seed is not None else secrets.randbits(64)
    fmt: FormatName = spec.format or default_format(dt)
    spec = replace(spec, zero_rows=rows, seed=seed, format=fmt)
    return Plan(spec, scheme, dt, numel, nbytes, source, engine, device, writer(fmt))
