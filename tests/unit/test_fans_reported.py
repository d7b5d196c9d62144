"""Every plan reports its tensor's fans by the convention's rule (issue 18, point 2).

Checked against the frameworks' own functions where they are installed: torch's
`torch.nn.init._calculate_fan_in_and_fan_out` and JAX's `jax._src.nn.initializers._compute_fans`.
Keras is not installed: its `compute_fans` is the formula of /work/shared/reference
(initializers.md §1), written out below, as are TF1 contrib's (the same) and Caffe's.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import pytest
import torch
from jax._src.nn.initializers import _compute_fans

from service.errors import SchemeError, ShapeError
from service.schemes import SCHEMES, FanSpec, Params, resolve
from service.schemes.laws import SchemePlan

Fans = tuple[float, float] | None

# ranks 0 … 5, and shapes with a zero dimension (torch and Keras give zero fans, JAX divides)
SHAPES: list[tuple[int, ...]] = [
    (),
    (7,),
    (4, 6),
    (3, 4, 5),
    (2, 3, 4, 5),
    (2, 3, 2, 4, 5),
    (4, 0),
    (0, 3, 2),
]


def torch_expected(shape: tuple[int, ...]) -> Fans:
    try:
        fan_in, fan_out = torch.nn.init._calculate_fan_in_and_fan_out(torch.empty(shape))
    except ValueError:
        return None
    return float(fan_in), float(fan_out)


def jax_expected(shape: tuple[int, ...]) -> Fans:
    try:
        return _compute_fans(shape)
    except (ValueError, ZeroDivisionError):
        return None


def keras_expected(shape: tuple[int, ...]) -> Fans:
    """Keras 3 `compute_fans` (not installed; the reference's formula, also tf1's)."""
    if not shape:
        return 1.0, 1.0
    if len(shape) == 1:
        return float(shape[0]), float(shape[0])
    receptive = math.prod(shape[:-2])
    return float(shape[-2] * receptive), float(shape[-1] * receptive)


def caffe_expected(shape: tuple[int, ...]) -> Fans:
    """Caffe filler.hpp: count/shape(0), count/shape(1) (count for rank 1); rank 0 has none."""
    if not shape or 0 in shape[:2]:
        return None
    count = math.prod(shape)
    return float(count // shape[0]), float(count // shape[1] if len(shape) > 1 else count)


EXPECTED: dict[str, Callable[[tuple[int, ...]], Fans]] = {
    "torch": torch_expected,
    "keras": keras_expected,
    "jax": jax_expected,
    "tf1": keras_expected,
    "caffe": caffe_expected,
}

# the schemes whose values depend on the fans (a mode divides the scale)
USES_FANS = {
    "variance_scaling",
    *(f"{k}_{d}" for k in ("glorot", "he", "lecun") for d in ("uniform", "normal")),
    "xavier",
    "msra",
}

CASES = [
    (scheme, convention, shape)
    for scheme, row in SCHEMES.items()
    for convention in row.params
    for shape in SHAPES
]


def _params(scheme: str, convention: str) -> Params:
    """A value for every parameter the row requires (constant's value, sparse's sparsity)."""
    defaults = SCHEMES[scheme].params[convention]  # type: ignore[index]
    return Params(**{k: 0.5 for k, v in defaults.items() if v is None})  # type: ignore[arg-type]


def _plan(scheme: str, convention: str, shape: tuple[int, ...], **fans: object) -> SchemePlan:
    return resolve(scheme, shape, convention, _params(scheme, convention), FanSpec(**fans))  # type: ignore[arg-type]


def _refusal(scheme: str, convention: str, shape: tuple[int, ...]) -> str | None:
    try:
        _plan(scheme, convention, shape)
    except (ShapeError, SchemeError) as exc:
        return str(exc)
    return None


@pytest.mark.parametrize(("scheme", "convention", "shape"), CASES)
def test_every_plan_reports_the_frameworks_fans(
    scheme: str, convention: str, shape: tuple[int, ...]
) -> None:
    expected = EXPECTED[convention](shape)
    refusal = _refusal(scheme, convention, shape)
    if refusal is not None:
        if scheme in USES_FANS:  # its scale needs the fans: refused where they are none or 0
            assert expected is None or 0.0 in expected, refusal
        else:  # refused only for a shape the scheme itself needs, never for its fans
            assert f"{scheme} needs" in refusal
        return
    plan = _plan(scheme, convention, shape)
    assert plan.uses_fans == (scheme in USES_FANS)
    if expected is None:
        assert (plan.fan_in, plan.fan_out) == (None, None)
        assert any("fan_in and fan_out not reported" in n for n in plan.notes)
    else:
        assert (plan.fan_in, plan.fan_out) == pytest.approx(expected, rel=1e-15)
        assert not any("not reported" in n for n in plan.notes)


@pytest.mark.parametrize("convention", ["torch", "keras", "jax", "tf1", "caffe"])
@pytest.mark.parametrize(
    "scheme", ["normal", "uniform", "truncated_normal", "zeros", "ones", "constant"]
)
def test_schemes_without_a_fan_report_them_with_mode_null(scheme: str, convention: str) -> None:
    if convention not in SCHEMES[scheme].params:
        pytest.skip(f"{scheme} is not defined under {convention}")
    plan = _plan(scheme, convention, (3, 4, 5))
    assert plan.mode is None
    assert plan.n is None
    assert not plan.uses_fans
    assert (plan.fan_in, plan.fan_out) == EXPECTED[convention]((3, 4, 5))


@pytest.mark.parametrize(
    ("scheme", "convention", "shape"),
    [
        ("orthogonal", "torch", (6, 4, 3)),
        ("identity", "torch", (4, 6)),
        ("identity", "keras", (4, 6)),
        ("dirac", "torch", (6, 4, 3, 3)),
        ("delta_orthogonal", "jax", (3, 3, 4, 6)),
        ("orthogonal", "jax", (3, 4, 5)),
    ],
)
def test_structured_schemes_report_fans(
    scheme: str, convention: str, shape: tuple[int, ...]
) -> None:
    plan = _plan(scheme, convention, shape)
    assert plan.mode is None
    assert (plan.fan_in, plan.fan_out) == EXPECTED[convention](shape)


@pytest.mark.parametrize(
    ("shape", "in_axes", "out_axes", "batch_axes"),
    [
        ((5,), (0,), (0,), None),  # rank 1 with in_axis given: jax computes (1, 1)
        ((3, 4, 5), (0,), (-1,), None),
        ((3, 4, 5), (0, 1), (2,), None),
        ((2, 3, 4, 5), (1,), (3,), (0,)),
    ],
)
def test_jax_axes_are_honoured(
    shape: tuple[int, ...],
    in_axes: tuple[int, ...],
    out_axes: tuple[int, ...],
    batch_axes: tuple[int, ...] | None,
) -> None:
    plan = _plan("normal", "jax", shape, in_axes=in_axes, out_axes=out_axes, batch_axes=batch_axes)
    expected = _compute_fans(shape, in_axis=in_axes, out_axis=out_axes, batch_axis=batch_axes or ())
    assert (plan.fan_in, plan.fan_out) == pytest.approx(expected, rel=1e-15)


def test_keras_axes_are_plain_products() -> None:
    plan = _plan("uniform", "keras", (768, 12, 64), in_axes=(0,), out_axes=(1, 2))
    assert (plan.fan_in, plan.fan_out) == (768.0, 768.0)


def test_explicit_fans_are_honoured_even_where_the_rule_has_none() -> None:
    plan = _plan("zeros", "torch", (5,), fan_in=3.0, fan_out=4.0)
    assert (plan.fan_in, plan.fan_out, plan.mode) == (3.0, 4.0, None)
    half = _plan("normal", "torch", (4, 6), fan_in=50.0)
    assert (half.fan_in, half.fan_out) == (50.0, 4.0)


def test_axes_a_convention_refuses_are_not_refused_where_they_were_accepted() -> None:
    """`normal` never read the axes, so torch accepted them; it still does, reporting none."""
    plan = _plan("normal", "torch", (4, 6), in_axes=(0,), out_axes=(1,))
    assert (plan.fan_in, plan.fan_out) == (None, None)
    assert any("does not take in_axes" in n for n in plan.notes)
    with pytest.raises(ShapeError, match="does not take in_axes"):  # a fan-using scheme: as before
        _plan("he_normal", "torch", (4, 6), in_axes=(0,), out_axes=(1,))


def test_the_numbers_do_not_change() -> None:
    """Only the reported fans are new: law, gain and the rest are those the scheme decided."""
    plan = _plan("normal", "torch", (4, 6))
    assert plan.law.stddev == 1.0
    assert (plan.gain, plan.scale, plan.mode) == (None, None, None)
    assert (plan.fan_in, plan.fan_out) == (6.0, 4.0)
