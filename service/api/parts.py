"""The edge of parts of tensors (docs/shards.md): `slice` and `shard` on a tensor or a bundle's
member (a bundle's own `shard` and `shards` are BundleRequest's). Checked here for form; against
a shape by `service.slices`, once the plan knows the shape."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from service import slices
from service.errors import ShapeError
from service.shapes import MAX_DIM, MAX_RANK

SHARD_PATTERN = r"^-?[0-9]{1,19}:[0-9]{1,19}:[0-9]{1,19}$"  # a query's shard=dim:index:count


def _slice(text: str) -> str:
    try:
        slices.parse(text)
    except ShapeError as exc:
        raise ValueError(exc.detail) from None
    return text


SliceText = Annotated[
    str, Field(max_length=400, examples=["0:4096,2048:4096"]), AfterValidator(_slice)
]


class ShardRequest(BaseModel):
    """torch.chunk(full, count, dim)[index]: a shorthand for that slice (docs/shards.md)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    dim: int = Field(
        ge=-MAX_RANK, le=MAX_RANK - 1, description="the axis cut; negative counts from the last"
    )
    index: int = Field(ge=0, le=MAX_DIM, description="which piece, from 0")
    count: int = Field(ge=1, le=MAX_DIM, description="how many pieces torch.chunk is asked for")

    def to_shard(self) -> slices.Shard:
        return slices.Shard(self.dim, self.index, self.count)


class PartFields(BaseModel):
    """`slice` or `shard` (not both) of a tensor or of a bundle's member."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    slice: SliceText | None = Field(
        None,
        description="only this part of the tensor: start:stop per leading axis, as numpy's "
        "basic slicing without negatives or steps, either end omittable, the other axes whole "
        "(0:4096,2048:4096; :4; 2:). The law and numbers stay the whole tensor's",
    )
    shard: ShardRequest | None = Field(
        None, description="piece `index` of torch.chunk(full, count, dim): a slice's shorthand"
    )

    @model_validator(mode="after")
    def _one_part(self) -> PartFields:
        if self.slice is not None and self.shard is not None:
            raise ValueError("give slice or shard, not both (a shard is a slice's shorthand)")
        return self

    def part(self) -> slices.Part | None:
        if self.shard is not None:
            return self.shard.to_shard()
        return None if self.slice is None else slices.parse(self.slice)
