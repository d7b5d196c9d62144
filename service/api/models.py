"""Request and response models: validation happens here, once; below, only frozen values."""

from __future__ import annotations

from dataclasses import fields
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from service import schemes
from service.api.urls import canonical_url
from service.dtypes import DTypeName, FormatName
from service.plan import MAX_RANK, MAX_SEED, Device, Plan, TensorSpec
from service.schemes import Convention, Distribution, FanSpec, Mode, Nonlinearity, Params

MAX_DIM = 2**40

Dim = Annotated[int, Field(ge=0, le=MAX_DIM, strict=True)]
Shape = Annotated[
    list[Dim],
    Field(max_length=MAX_RANK, description="dimensions, rank 0 … 8", examples=[[256, 128]]),
]
Seed = Annotated[int, Field(ge=0, le=MAX_SEED, description="0 … 2^64-1; absent: service picks")]
Finite = Annotated[float, Field(allow_inf_nan=False)]
Positive = Annotated[float, Field(gt=0, allow_inf_nan=False)]
Axes = Annotated[list[int], Field(min_length=1, max_length=MAX_RANK)]
Name = Annotated[
    str,
    Field(
        pattern=r"^[A-Za-z0-9_][A-Za-z0-9_.\-]{0,199}$",
        description="tensor name: letters, digits, _ . - (up to 200)",
    ),
]
SchemeName = Annotated[
    str,
    Field(
        description="scheme or alias (GET /v1/schemes lists them)",
        json_schema_extra={"enum": sorted([*schemes.SCHEMES, *schemes.ALIASES])},
    ),
]


class TensorRequest(BaseModel):
    """One tensor: its shape, how to initialize it, and how to hand it out."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    shape: Shape
    scheme: SchemeName
    convention: Convention = "keras"
    factor: Positive | None = None
    mode: Mode | None = None
    distribution: Distribution | None = None
    gain: Positive | None = None
    nonlinearity: Nonlinearity | None = None
    negative_slope: Finite | None = None
    mean: Finite | None = None
    std: Annotated[float, Field(ge=0, allow_inf_nan=False)] | None = None
    low: Finite | None = None
    high: Finite | None = None
    a: Finite | None = None
    b: Finite | None = None
    value: Finite | None = None
    groups: Annotated[int, Field(ge=1, le=MAX_DIM)] | None = None
    column_axis: Annotated[int, Field(ge=-MAX_RANK, lt=MAX_RANK)] | None = None
    fan_in: Positive | None = None
    fan_out: Positive | None = None
    in_axes: Axes | None = None
    out_axes: Axes | None = None
    batch_axes: Axes | None = None
    zero_rows: Annotated[list[int], Field(max_length=1024)] | None = Field(
        None, description="rows along axis 0 set to zero (torch Embedding padding_idx)"
    )
    seed: Seed | None = None
    name: Name = "weight"
    dtype: DTypeName = "float32"
    device: Device = "auto"
    format: FormatName | None = None

    def to_spec(self) -> TensorSpec:
        def axes(value: list[int] | None) -> tuple[int, ...] | None:
            return None if value is None else tuple(value)

        params = Params(**{f.name: getattr(self, f.name) for f in fields(Params)})
        return TensorSpec(
            shape=tuple(self.shape),
            scheme=self.scheme,
            convention=self.convention,
            params=params,
            fans=FanSpec(
                self.fan_in,
                self.fan_out,
                axes(self.in_axes),
                axes(self.out_axes),
                axes(self.batch_axes),
            ),
            seed=self.seed,
            name=self.name,
            dtype=self.dtype,
            device=self.device,
            format=self.format,
            zero_rows=tuple(self.zero_rows or ()),
        )


Number = int | float


def _num(x: float | None) -> Number | None:
    """288.0 -> 288 in JSON; other floats unchanged."""
    if x is not None and x.is_integer() and abs(x) < 2**53:
        return int(x)
    return x


class PlanOut(BaseModel):
    """The numbers that define the tensor's distribution."""

    scheme: str
    convention: Convention
    kind: str
    rule: str = Field(description="the framework call this reproduces")
    formula: str = Field(description="the formula with this request's numbers")
    fan_in: Number | None
    fan_out: Number | None
    mode: Mode | None
    n: Number | None = Field(description="the fan the scale is divided by, after any clamp")
    scale: Number | None = Field(description="variance scale (gain²)")
    gain: Number | None
    mean: Number
    stddev: Number | None = Field(description="σ parameter, before any truncation")
    low: Number | None
    high: Number | None
    limit: Number | None = Field(description="uniform bound or absolute truncation bound")
    effective_std: Number = Field(description="std of the values, truncation included")
    alpha: Number | None = Field(description="lower truncation bound in σ")
    beta: Number | None = Field(description="upper truncation bound in σ")
    kept_axis: int | None
    notes: list[str]

    @classmethod
    def of(cls, p: schemes.SchemePlan) -> PlanOut:
        law = p.law
        return cls(
            scheme=p.scheme,
            convention=p.convention,
            kind=law.kind,
            rule=p.rule,
            formula=p.formula,
            fan_in=_num(p.fan_in),
            fan_out=_num(p.fan_out),
            mode=p.mode,
            n=_num(p.n),
            scale=_num(p.scale),
            gain=_num(p.gain),
            mean=_num(law.mean) or 0,
            stddev=_num(law.stddev),
            low=_num(law.low),
            high=_num(law.high),
            limit=_num(law.limit),
            effective_std=_num(law.effective_std) or 0,
            alpha=_num(law.alpha),
            beta=_num(law.beta),
            kept_axis=p.kept_axis,
            notes=list(p.notes),
        )


class DescribeResponse(BaseModel):
    request: dict[str, Any] = Field(description="the request with every default resolved")
    plan: PlanOut
    numel: int
    nbytes: int = Field(description="bytes of tensor data, without any file header")
    seed: int
    seed_source: str = Field(description="request, or service when the service picked it")
    engine: str
    device: str
    algorithm: str = Field(description="the generator's version: same value, same bytes")
    format: str
    media_type: str
    content_length: int = Field(description="bytes of the whole answer, header included")
    etag: str
    url: str = Field(description="the fully specified GET URL of this tensor")

    @classmethod
    def of(cls, p: Plan) -> DescribeResponse:
        return cls(
            request=p.canonical(),
            plan=PlanOut.of(p.scheme),
            numel=p.numel,
            nbytes=p.nbytes,
            seed=p.seed,
            seed_source=p.seed_source,
            engine=p.engine.name,
            device=p.device,
            algorithm=p.algorithm,
            format=p.writer.name,
            media_type=p.writer.media_type,
            content_length=p.content_length,
            etag=p.etag,
            url=canonical_url(p),
        )
