"""Request and response models of POST /v1/analyze: a deep MLP initialized by one scheme."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, Field

from service.analyze import Activation, AnalyzeSpec
from service.api.fields import Seed
from service.api.models import InitFields
from service.schemes import Convention


class AnalyzeRequest(InitFields):
    """A deep bias-free MLP initialized with one scheme: what happens to the signal."""

    convention: Convention = "keras"
    widths: Annotated[
        list[Annotated[int, Field(ge=1, le=8192)]],
        Field(min_length=2, max_length=201, description="layer widths, input first"),
    ]
    activation: Activation = "relu"
    batch: Annotated[int, Field(ge=2, le=4096)] = 256
    seed: Seed = 0

    def to_spec(self) -> AnalyzeSpec:
        return AnalyzeSpec(
            tuple(self.widths),
            self.activation,
            self.scheme,
            self.convention,
            self.params(),
            self.fan_spec(),
            self.batch,
            self.seed,
        )


class LayerStats(BaseModel):
    layer: int
    fan_in: float | None
    fan_out: float | None
    weight_std: float
    activation_std: float
    gradient_std: float


class AnalyzeResponse(BaseModel):
    input_std: float
    layers: list[LayerStats]
