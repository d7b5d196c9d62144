"""Keras 3's EinsumDense (`keras/src/layers/core/einsum_dense.py`): the kernel's and bias' shapes
read from the equation, the input shape and the output shape as `_analyze_einsum_string` and
`_analyze_split_string` read them in `build`, and the kernel drawn glorot_uniform with the
`input_axes`/`output_axes` that `build` hands a VarianceScaling initializer (Keras >= 3.15:
`compute_fans` then takes plain products of those axes); the bias zeros.

Equations take one of Keras' three forms: `ab,bc->ac`, `...ab,bc->...ac` (left elided) or
`ab...,bc->ac...` (right elided). Keras reads each with `re.match`, which ignores trailing
characters; here the equation must be exactly one of the forms. Keras lets `output_shape` hold
None for an axis the input fixes; here every axis is given (a shared axis must equal the
input's, as Keras checks). An input whose rank does not fit the equation, which Keras builds
but could not call, is refused.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from service.arguments import INFERRED, arg
from service.errors import ShapeError
from service.presets.base import Member, Preset, constant
from service.schemes import FanSpec
from service.shapes import MAX_DIM, MAX_RANK

_LETTERS = "[a-zA-Z]"
FORMS = (  # (pattern, left elided): Keras' three forms, "..." written as "0"
    (re.compile(f"({_LETTERS}+),({_LETTERS}+)->({_LETTERS}+)"), False),
    (re.compile(f"0({_LETTERS}+),({_LETTERS}+)->0({_LETTERS}+)"), True),
    (re.compile(f"({_LETTERS}{{2,}})0,({_LETTERS}+)->({_LETTERS}+)0"), False),
)


@dataclass(frozen=True)
class EinsumArgs:
    equation: str = arg(
        "the einsum equation: ab,bc->ac, ...ab,bc->...ac or ab...,bc->ac...",
        pattern=r"^[a-zA-Z.]+,[a-zA-Z]+->[a-zA-Z.]+$",
    )
    input_shape: tuple[int, ...] = arg(
        "shape of the layer's input, batch axis first (the shape build receives)",
        ge=0,
        le=MAX_DIM,
        min_items=1,
        max_items=MAX_RANK,
        framework=INFERRED,
    )
    output_shape: int | tuple[int, ...] = arg(
        "shape of the output without the batch axis; every axis given (Keras allows None)",
        ge=0,
        le=MAX_DIM,
        min_items=0,
        max_items=MAX_RANK,
    )
    bias_axes: str | None = arg(
        "output axes (letters of the output spec) that get a bias; null: no bias",
        None,
        pattern=f"^{_LETTERS}+$",
    )


@dataclass(frozen=True)
class _Specs:
    """The equation's three specs and where the ellipsis is."""

    inputs: str
    weights: str
    outputs: str
    left: bool
    elided: bool


def _specs(equation: str) -> _Specs:
    text = equation.replace("...", "0")
    for form, left in FORMS:
        if (m := form.fullmatch(text)) is not None:
            return _Specs(m[1], m[2], m[3], left, "0" in text)
    raise ShapeError(
        f"keras.EinsumDense equation {equation!r} must have the form ab,bc->ac, "
        "...ab,bc->...ac or ab...,bc->ac... (letters only, one ellipsis on both sides)"
    )


def _full_output(s: _Specs, inputs: tuple[int, ...], partial: tuple[int, ...]) -> list[int]:
    """The output shape as Keras completes it: the batch axis first, then the elided axes
    (on the left inserted one by one at position 1, so in reverse order, as Keras does)."""
    elided = len(inputs) - len(s.inputs)
    if elided < 0 or (elided > 0 and not s.elided):  # an ellipsis may stand for no axis
        raise ShapeError(
            f"keras.EinsumDense input_shape {list(inputs)} has rank {len(inputs)}; the equation's "
            f"input spec {s.inputs!r} needs rank {len(s.inputs)}"
            + (" or more (its ellipsis)" if s.elided else "")
        )
    out = [inputs[0], *partial]
    if elided and s.left:
        for i in range(1, elided):
            out.insert(1, inputs[i])
    elif elided:
        out += inputs[len(inputs) - elided :]
    return out


def _maps(s: _Specs, inputs: tuple[int, ...]) -> tuple[dict[str, int], dict[str, int]]:
    """Where each letter of the input and output specs sits (Keras' input/output_dim_map)."""
    elided = len(inputs) - len(s.inputs)
    if s.left:
        return (
            {d: i + elided - len(inputs) for i, d in enumerate(s.inputs)},
            {d: i + elided for i, d in enumerate(s.outputs)},
        )
    return {d: i for i, d in enumerate(s.inputs)}, {d: i for i, d in enumerate(s.outputs)}


def _check_output(s: _Specs, inputs: tuple[int, ...], out: list[int]) -> None:
    in_map, out_map = _maps(s, inputs)
    if len(out) <= max(out_map.values(), default=-1):
        raise ShapeError(
            f"keras.EinsumDense output_shape {out[1:]} (after the batch axis) is too short for "
            f"the output spec {s.outputs!r}"
        )
    for d in s.inputs:
        if d in out_map and out[out_map[d]] != inputs[in_map[d]]:
            raise ShapeError(
                f"keras.EinsumDense input and output shapes differ at the shared axis {d!r}: "
                f"input {inputs[in_map[d]]}, output {out[out_map[d]]}"
            )
    for d in s.outputs:
        if d not in s.inputs and d not in s.weights:
            raise ShapeError(f"keras.EinsumDense output axis {d!r} is in neither input nor weight")


def _kernel(s: _Specs, inputs: tuple[int, ...], out: list[int]) -> tuple[list[int], FanSpec]:
    """The kernel's shape, and its input and output axes (the fans glorot_uniform takes)."""
    in_map, out_map = _maps(s, inputs)
    shape, in_axes, out_axes = [], [], []
    for i, d in enumerate(s.weights):
        if d in out_map:
            shape.append(out[out_map[d]])
            out_axes.append(i)
        elif d in in_map:
            shape.append(inputs[in_map[d]])
            in_axes.append(i)
        else:
            raise ShapeError(
                f"keras.EinsumDense weight axis {d!r} is in neither the input spec {s.inputs!r} "
                f"nor the output spec {s.outputs!r}"
            )
    return shape, FanSpec(in_axes=tuple(in_axes), out_axes=tuple(out_axes))


def _bias(s: _Specs, axes: str, inputs: tuple[int, ...], out: list[int]) -> tuple[int, ...]:
    """The bias' shape: the output axes from the first biased one on, 1 where not biased (and
    1 for each right-elided axis)."""
    for d in axes:
        if d not in s.outputs:
            raise ShapeError(
                f"keras.EinsumDense bias axis {d!r} is not in the output spec {s.outputs!r}"
            )
    elided = len(inputs) - len(s.inputs)
    size = {d: out[i + (elided if s.left else 0)] for i, d in enumerate(s.outputs)}
    tail = s.outputs[min(s.outputs.find(d) for d in axes) :]
    shape = [size[d] if d in axes else 1 for d in tail]
    return (*shape, *([1] * elided if not s.left else []))


def einsum_dense(name: str, a: EinsumArgs) -> list[Member]:
    s = _specs(a.equation)
    partial = (a.output_shape,) if isinstance(a.output_shape, int) else a.output_shape
    out = _full_output(s, a.input_shape, partial)
    _check_output(s, a.input_shape, out)
    shape, fans = _kernel(s, a.input_shape, out)
    if len(shape) > MAX_RANK:
        raise ShapeError(f"keras.EinsumDense kernel rank {len(shape)} exceeds {MAX_RANK}")
    members = [Member(f"{name}.kernel", tuple(shape), "glorot_uniform", "keras", fans=fans)]
    if a.bias_axes is not None:
        members.append(constant(f"{name}.bias", _bias(s, a.bias_axes, a.input_shape, out), 0.0))
    return members


ROWS: tuple[Preset[Any], ...] = (
    Preset(
        "keras.EinsumDense",
        "kernel glorot_uniform over the equation's input/output axes, bias zeros",
        EinsumArgs,
        einsum_dense,
        lambda a: 1 + (a.bias_axes is not None),
    ),
)
