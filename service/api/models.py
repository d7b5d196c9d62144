"""Request and response models: validation happens here, once; below, only frozen values."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    create_model,
    model_serializer,
    model_validator,
)

from service import recipes, schemes
from service.api.fields import Name, SchemeName, Seed, Shape, model_fields, values
from service.api.layers import Layer
from service.api.parts import PartFields, ShardRequest
from service.api.urls import canonical_url
from service.bundle import MAX_TENSORS, BundlePlan, BundleSpec
from service.dtypes import DTypeName, FormatName
from service.errors import LimitExceeded, SchemeError
from service.plan import Device, Plan, TensorSpec
from service.presets import Member
from service.schemes import Convention, FanSpec, Mode, Params
from service.slices import Shard


class SchemeFields(BaseModel):
    """How to initialize a tensor: the scheme, and (in InitFields) its parameters and explicit
    fans or axes, each field read from its declaration in service.schemes (Params, FanSpec)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    scheme: SchemeName

    def params(self) -> Params:
        return Params(**values(self, Params))

    def fan_spec(self) -> FanSpec:
        return FanSpec(**values(self, FanSpec))


if TYPE_CHECKING:  # mypy sees the base; the fields are made from the declarations
    InitFields = SchemeFields
else:
    InitFields = create_model(
        "InitFields",
        __base__=SchemeFields,
        __doc__=SchemeFields.__doc__,
        **model_fields(Params),
        **model_fields(FanSpec),
    )


class TensorFields(InitFields, PartFields):
    """A tensor's shape, how to initialize it, and the part of it wanted (shared by tensors and
    bundle members)."""

    shape: Shape
    zero_rows: Annotated[list[int], Field(max_length=1024)] | None = Field(
        None, description="rows along axis 0 set to zero (torch Embedding padding_idx)"
    )


class TensorRequest(TensorFields):
    """One tensor: its shape, how to initialize it, and how to hand it out."""

    convention: Convention = Field(
        "keras", description="whose fan rules and defaults (docs/schemes.md)"
    )
    seed: Seed | None = Field(None, description="0 … 2^64-1; absent: the service draws one")
    name: Name = "weight"
    dtype: DTypeName = Field("float32", description="element type of the answer")
    device: Device = Field("auto", description="where it is generated: cpu, cuda or auto")
    format: FormatName | None = Field(
        None, description="npy, safetensors or raw; absent: by Accept, else the dtype's default"
    )

    def to_spec(self) -> TensorSpec:
        return TensorSpec(
            shape=tuple(self.shape),
            scheme=self.scheme,
            convention=self.convention,
            params=self.params(),
            fans=self.fan_spec(),
            seed=self.seed,
            name=self.name,
            dtype=self.dtype,
            device=self.device,
            format=self.format,
            zero_rows=tuple(self.zero_rows or ()),
            part=self.part(),
        )


class BundleTensor(TensorFields):
    """A named member of a bundle; convention and dtype default to the bundle's."""

    name: Name
    convention: Convention | None = None
    dtype: DTypeName | None = None

    def to_member(self, convention: Convention) -> Member:
        return Member(
            self.name,
            tuple(self.shape),
            self.scheme,
            self.convention or convention,
            self.params(),
            self.fan_spec(),
            tuple(self.zero_rows or ()),
            self.dtype,
            part=self.part(),
        )


class BundleRequest(BaseModel):
    """Many named tensors (explicit, expanded from layers, or a whole model from a recipe and its
    config) as one safetensors file; all of them, or a shard of each (docs/shards.md)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    seed: Seed | None = None
    dtype: DTypeName = Field(
        "float32", description="the tensors' dtype; when given, it wins over a recipe config's"
    )
    convention: Convention = "keras"
    device: Device = "auto"
    name: Name = Field("bundle", description="file name of the answer")
    tensors: Annotated[list[BundleTensor], Field(max_length=MAX_TENSORS)] = []
    layers: Annotated[list[Layer], Field(max_length=MAX_TENSORS)] = []
    recipe: str | None = Field(
        None,
        description="a model recipe (GET /v1/recipes): the model's whole state dict, e.g. "
        f"{', '.join(recipes.RECIPES)}",
    )
    config: dict[str, Any] | None = Field(
        None,
        description="the recipe's architecture config (a config.json); fields the recipe does "
        "not read are listed in describe's ignored_config",
    )
    select: Annotated[list[Name], Field(min_length=1, max_length=MAX_TENSORS)] | None = Field(
        None,
        description="only these members, by name, in the bundle's order (a checkpoint's shard); "
        "a tied member needs its source selected too",
    )

    shard: ShardRequest | None = Field(
        None, description="every member: torch.chunk(member, count, dim)[index] (FSDP's dim 0)"
    )
    shards: dict[Name, ShardRequest] | None = Field(
        None,
        description="by member name: {name: {dim, index, count}}; the members not named are "
        "whole (a tensor-parallel plan: column-parallel weights dim 0, row-parallel dim 1)",
    )

    @model_validator(mode="after")
    def _one_plan(self) -> BundleRequest:
        if self.shard is not None and self.shards is not None:
            raise ValueError("give shard (every member) or shards (by name), not both")
        return self

    def sharding(self) -> Shard | dict[str, Shard] | None:
        if self.shards is not None:
            return {name: s.to_shard() for name, s in self.shards.items()}
        return None if self.shard is None else self.shard.to_shard()

    @model_validator(mode="after")
    def _recipe_config(self) -> BundleRequest:
        """A recipe's config checked against its declared fields, for messages naming them."""
        if self.config is not None and self.recipe is None:
            raise ValueError("config needs a recipe (GET /v1/recipes lists them)")
        if self.recipe is not None:
            self.configured()
        return self

    @model_serializer(mode="wrap")
    def _keep_dtype(self, handler: SerializerFunctionWrapHandler) -> Any:
        """A recipe bundle's URL keeps a dtype given as the default: it wins over the config's."""
        out = handler(self)
        if self.recipe is not None and "dtype" in self.model_fields_set and isinstance(out, dict):
            out.setdefault("dtype", self.dtype)
        return out

    def configured(self) -> recipes.Configured[Any] | None:
        if self.recipe is None:
            return None
        try:
            return recipes.lookup(self.recipe).configure(self.config or {})
        except SchemeError as exc:
            raise ValueError(exc.detail) from None

    def to_spec(self) -> BundleSpec:
        """The members, counted before any layer or recipe is expanded (each may name
        thousands)."""
        configured = self.configured()
        recipe = None if self.recipe is None else recipes.lookup(self.recipe)
        from_recipe = 0
        if recipe is not None and configured is not None:
            from_recipe = recipe.count(configured.config)
        total = len(self.tensors) + sum(layer.count() for layer in self.layers) + from_recipe
        if total > MAX_TENSORS:
            what = "tensors and layers" if recipe is None else "tensors, layers and recipe"
            raise LimitExceeded(
                f"a bundle holds at most {MAX_TENSORS} tensors; the {what} of this request name "
                f"{total}"
            )
        members = [t.to_member(self.convention) for t in self.tensors]
        for layer in self.layers:
            members += layer.to_members()
        select = None if self.select is None else tuple(self.select)
        shard = self.sharding()
        if recipe is None or configured is None:
            return BundleSpec(
                tuple(members), self.seed, self.dtype, self.device, (), None, select, shard
            )
        members += recipe.expand(configured.config)
        given = "dtype" in self.model_fields_set or configured.dtype is None
        dtype = self.dtype if given else configured.dtype or self.dtype
        ignored, convert = configured.ignored, recipe.hf_config
        hf = None if convert is None else convert(configured.config)
        return BundleSpec(tuple(members), self.seed, dtype, self.device, ignored, hf, select, shard)


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
    fan_in: Number | None = Field(
        description="the tensor's fan-in by the convention's rule (or the explicit fan_in), "
        "whether or not the scheme uses it; null where the framework itself raises"
    )
    fan_out: Number | None = Field(description="the fan-out, likewise")
    mode: Mode | None = Field(description="the fan the scale divides by; null: no fan is used")
    n: Number | None = Field(description="the fan the scale is divided by, after any clamp")
    scale: Number | None = Field(description="variance scale (gain²)")
    gain: Number | None
    mean: Number
    loc: Number = Field(description="location of the normal (or the constant) before truncation")
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
            loc=_num(law.loc) or 0,
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
    shape: list[int] = Field(description="the answer's shape: the slice's, when one is asked")
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
    repr_digest: str | None = Field(
        None,
        description="Repr-Digest of the GET answer (RFC 9530, sha-256) when the service knows it "
        "(once generated, or asked with Want-Repr-Digest); null otherwise",
    )

    @classmethod
    def of(cls, p: Plan, repr_digest: str | None = None) -> DescribeResponse:
        return cls(
            request=p.canonical(),
            plan=PlanOut.of(p.scheme),
            shape=list(p.shape),
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
            repr_digest=repr_digest,
        )


class BundleMemberOut(BaseModel):
    name: str
    dtype: str
    shape: list[int]
    data_offsets: list[int] = Field(description="[begin, end) in the data buffer, as in the header")
    request: dict[str, Any] = Field(description="the single-tensor request giving these bytes")
    plan: PlanOut
    tied_to: str | None = Field(
        None, description="the member whose bytes these are (a tied weight), if any"
    )


class BundleDescribeResponse(BaseModel):
    seed: int
    seed_source: str
    algorithm: str
    header_bytes: int = Field(description="8-byte length + JSON header; data starts here")
    content_length: int
    etag: str
    url: str = Field(description="GET URL of this bundle (Range, HEAD, caches)")
    repr_digest: str | None = Field(
        None, description="Repr-Digest of the GET answer when known (RFC 9530, sha-256)"
    )
    tensors: list[BundleMemberOut]
    ignored_config: list[str] = Field(
        [], description="fields of the recipe's config that the recipe does not read"
    )
    hf_config: dict[str, Any] | None = Field(
        None, description="the config.json a checkpoint carries when not the given config"
    )

    @classmethod
    def of(cls, b: BundlePlan, url: str, repr_digest: str | None = None) -> BundleDescribeResponse:
        members = []
        for e in b.entries:
            request = {k: v for k, v in e.plan.canonical().items() if k != "format"}
            members.append(
                BundleMemberOut(
                    name=e.label,
                    dtype=e.plan.dtype.name,
                    shape=list(e.plan.shape),
                    data_offsets=[e.offset, e.offset + e.plan.nbytes],
                    request=request,
                    plan=PlanOut.of(e.plan.scheme),
                    tied_to=e.tied_to,
                )
            )
        return cls(
            seed=b.seed,
            seed_source=b.seed_source,
            algorithm=b.algorithm,
            header_bytes=len(b.header),
            content_length=b.content_length,
            etag=b.etag,
            url=url,
            repr_digest=repr_digest,
            tensors=members,
            ignored_config=list(b.ignored_config),
            hf_config=None if b.hf_config is None else dict(b.hf_config),
        )
