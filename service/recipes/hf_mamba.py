"""Hugging Face transformers 5.x Mamba, as `from_config` initializes it: `hf.mamba`
(MambaForCausalLM), under its state-dict names and layouts. Sources: transformers 5.24.0;
M = `models/mamba/modeling_mamba.py`, C = `models/mamba/configuration_mamba.py`, U =
`modeling_utils.py`.

`initialize_weights` applies `_init_weights` children first (U:2408-2415), so each Linear and
the Conv1d of a mixer get the generic law first (U:2320-2324: N(0, σ²), bias 0, σ =
initializer_range, 0.1 by default, or 0.02 when it is 0) and then `MambaPreTrainedModel
._init_weights` on the mixer (M:542-567) overrides some: `init_mamba_weights` (M:337-356) sets
A_log = ln(1 … N) in every row, D = 1, dt_proj.weight U(±R^-½·time_step_scale) ("random") or
that constant ("constant"; any other word leaves the Linear's N(0, σ²)), dt_proj.bias =
softplus⁻¹ of dt, dt log-uniform on [time_step_min, time_step_max] raised to time_step_floor;
conv1d.weight and out_proj.weight are re-drawn by kaiming_uniform_(a=√5), U(±1/√fan_in), the
conv bias zeroed, and out_proj.weight divided by √num_hidden_layers with
rescale_prenorm_residual. in_proj and x_proj keep N(0, σ²); the embedding (no padding_idx)
N(0, σ²); the RMSNorms 1. lm_head.weight is the embedding by default (tie_word_embeddings).
Sizes: E = intermediate_size (a given value, else expand·hidden_size: C:95), R = time_step_rank
(⌈hidden_size/16⌉ for "auto": C:96-98), N = state_size.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import Decimal, localcontext
from typing import Any

from service import schemes
from service.arguments import arg
from service.errors import ShapeError
from service.presets.base import MAX_COUNT, SQRT5, Member, constant, uniform, zero_bias
from service.recipes.base import Group, Recipe, linear, normal, ones, tied
from service.recipes.hf import INIT_RANGE, SIGMA, UTILS, VERSION, Activation, _sigma
from service.schemes import Params
from service.schemes.ssm import MAX_DT, MAX_LOG_ARANGE, MIN_DT
from service.shapes import MAX_DIM

MAMBA = "transformers/models/mamba/modeling_mamba.py"
MAMBA_CONFIG = "transformers/models/mamba/configuration_mamba.py"


@dataclass(frozen=True)
class MambaConfig:
    """The fields MambaForCausalLM's tensors depend on, with MambaConfig's defaults
    (`configuration_mamba.py:67-92`: mamba-130m's width, 32 layers)."""

    vocab_size: int = arg("size of the vocabulary (embeddings, lm_head rows)", 50280, ge=1,
                          le=MAX_DIM)  # fmt: skip
    hidden_size: int = arg("width of the residual stream (d)", 768, ge=1, le=MAX_DIM)
    state_size: int = arg("SSM state size N: A_log's columns, 2N rows of x_proj", 16, ge=1,
                          le=MAX_LOG_ARANGE)  # fmt: skip
    num_hidden_layers: int = arg("Mamba blocks (L)", 32, ge=0, le=MAX_COUNT)
    expand: int = arg("E = expand·hidden_size where intermediate_size is not given", 2, ge=1,
                      le=MAX_DIM)  # fmt: skip
    intermediate_size: int | None = arg(
        "inner width E; null: expand·hidden_size (a given value wins, as in MambaConfig)",
        None, ge=1, le=MAX_DIM,
    )  # fmt: skip
    conv_kernel: int = arg("kernel of the depthwise conv1d", 4, ge=1, le=MAX_DIM)
    use_bias: bool = arg("biases on in_proj and out_proj (zeros)", False)
    use_conv_bias: bool = arg("bias on conv1d (zeros)", True)
    hidden_act: Activation = arg("activation of the mixer (no tensor of its own)", "silu")
    initializer_range: float = arg(INIT_RANGE, 0.1, ge=0.0, le=1.0)
    time_step_rank: int | None = arg(
        'R: dt_proj in_features, x_proj\'s first R rows; null or "auto": ⌈hidden_size/16⌉',
        None, ge=1, le=MAX_DIM,
    )  # fmt: skip
    time_step_scale: float = arg("dt_proj.weight's bound (or value) is R^-½·time_step_scale",
                                 1.0, ge=0.0)  # fmt: skip
    time_step_min: float = arg("dt_min: low end of dt's log-uniform", 0.001, ge=MIN_DT,
                               le=MAX_DT)  # fmt: skip
    time_step_max: float = arg("dt_max: high end of dt's log-uniform", 0.1, ge=MIN_DT,
                               le=MAX_DT)  # fmt: skip
    time_step_init_scheme: str = arg(
        "dt_proj.weight: random U(±R^-½·time_step_scale), constant R^-½·time_step_scale; any "
        "other word leaves the Linear's N(0, σ²), as MambaMixer does",
        "random",
    )
    time_step_floor: float = arg("dt is raised to it before the inverse softplus", 1e-4,
                                 ge=0.0, le=MAX_DT)  # fmt: skip
    rescale_prenorm_residual: bool = arg("out_proj.weight divided by √num_hidden_layers", False)
    tie_word_embeddings: bool = arg("lm_head.weight is backbone.embeddings.weight", True)


@dataclass(frozen=True)
class Sizes:
    """What the mixer's shapes and laws take from the config, resolved once."""

    inner: int  # E
    rank: int  # R
    sigma: float  # σ of every generic Linear and the embedding
    dt_std: float  # R^-½·time_step_scale


def rank_inverse_sqrt(rank: int) -> float:
    """R^-½ correctly rounded (decimal arithmetic): what `R**-0.5` gives with a correctly
    rounded pow, on every machine."""
    with localcontext() as ctx:
        ctx.prec = 60
        return float(1 / Decimal(rank).sqrt())


def sizes(c: MambaConfig) -> Sizes:
    """E (`intermediate_size`, else `int(expand * hidden_size)`), R (`math.ceil(hidden_size /
    16)` for "auto"), σ and `time_step_rank**-0.5 * time_step_scale`, as MambaConfig and
    MambaMixer compute them."""
    given = c.intermediate_size
    inner = c.expand * c.hidden_size if given is None else given
    if inner > MAX_DIM:
        raise ShapeError(
            f"expand·hidden_size = {inner} (the intermediate size) is more than {MAX_DIM}"
        )
    rank = math.ceil(c.hidden_size / 16) if c.time_step_rank is None else c.time_step_rank
    dt_std = rank_inverse_sqrt(rank) * c.time_step_scale
    return Sizes(inner, rank, _sigma(c.initializer_range), dt_std)


def _out_proj(m: str, c: MambaConfig, inner: int) -> Member:
    """kaiming_uniform_(a=√5), then (rescale_prenorm_residual) divided by √L: U(±bound/√L)."""
    name, shape, law = f"{m}.out_proj.weight", (c.hidden_size, inner), Params(negative_slope=SQRT5)
    if not c.rescale_prenorm_residual:
        return Member(name, shape, "kaiming_uniform", "torch", law)
    bound = schemes.resolve("kaiming_uniform", shape, "torch", law).law.limit or 0.0
    return uniform(name, shape, bound / math.sqrt(c.num_hidden_layers))


def _dt(m: str, c: MambaConfig, z: Sizes) -> list[Member]:
    """dt_proj: weight by time_step_init_scheme, bias softplus⁻¹ of the log-uniform dt."""
    shape = (z.inner, z.rank)
    if c.time_step_init_scheme == "random":
        weight = uniform(f"{m}.dt_proj.weight", shape, z.dt_std)
    elif c.time_step_init_scheme == "constant":
        weight = constant(f"{m}.dt_proj.weight", shape, z.dt_std)
    else:  # neither branch of init_mamba_weights: the generic Linear law stays
        weight = normal(f"{m}.dt_proj.weight", shape, z.sigma)
    dt = Params(low=float(c.time_step_min), high=float(c.time_step_max),
                floor=float(c.time_step_floor))  # fmt: skip
    bias = Member(f"{m}.dt_proj.bias", (z.inner,), "inverse_softplus_log_uniform", "torch", dt)
    return [weight, bias]


def _block(i: int, c: MambaConfig, z: Sizes) -> list[Member]:
    """MambaBlock in its state-dict order: the norm, the mixer's own A_log and D, then its
    modules conv1d, in_proj, x_proj, dt_proj, out_proj."""
    p, d, e, n = f"backbone.layers.{i}", c.hidden_size, z.inner, c.state_size
    m = f"{p}.mixer"
    conv = Params(negative_slope=SQRT5)
    return [
        ones(f"{p}.norm.weight", (d,)),
        Member(f"{m}.A_log", (e, n), "log_arange", "torch"),
        ones(f"{m}.D", (e,)),
        Member(f"{m}.conv1d.weight", (e, 1, c.conv_kernel), "kaiming_uniform", "torch", conv),
        *zero_bias(f"{m}.conv1d", e, c.use_conv_bias),
        *linear(f"{m}.in_proj", 2 * e, d, z.sigma, c.use_bias),
        normal(f"{m}.x_proj.weight", (z.rank + 2 * n, e), z.sigma),
        *_dt(m, c, z),
        _out_proj(m, c, e),
        *zero_bias(f"{m}.out_proj", d, c.use_bias),
    ]


def mamba(c: MambaConfig) -> list[Member]:
    """MambaForCausalLM's state dict: backbone.embeddings, the blocks, norm_f, lm_head."""
    z = sizes(c)
    shape = (c.vocab_size, c.hidden_size)
    out = [normal("backbone.embeddings.weight", shape, z.sigma)]
    for i in range(c.num_hidden_layers):
        out += _block(i, c, z)
    out.append(ones("backbone.norm_f.weight", (c.hidden_size,)))
    if c.tie_word_embeddings:
        return [*out, tied("lm_head.weight", shape, "backbone.embeddings.weight")]
    return [*out, normal("lm_head.weight", shape, z.sigma)]


def count(c: MambaConfig) -> int:
    return 3 + c.num_hidden_layers * (9 + c.use_conv_bias + 2 * c.use_bias)


LINEAR = f"{UTILS}:2320-2322"
MIXER = f"{MAMBA}:542-547; {UTILS}:2408-2415"  # the mixer's own init runs after its children's
GROUPS = (
    Group("backbone.embeddings.weight (vocab_size, d)", "normal",
          f"N(0, σ²), {SIGMA} (MambaConfig's default 0.1); no padding row (nn.Embedding "
          "without padding_idx)", f"{UTILS}:2311, 2331-2332; {MAMBA}:620; {MAMBA_CONFIG}:80"),
    Group("backbone.layers.{i}.mixer.in_proj.weight (2·E, d), .mixer.x_proj.weight "
          "(R + 2·N, E)", "normal", f"N(0, σ²), {SIGMA}: the generic Linear init, not re-drawn",
          f"{LINEAR}; {MAMBA}:319, 321"),
    Group("backbone.layers.{i}.mixer.conv1d.weight (E, 1, conv_kernel), depthwise", "uniform",
          "kaiming_uniform_(a=√5): U(±1/√conv_kernel)", f"{MAMBA}:303-310, 550; {MIXER}"),
    Group("backbone.layers.{i}.mixer.out_proj.weight (d, E)", "uniform",
          "kaiming_uniform_(a=√5): U(±1/√E); with rescale_prenorm_residual then divided by "
          "√num_hidden_layers: U(±1/√(E·L))", f"{MAMBA}:331, 553, 555, 567; {MIXER}"),
    Group("backbone.layers.{i}.mixer.dt_proj.weight (E, R)", "uniform",
          "time_step_init_scheme random (default): U(±R^-½·time_step_scale); constant: "
          "R^-½·time_step_scale; any other word: N(0, σ²) (the Linear init, left)",
          f"{MAMBA}:343-347; {LINEAR}; {MIXER}"),
    Group("backbone.layers.{i}.mixer.dt_proj.bias (E)", "inverse_softplus_log_uniform",
          "dt = max(time_step_floor, exp(u·(ln time_step_max − ln time_step_min) + "
          "ln time_step_min)), u ~ U(0, 1); dt + ln(−expm1(−dt)) (softplus⁻¹(dt))",
          f"{MAMBA}:349-356; {MIXER}"),
    Group("backbone.layers.{i}.mixer.A_log (E, N)", "log_arange",
          "ln(1 … N) in every row (S4D-real: A = −exp(A_log) = −(1 … N))",
          f"{MAMBA}:327, 338-340; {MIXER}"),
    Group("backbone.layers.{i}.mixer.D (E)", "ones", "1", f"{MAMBA}:328, 341; {MIXER}"),
    Group("backbone.layers.{i}.mixer.conv1d.bias (use_conv_bias), .in_proj.bias and "
          ".out_proj.bias (use_bias)", "zeros", "0", f"{MAMBA}:551-552; {UTILS}:2323-2324"),
    Group("backbone.layers.{i}.norm.weight, backbone.norm_f.weight (d)", "ones",
          "1 (MambaRMSNorm: an RMSNorm by its class name)",
          f"{UTILS}:2341-2348; {MAMBA}:493, 513, 624"),
    Group("lm_head.weight (tie_word_embeddings: the default)", "tied",
          "= backbone.embeddings.weight", f"{MAMBA}:713; {MAMBA_CONFIG}:92"),
    Group("lm_head.weight (untied)", "normal", f"N(0, σ²), {SIGMA}", f"{LINEAR}; {MAMBA}:718"),
)  # fmt: skip

ROWS: tuple[Recipe[Any], ...] = (
    Recipe(
        "hf.mamba",
        "MambaForCausalLM: in_proj, x_proj, embeddings N(0, 0.1²); conv1d and out_proj "
        "kaiming_uniform(a=√5); dt_proj.weight U(±R^-½); dt_proj.bias softplus⁻¹ of a "
        "log-uniform dt in [0.001, 0.1]; A_log ln(1 … N); D 1; RMSNorm 1; lm_head tied",
        "transformers",
        VERSION,
        "MambaForCausalLM",
        "mamba",
        MambaConfig,
        mamba,
        count,
        GROUPS,
        words={"time_step_rank": {"auto": None}},
    ),
)
