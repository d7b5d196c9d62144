"""A request, resolved: the scheme's numbers, sizes and limits. No HTTP, no pydantic.

Everything that can fail for a request fails in `plan`, before any byte is produced.
"""

from __future__ import annotations

import math
import secrets
from dataclasses import dataclass, field, fields, replace
from typing import Literal

from service import rng, schemes
from service.dtypes import DType, DTypeName, FormatName, dtype
from service.engines import Engine, Engines, Sampling
from service.errors import LimitExceeded, ShapeError
from service.schemes import Convention, FanSpec, Params, SchemePlan, Shape

Device = Literal["auto", "cpu", "cuda"]
MAX_RANK = 8
MAX_SEED = 2**64 - 1


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


@dataclass(frozen=True)
class Limits:
    max_elements: int
    max_bytes: int


@dataclass(frozen=True)
class Plan:
    spec: TensorSpec  # with the seed filled in
    scheme: SchemePlan
    dtype: DType
    numel: int
    nbytes: int
    seed_source: Literal["request", "service"]
    engine: Engine
    device: str
    algorithm: str = rng.ALGORITHM

    @property
    def seed(self) -> int:
        if self.spec.seed is None:  # plan() always fills it
            raise ValueError("a Plan without a seed")
        return self.spec.seed

    def sampling(self) -> Sampling:
        return Sampling(self.scheme, self.seed, self.spec.name, self.dtype)

    def canonical(self) -> dict[str, object]:
        """The request with every default resolved: equal requests give equal dicts."""
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
        out |= {"seed": self.seed, "name": spec.name, "dtype": spec.dtype}
        if spec.format is not None:
            out["format"] = spec.format
        return out


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
    scheme = schemes.resolve(spec.scheme, spec.shape, spec.convention, spec.params, spec.fans)
    engine, device = engines.select(spec.device)
    source: Literal["request", "service"] = "request"
    if spec.seed is None:
        spec = replace(spec, seed=secrets.randbits(64))
        source = "service"
    return Plan(spec, scheme, dt, numel, nbytes, source, engine, device)
