"""Bundle layers at the edge: one pydantic model per preset, made from its declared arguments
(service.presets), so the OpenAPI schema lists every preset's arguments with their bounds.

A layer is first checked against its preset's declarations by `service.arguments`, for messages
that name the preset and the argument (`torch.Linear needs out_features`); the model, made from
the same declarations, then validates it again and cannot disagree.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Annotated, Any, Literal, Union, cast

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ModelWrapValidatorHandler,
    PrivateAttr,
    SerializerFunctionWrapHandler,
    create_model,
    model_serializer,
    model_validator,
)

from service import presets
from service.api.fields import Name, model_fields
from service.errors import SchemeError
from service.presets import Member, Preset

IDENTITY = ("preset", "name")  # a layer's fields that are not its preset's arguments


class LayerFields(BaseModel):
    """A framework layer, expanded into its tensors: `{"preset": "torch.Linear", "name":
    "mlp.fc1", "in_features": 768, "out_features": 3072}` (GET /v1/presets lists them)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    preset: str
    name: Name
    _given: dict[str, Any] | None = PrivateAttr(None)

    @model_validator(mode="wrap")
    @classmethod
    def _keep_given(cls, value: Any, handler: ModelWrapValidatorHandler[Any]) -> Any:
        model = handler(value)
        if isinstance(value, dict):
            model._given = dict(value)
        return model

    @model_serializer(mode="wrap")
    def _as_given(self, handler: SerializerFunctionWrapHandler) -> Any:
        """A layer is written back as it was given (a bundle's GET URL carries it): arguments
        equal to their defaults stay, `1` stays `1`, as before layers had models."""
        return dict(self._given) if self._given is not None else handler(self)

    def arguments(self) -> dict[str, object]:
        return {k: getattr(self, k) for k in type(self).model_fields if k not in IDENTITY}

    def count(self) -> int:
        """How many tensors the layer names, without expanding it."""
        found = presets.lookup(self.preset)
        return found.count(found.arguments(self.arguments()))

    def to_members(self) -> list[Member]:
        return presets.lookup(self.preset).members(self.name, self.arguments())


def _model(p: Preset[Any]) -> type[LayerFields]:
    name = "".join(part.capitalize() for part in re.split(r"[^A-Za-z0-9]", p.name)) + "Layer"
    tag: Any = cast(Any, Literal)[p.name]  # the discriminator's one value
    return create_model(
        name,
        __base__=LayerFields,
        __doc__=f"{p.name}: {p.summary}",
        preset=(tag, ...),
        **model_fields(p.args, strict=True),
    )


def _checked(value: object) -> object:
    """The preset's own checks first, for messages that name it and the argument."""
    if isinstance(value, dict) and isinstance(value.get("preset"), str):
        try:  # (without a preset name, pydantic's discriminator says what is missing)
            found = presets.lookup(value["preset"])
            found.arguments({k: v for k, v in value.items() if k not in IDENTITY})
        except SchemeError as exc:
            raise ValueError(exc.detail) from None
        except RecursionError:  # a value nested deeper than the checks can walk
            raise ValueError(f"{value['preset']}: an argument is nested too deeply") from None
    return value


MODELS = tuple(_model(p) for p in presets.PRESETS.values())
if TYPE_CHECKING:  # mypy sees the base; pydantic the union of every preset's model
    Layer = LayerFields
else:
    Layer = Annotated[
        Union[MODELS],  # noqa: UP007 - a tuple of models, made at import
        Field(discriminator="preset"),
        BeforeValidator(_checked),
    ]
