"""service.schemes: fan rules, gains and plans against the frameworks' own formulas."""

from __future__ import annotations

import math
import statistics
from typing import Literal

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from scipy import stats

from service import schemes
from service.errors import SchemeError, ShapeError
from service.schemes import CONVENTIONS, FanSpec, Params, resolve

TORCH_CONV = (64, 32, 3, 3)  # = keras/jax (3, 3, 32, 64): fans (288, 576)
KERAS_CONV = (3, 3, 32, 64)
TORCH_DENSE = (256, 128)  # = keras/jax (128, 256): fans (128, 256)
KERAS_DENSE = (128, 256)
C = 0.87962566103423978


def close(x: float | None, y: float, rel: float = 1e-12) -> bool:
    return x is not None and math.isclose(x, y, rel_tol=rel)


# --- worked numbers, by hand from the frameworks' formulas (docs/schemes.md) ------------------

WORKED = [
    # scheme, convention, shape, params, field, expected (6 significant digits in the reference)
    ("xavier_uniform", "torch", TORCH_CONV, {}, "limit", 0.083333),
    ("xavier_uniform", "torch", TORCH_DENSE, {}, "limit", 0.125),
    ("xavier_normal", "torch", TORCH_CONV, {}, "stddev", 0.048113),
    ("xavier_normal", "torch", TORCH_DENSE, {}, "stddev", 0.072169),
    ("kaiming_uniform", "torch", TORCH_CONV, {}, "limit", 0.144338),
    ("kaiming_uniform", "torch", TORCH_DENSE, {}, "limit", 0.216506),
    ("kaiming_uniform", "torch", TORCH_CONV, {"negative_slope": math.sqrt(5)}, "limit", 0.058926),
    ("kaiming_uniform", "torch", TORCH_DENSE, {"negative_slope": math.sqrt(5)}, "limit", 0.0883883),
    (
        "kaiming_uniform",
        "torch",
        TORCH_DENSE,
        {"negative_slope": math.sqrt(5)},
        "effective_std",
        0.051031,
    ),
    ("kaiming_normal", "torch", TORCH_CONV, {}, "stddev", 0.083333),
    (
        "kaiming_normal",
        "torch",
        TORCH_CONV,
        {"mode": "fan_out", "nonlinearity": "relu"},
        "stddev",
        0.058926,
    ),
    (
        "kaiming_normal",
        "torch",
        TORCH_DENSE,
        {"mode": "fan_out", "nonlinearity": "relu"},
        "stddev",
        0.088388,
    ),
    ("truncated_normal", "torch", TORCH_CONV, {}, "effective_std", 0.879626),
    ("glorot_normal", "keras", KERAS_CONV, {}, "stddev", 0.054697),
    ("glorot_normal", "keras", KERAS_CONV, {}, "limit", 0.109393),
    ("glorot_normal", "jax", KERAS_DENSE, {}, "stddev", 0.082045),
    ("glorot_normal", "jax", KERAS_DENSE, {}, "limit", 0.164090),
    ("glorot_normal", "keras", KERAS_CONV, {}, "effective_std", 0.048113),
    ("he_normal", "keras", KERAS_CONV, {}, "stddev", 0.0947373),
    ("he_normal", "keras", KERAS_CONV, {}, "limit", 0.189475),
    ("he_normal", "keras", KERAS_CONV, {}, "effective_std", 0.0833333),
    ("he_normal", "jax", KERAS_DENSE, {}, "stddev", 0.142106),
    ("he_normal", "jax", KERAS_DENSE, {}, "limit", 0.284212),
    ("lecun_normal", "keras", KERAS_CONV, {}, "stddev", 0.066989),
    ("lecun_normal", "jax", KERAS_DENSE, {}, "stddev", 0.100484),
    ("lecun_normal", "keras", KERAS_DENSE, {}, "effective_std", 0.088388),
    ("he_uniform", "keras", KERAS_CONV, {}, "limit", 0.144338),
    ("glorot_uniform", "keras", KERAS_CONV, {}, "limit", 0.083333),
    ("lecun_uniform", "jax", KERAS_CONV, {}, "limit", 0.102062),
    ("he_uniform", "jax", KERAS_DENSE, {}, "limit", 0.216506),
    ("glorot_uniform", "keras", KERAS_DENSE, {}, "limit", 0.125),
    ("lecun_uniform", "keras", KERAS_DENSE, {}, "limit", 0.153093),
    ("variance_scaling", "tf1", KERAS_CONV, {}, "stddev", 0.0950146),
    ("variance_scaling", "tf1", KERAS_CONV, {}, "effective_std", 0.083577),
    ("variance_scaling", "tf1", KERAS_DENSE, {}, "stddev", 0.142522),
    ("variance_scaling", "tf1", KERAS_DENSE, {}, "effective_std", 0.125366),
    ("xavier", "caffe", TORCH_CONV, {}, "limit", 0.102062),
    ("msra", "caffe", TORCH_CONV, {}, "stddev", 0.083333),
    ("xavier", "caffe", TORCH_DENSE, {}, "limit", 0.153093),
    ("msra", "caffe", TORCH_DENSE, {}, "stddev", 0.125),
]


def number(plan: schemes.SchemePlan, name: str) -> float | None:
    value = getattr(plan.law, name)
    return float(value) if value is not None else None


@pytest.mark.parametrize(("scheme", "convention", "shape", "params", "field", "expected"), WORKED)
def test_worked_numbers_of_the_reference(
    scheme: str,
    convention: str,
    shape: tuple[int, ...],
    params: dict[str, float | str],
    field: str,
    expected: float,
) -> None:
    plan = resolve(scheme, shape, convention, Params(**params))  # type: ignore[arg-type]
    # the reference table gives six decimals (0.125 is exact), so half a unit of the sixth
    assert number(plan, field) == pytest.approx(expected, rel=0, abs=5e-7)


@pytest.mark.parametrize(
    ("scheme", "convention", "shape", "stddev", "limit", "effective"),
    [
        # the closed forms, to 1e-12 relative: keras/jax truncate at 2σ' with σ' = √(s/n)/c
        (
            "he_normal",
            "keras",
            KERAS_CONV,
            math.sqrt(2 / 288) / C,
            2 * math.sqrt(2 / 288) / C,
            math.sqrt(2 / 288),
        ),
        (
            "glorot_normal",
            "jax",
            KERAS_DENSE,
            math.sqrt(1 / 192) / C,
            2 * math.sqrt(1 / 192) / C,
            math.sqrt(1 / 192),
        ),
        (
            "he_uniform",
            "torch",
            TORCH_DENSE,
            None,
            math.sqrt(3) * math.sqrt(2) / math.sqrt(128),
            math.sqrt(2 / 128),
        ),
        (
            "variance_scaling",
            "tf1",
            KERAS_CONV,
            math.sqrt(1.3 * 2 / 288),
            2 * math.sqrt(1.3 * 2 / 288),
            None,
        ),
        (
            "glorot_normal",
            "torch",
            TORCH_CONV,
            math.sqrt(2 / (288 + 576)),
            None,
            math.sqrt(2 / (288 + 576)),
        ),
    ],
)
def test_plans_match_closed_forms_to_1e12(
    scheme: str,
    convention: str,
    shape: tuple[int, ...],
    stddev: float | None,
    limit: float | None,
    effective: float | None,
) -> None:
    law = resolve(scheme, shape, convention).law
    if stddev is not None:
        assert close(law.stddev, stddev)
    if limit is not None:
        assert close(law.limit, limit)
    if effective is not None:
        assert close(law.effective_std, effective)


def test_kaiming_uniform_sqrt5_is_torch_linear_default() -> None:
    plan = resolve("kaiming_uniform", (256, 128), "torch", Params(negative_slope=math.sqrt(5)))
    assert close(plan.law.limit, 1 / math.sqrt(128))
    assert plan.law.limit == pytest.approx(0.0883883, abs=5e-8)


# --- torch is the reference for the torch convention ---------------------------------------

torch_shapes = st.lists(st.integers(1, 9), min_size=2, max_size=5).map(tuple)


@given(torch_shapes)
def test_torch_fans_equal_torchs_own(shape: tuple[int, ...]) -> None:
    expected = torch.nn.init._calculate_fan_in_and_fan_out(torch.empty(shape))
    plan = resolve("kaiming_normal", shape, "torch")
    assert (plan.fan_in, plan.fan_out) == expected


@pytest.mark.parametrize("nonlinearity", schemes.NONLINEARITIES)
@pytest.mark.parametrize("param", [None, 0.0, 0.2, math.sqrt(5), 3])
def test_gains_equal_torch_calculate_gain(
    nonlinearity: schemes.Nonlinearity, param: float | None
) -> None:
    assert schemes.calculate_gain(nonlinearity, param) == torch.nn.init.calculate_gain(
        nonlinearity, param
    )


@pytest.mark.parametrize("scheme", ["kaiming_uniform", "kaiming_normal"])
@pytest.mark.parametrize("mode", ["fan_in", "fan_out"])
@pytest.mark.parametrize(
    ("nonlinearity", "slope"), [("leaky_relu", 0.0), ("leaky_relu", math.sqrt(5)), ("relu", 0.3)]
)
@pytest.mark.parametrize("shape", [TORCH_CONV, TORCH_DENSE, (16, 8, 5)])
def test_torch_kaiming_std_is_torchs_formula(
    scheme: str,
    mode: Literal["fan_in", "fan_out"],
    nonlinearity: schemes.Nonlinearity,
    slope: float,
    shape: tuple[int, ...],
) -> None:
    t = torch.empty(shape)
    fan = torch.nn.init._calculate_correct_fan(t, mode)
    std = torch.nn.init.calculate_gain(nonlinearity, slope) / math.sqrt(fan)
    params = Params(mode=mode, nonlinearity=nonlinearity, negative_slope=slope)
    law = resolve(scheme, shape, "torch", params).law
    if scheme.endswith("normal"):
        assert law.effective_std == std
    else:
        assert law.limit == math.sqrt(3) * std


@pytest.mark.parametrize("shape", [TORCH_CONV, TORCH_DENSE, (16, 8, 5)])
def test_torch_xavier_uniform_bound_is_reached_by_torchs_samples(shape: tuple[int, ...]) -> None:
    limit = resolve("xavier_uniform", shape, "torch", Params(gain=1.7)).law.limit
    assert limit is not None
    generator = torch.Generator().manual_seed(0)
    t = torch.nn.init.xavier_uniform_(torch.empty(shape), gain=1.7, generator=generator)
    assert 0.95 * limit < float(t.abs().max()) <= limit * (1 + 1e-6)


# --- every scheme under every convention ---------------------------------------------------

SHAPE_FOR = {
    "dirac": (8, 4, 3, 3),
    "delta_orthogonal": (3, 3, 4, 8),
    "identity": (6, 4),
    "sparse": (6, 4),
    "stft": (8, 1, 5),
}


def required_params(name: str, convention: str) -> Params:
    """A value for every parameter the row requires (constant's value, sparse's sparsity)."""
    defaults = schemes.SCHEMES[name].params.get(convention, {})  # type: ignore[call-overload]
    return Params(**{k: 0.5 for k, v in defaults.items() if v is None})  # type: ignore[arg-type]


@pytest.mark.parametrize("convention", CONVENTIONS)
@pytest.mark.parametrize("name", sorted(schemes.SCHEMES))
def test_every_scheme_resolves_where_defined_and_refuses_elsewhere(
    name: str, convention: str
) -> None:
    scheme = schemes.SCHEMES[name]
    shape = SHAPE_FOR.get(name, (6, 4, 3, 3))
    if convention not in scheme.params:
        with pytest.raises(SchemeError, match="not defined under convention"):
            resolve(name, shape, convention)
        return
    plan = resolve(name, shape, convention, required_params(name, convention))
    law = plan.law
    assert plan.scheme == name
    assert math.isfinite(law.mean)
    assert math.isfinite(law.effective_std)
    assert law.effective_std >= 0
    assert plan.rule
    assert plan.formula


@pytest.mark.parametrize(("alias", "target"), sorted(schemes.ALIASES.items()))
def test_aliases_resolve_to_their_scheme(alias: str, target: str) -> None:
    shape = SHAPE_FOR.get(target, (4, 4))
    assert resolve(alias, shape, "torch" if target == "identity" else "keras").scheme == target


def test_normal_means_per_convention() -> None:
    vs = "variance_scaling"
    keras = resolve(vs, KERAS_DENSE, "keras", Params(distribution="normal"))
    jax = resolve(vs, KERAS_DENSE, "jax", Params(distribution="normal"))
    assert keras.law.kind == "truncated_normal"
    assert keras.params["distribution"] == "normal"
    assert jax.law.kind == "normal"
    assert any("'normal' means" in n for n in keras.notes + jax.notes)
    # the presets: truncated in keras/jax/tf1, untruncated in torch/caffe
    assert resolve("he_normal", KERAS_CONV, "jax").law.kind == "truncated_normal"
    assert resolve("he_normal", TORCH_CONV, "torch").law.kind == "normal"
    assert resolve("he_normal", TORCH_CONV, "caffe").law.kind == "normal"


def test_keras_clamps_the_fan_to_one() -> None:
    plan = resolve("lecun_uniform", (0, 5), "keras")
    assert plan.n == 1.0
    assert close(plan.law.limit, math.sqrt(3.0))
    assert any("clamped" in n for n in plan.notes)


@pytest.mark.parametrize(
    ("convention", "shape", "fans"),
    [
        ("keras", (), (1.0, 1.0)),
        ("keras", (7,), (7.0, 7.0)),
        ("tf1", (), (1.0, 1.0)),
        ("tf1", (7,), (7.0, 7.0)),
        ("caffe", (7,), (1.0, 7.0)),
        ("caffe", (64, 32, 3, 3), (288.0, 576.0)),
        ("keras", (5, 3, 32, 64), (480.0, 960.0)),
    ],
)
def test_low_rank_and_conv_fans(
    convention: str, shape: tuple[int, ...], fans: tuple[float, float]
) -> None:
    plan = resolve("glorot_uniform", shape, convention)
    assert (plan.fan_in, plan.fan_out) == fans


def test_jax_axes_and_geo_average() -> None:
    # a torch OIHW kernel under jax with in_axis=1, out_axis=0 gives the right fans
    plan = resolve("he_normal", TORCH_CONV, "jax", fans=FanSpec(in_axes=(1,), out_axes=(0,)))
    assert (plan.fan_in, plan.fan_out) == (288.0, 576.0)
    # without the axes the same shape gives (6144, 6144): the famous 4.6x error
    wrong = resolve("he_normal", TORCH_CONV, "jax")
    assert (wrong.fan_in, wrong.fan_out) == (6144.0, 6144.0)
    # rank 1 with explicit in_axis: fans (1, 1)
    rank1 = resolve("lecun_normal", (9,), "jax", fans=FanSpec(in_axes=(0,), out_axes=(0,)))
    assert (rank1.fan_in, rank1.fan_out) == (1.0, 1.0)
    batch = resolve("glorot_uniform", (4, 3, 3, 32, 64), "jax", fans=FanSpec(batch_axes=(0,)))
    assert (batch.fan_in, batch.fan_out) == (288.0, 576.0)
    geo = resolve(
        "variance_scaling", KERAS_CONV, "jax", Params(mode="fan_geo_avg", distribution="normal")
    )
    assert close(geo.law.stddev, math.sqrt(1 / math.sqrt(288 * 576)))


def test_keras_explicit_axes_have_no_receptive_field() -> None:
    fans = FanSpec(in_axes=(1, 2, 3), out_axes=(0, 2, 3))
    plan = resolve("he_normal", TORCH_CONV, "keras", fans=fans)
    assert (plan.fan_in, plan.fan_out) == (288.0, 576.0)


def test_explicit_fans_override_the_rule() -> None:
    plan = resolve("he_normal", (10,), "torch", fans=FanSpec(fan_in=50.0, fan_out=20.0))
    assert (plan.fan_in, plan.fan_out) == (50.0, 20.0)
    half = resolve("he_normal", TORCH_DENSE, "torch", fans=FanSpec(fan_in=50.0))
    assert (half.fan_in, half.fan_out) == (50.0, 256.0)


def test_structured_schemes() -> None:
    torch_orth = resolve("orthogonal", (4, 3, 5), "torch", Params(gain=2.0))
    assert torch_orth.kept_axis == 0
    assert close(torch_orth.law.effective_std, 2.0 / math.sqrt(15))
    keras_orth = resolve("orthogonal", (4, 3, 5), "keras")
    assert keras_orth.kept_axis == 2
    jax_orth = resolve("orthogonal", (4, 3, 5), "jax", Params(column_axis=1))
    assert jax_orth.kept_axis == 1
    eye = resolve("identity", (3, 5), "keras", Params(gain=2.0))
    values = [2.0] * 3 + [0.0] * 12
    assert close(eye.law.mean, sum(values) / 15)
    assert close(eye.law.effective_std, statistics.pstdev(values))
    dirac = torch.nn.init.dirac_(torch.empty(8, 4, 3, 3, dtype=torch.float64), groups=2)
    plan = resolve("dirac", (8, 4, 3, 3), "torch", Params(groups=2))
    assert close(plan.law.effective_std, float(dirac.std(unbiased=False)))
    assert close(plan.law.mean, float(dirac.mean()))


# --- refusals: one test each --------------------------------------------------------------

REFUSALS = [
    ("he_normal", (5,), "torch", {}, {}, ShapeError, "fewer than 2 dimensions"),
    ("he_normal", (), "torch", {}, {}, ShapeError, "rank-0"),
    ("he_normal", (5,), "jax", {}, {}, ShapeError, "default in_axis"),
    ("he_normal", (), "caffe", {}, {}, ShapeError, "rank-0"),
    ("he_normal", (4, 0), "caffe", {}, {}, ShapeError, "zero there"),
    ("he_normal", (4, 0), "jax", {}, {}, ShapeError, "ZeroDivisionError"),
    ("he_normal", (4, 0), "torch", {}, {}, ShapeError, "fan_in is 0"),
    ("glorot_normal", (0, 0), "tf1", {}, {}, ShapeError, "undefined"),
    (
        "he_normal",
        (4, 4),
        "keras",
        {},
        {"in_axes": (0,)},
        ShapeError,
        "both in_axes and out_axes",
    ),
    ("he_normal", (4, 4), "torch", {}, {"in_axes": (0,)}, ShapeError, "does not take in_axes"),
    (
        "he_normal",
        (4, 4),
        "keras",
        {},
        {"in_axes": (0,), "out_axes": (2,)},
        ShapeError,
        "out of range",
    ),
    ("he_normal", (4, 4), "jax", {}, {"in_axes": (0, 0)}, ShapeError, "same axis twice"),
    ("he_normal", (4, 4), "keras", {}, {"batch_axes": (0,)}, ShapeError, "batch_axes"),
    ("he_normal", (4, 4), "keras", {}, {"fan_in": -1.0}, ShapeError, "fan_in must be"),
    ("xavir_uniform", (4, 4), "keras", {}, {}, SchemeError, "expected one of .*glorot_uniform"),
    ("he_normal", (4, 4), "mxnet", {}, {}, SchemeError, "unknown convention 'mxnet'; expected"),
    (
        "he_normal",
        (4, 4),
        "keras",
        {"gain": 2.0},
        {},
        SchemeError,
        "does not take gain; it takes no parameters",
    ),
    ("constant", (4, 4), "torch", {}, {}, SchemeError, "needs value"),
    (
        "variance_scaling",
        (4, 4),
        "keras",
        {"mode": "fan_geo_avg"},
        {},
        SchemeError,
        "fan_geo_avg.*not available",
    ),
    (
        "variance_scaling",
        (4, 4),
        "tf1",
        {"distribution": "untruncated_normal"},
        {},
        SchemeError,
        "expected one of truncated_normal, uniform",
    ),
    (
        "variance_scaling",
        (4, 4),
        "caffe",
        {"distribution": "truncated_normal"},
        {},
        SchemeError,
        "not available",
    ),
    ("variance_scaling", (4, 4), "keras", {"factor": 0.0}, {}, SchemeError, "factor must be > 0"),
    ("variance_scaling", (4, 4), "keras", {"factor": math.inf}, {}, SchemeError, "finite"),
    (
        "he_normal",
        (4, 4),
        "torch",
        {"mode": "fan_avg"},
        {},
        SchemeError,
        "expected one of fan_in, fan_out",
    ),
    (
        "he_normal",
        (4, 4),
        "torch",
        {"nonlinearity": "swish"},
        {},
        SchemeError,
        "unknown nonlinearity",
    ),
    ("identity", (3, 3, 3), "keras", {}, {}, ShapeError, "rank 2"),
    ("orthogonal", (5,), "torch", {}, {}, ShapeError, "rank 2 … 8"),
    ("orthogonal", (4, 4), "caffe", {}, {}, SchemeError, "not defined under convention caffe"),
    ("dirac", (6, 4, 3), "torch", {"groups": 4}, {}, ShapeError, "divisible by groups"),
    ("dirac", (6, 4), "torch", {}, {}, ShapeError, "rank 3"),
    ("delta_orthogonal", (3, 3, 8, 4), "jax", {}, {}, ShapeError, "in <= out"),
    ("truncated_normal", (4,), "torch", {"std": 0.0}, {}, SchemeError, "std > 0"),
    ("truncated_normal", (4,), "torch", {"a": 1.0, "b": -1.0}, {}, SchemeError, "a < b"),
    (
        "truncated_normal",
        (4,),
        "torch",
        {"a": 50.0, "b": 60.0},
        {},
        SchemeError,
        "no probability mass",
    ),
    ("truncated_normal", (4,), "keras", {"a": -1.0}, {}, SchemeError, "does not take a"),
    ("uniform", (4,), "torch", {"low": 2.0, "high": 1.0}, {}, SchemeError, "low <= high"),
    ("uniform", (4,), "jax", {"low": 2.0}, {}, SchemeError, "it takes high"),
    ("normal", (4,), "jax", {"mean": 2.0}, {}, SchemeError, "does not take mean"),
    ("he_normal", (4, -1), "keras", {}, {}, ShapeError, "negative"),
]


@pytest.mark.parametrize(
    ("scheme", "shape", "convention", "params", "fans", "error", "match"), REFUSALS
)
def test_refusals_say_what_was_received_and_what_is_allowed(
    scheme: str,
    shape: tuple[int, ...],
    convention: str,
    params: dict[str, float],
    fans: dict[str, object],
    error: type[Exception],
    match: str,
) -> None:
    with pytest.raises(error, match=match):
        resolve(scheme, shape, convention, Params(**params), FanSpec(**fans))  # type: ignore[arg-type]


# --- properties --------------------------------------------------------------------------

dims = st.integers(1, 64)
conventions_with_vs = st.sampled_from(["keras", "jax", "tf1", "torch", "caffe"])


@given(st.lists(dims, min_size=2, max_size=5).map(tuple), conventions_with_vs, st.floats(0.01, 100))
def test_uniform_limit_is_sqrt3_times_effective_std(
    shape: tuple[int, ...], convention: str, factor: float
) -> None:
    params = Params(factor=factor, distribution="uniform", mode="fan_avg")
    law = resolve("variance_scaling", shape, convention, params).law
    assert law.limit is not None
    assert math.isclose(law.limit, math.sqrt(3) * law.effective_std, rel_tol=1e-14)
    assert plan_n(shape, convention, params) is not None


def plan_n(shape: tuple[int, ...], convention: str, params: Params) -> float | None:
    plan = resolve("variance_scaling", shape, convention, params)
    assert plan.n is not None
    assert params.factor is not None
    assert math.isclose(plan.law.effective_std**2, params.factor / plan.n, rel_tol=1e-12)
    return plan.n


@given(st.tuples(dims, dims), st.sampled_from(["glorot_normal", "glorot_uniform"]))
def test_fan_avg_is_symmetric_in_in_and_out(dense: tuple[int, int], scheme: str) -> None:
    for convention in CONVENTIONS:
        a = resolve(scheme, dense, convention).law
        b = resolve(scheme, dense[::-1], convention).law
        assert a == b


@given(st.lists(dims, min_size=0, max_size=3), dims, dims)
def test_keras_kernel_and_torch_transpose_have_the_same_fans(
    kernel: list[int], cin: int, cout: int
) -> None:
    keras = resolve("he_normal", (*kernel, cin, cout), "keras")
    torch_plan = resolve("he_normal", (cout, cin, *kernel), "torch")
    assert (keras.fan_in, keras.fan_out) == (torch_plan.fan_in, torch_plan.fan_out)


@given(
    st.floats(-5, 4.5),
    st.floats(0.1, 5),
    st.floats(-3, 3, allow_subnormal=False),
    st.floats(0.01, 10),
)
def test_truncated_effective_std_equals_the_closed_form(
    a: float, width: float, mean: float, std: float
) -> None:
    params = Params(mean=mean, std=std, a=mean + a * std, b=mean + (a + width) * std)
    law = resolve("truncated_normal", (3,), "torch", params).law
    alpha, beta = law.alpha, law.beta
    assert alpha is not None
    assert beta is not None
    ref = stats.truncnorm(alpha, beta, loc=mean, scale=std)
    assert math.isclose(law.effective_std, ref.std(), rel_tol=1e-7)
    assert math.isclose(law.mean, ref.mean(), rel_tol=1e-7, abs_tol=1e-9 * std)


def test_truncated_std_constant_is_the_closed_form() -> None:
    assert schemes.truncated_moments(-2.0, 2.0)[1] == pytest.approx(C, rel=1e-15)


# --- conventions carry their fan rule and call templates ------------------------------------


def _valid_plan(name: str, convention: str) -> schemes.SchemePlan:
    shape = SHAPE_FOR.get(name, (6, 4, 3, 3))
    return resolve(name, shape, convention, required_params(name, convention))


@pytest.mark.parametrize(
    ("name", "convention"),
    [(n, c) for n, s in sorted(schemes.SCHEMES.items()) for c in s.params],
)
def test_every_row_has_a_call_template_under_every_convention_defining_it(
    name: str, convention: str
) -> None:
    plan = _valid_plan(name, convention)
    assert plan.convention == convention
    assert plan.rule.strip()
    assert "{" not in plan.rule
    assert "}" not in plan.rule  # every placeholder of the template was filled


def test_a_missing_call_template_fails_loudly() -> None:
    from service.schemes.builders import Context
    from service.schemes.structured import orthogonal

    caffe = schemes.rule("caffe")
    with pytest.raises(LookupError, match="convention caffe has no call template for the "):
        caffe.call("orthogonal")
    # a row defined under a convention that cannot spell its family does not resolve quietly
    context = Context("orthogonal", caffe, (4, 4), FanSpec(), {"gain": 1.0})
    with pytest.raises(LookupError, match="'orthogonal' family; it has variance_scaling, "):
        orthogonal(context)


@pytest.mark.parametrize("convention", CONVENTIONS)
def test_each_convention_computes_its_own_fans(convention: str) -> None:
    r = schemes.rule(convention)
    shape = (6, 4, 3, 3)
    assert r.fans(shape, FanSpec()) == r.compute(shape, FanSpec())
    assert r.fans(shape, FanSpec(fan_in=5.0, fan_out=7.0)) == (5.0, 7.0)


@pytest.mark.parametrize("convention", ["keras", "jax", "tf1", "caffe"])
@pytest.mark.parametrize("shape", [KERAS_CONV, KERAS_DENSE, (7, 5, 3)])
def test_a_named_row_is_variance_scaling_with_fixed_arguments(
    convention: str, shape: tuple[int, ...]
) -> None:
    from service.schemes.builders import Context, named

    build = named("custom_normal", 3.0, "fan_out", "truncated_normal")
    plan = build(Context("custom_normal", schemes.rule(convention), shape, FanSpec(), {}))
    # Caffe has no truncated normal: its named normals are untruncated, as its msra filler
    caffe = convention == "caffe"
    dist: schemes.Distribution = "untruncated_normal" if caffe else "truncated_normal"
    params = Params(factor=3.0, mode="fan_out", distribution=dist)
    general = resolve("variance_scaling", shape, convention, params)
    assert (plan.law, plan.fan_in, plan.fan_out, plan.n, plan.scale) == (
        general.law,
        general.fan_in,
        general.fan_out,
        general.n,
        general.scale,
    )
    expected = {
        "keras": "keras.initializers.CustomNormal()",
        "jax": "jax.nn.initializers.custom_normal()",
        "tf1": "tf.contrib.layers.variance_scaling_initializer(factor=3, mode='FAN_OUT', "
        "uniform=False)",
        "caffe": "variance scaling with caffe's fan rule",
    }
    assert plan.rule == expected[convention]


def test_caffe_names_its_fillers_and_torch_its_gain_functions() -> None:
    assert resolve("glorot_uniform", TORCH_CONV, "caffe").rule == (
        "Caffe xavier filler (variance_norm=AVERAGE)"
    )
    assert resolve("he_normal", TORCH_CONV, "caffe").rule == (
        "Caffe msra filler (variance_norm=FAN_IN)"
    )
    assert resolve("glorot_normal", TORCH_CONV, "torch").rule == (
        "torch.nn.init.xavier_normal_(gain=1)"
    )
    assert resolve("lecun_uniform", TORCH_CONV, "torch").rule == (
        "torch.nn.init.kaiming_uniform_(a=0, mode='fan_in', nonlinearity='linear')"
    )
