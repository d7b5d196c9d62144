"""Builders of the schemes with a structure: orthogonal, identity, dirac, delta-orthogonal, and
torch's sparse (a normal with a fixed count of zeros in every column)."""

from __future__ import annotations

import math

from service.errors import SchemeError, ShapeError
from service.schemes.builders import Context, need_rank, shown
from service.schemes.fans import normalize_axes
from service.schemes.laws import Law, SchemePlan, sparse_law

QR_NOTE = "reproducible to rounding only: QR runs in LAPACK (weak ETag)"
BLOCK_AXES = (-2, -1, 0, 1)  # JAX delta_orthogonal's column_axis indexes the (in, out) block


def orthogonal(ctx: Context) -> SchemePlan:
    """Orthogonal (Saxe et al. 2014): QR of a Gaussian matrix with the sign fix, times gain.

    The tensor is viewed as a matrix whose columns run along the kept axis: torch keeps the
    first axis (shape[0], rest); keras and tf1 keep the last; jax keeps `column_axis`.
    Every element has mean 0 and rms gain/√max(rows, cols).
    """
    need_rank(ctx, range(2, 9), "torch, keras and jax refuse rank < 2")
    gain, rank = ctx.num("gain"), len(ctx.shape)
    columns = ctx.rule.orthogonal_columns
    if columns == "first axis":
        kept = 0
    elif columns == "column_axis":
        kept = normalize_axes(ctx.shape, (int(ctx.params["column_axis"]),), "column_axis")[0]
    else:
        kept = rank - 1
    numel = math.prod(ctx.shape)
    cols = ctx.shape[kept]
    rows = numel // cols if cols else 0
    rms = gain / math.sqrt(max(rows, cols)) if numel else 0.0
    law = Law("orthogonal", mean=0.0, effective_std=rms)
    formula = (
        f"Q of QR(N(0,1)^({max(rows, cols)}×{min(rows, cols)})) · sign(diag R) · {shown(gain)}"
    )
    call = ctx.rule.call("orthogonal")
    return ctx.plan(law, call, formula, gain=gain, kept_axis=kept, notes=(QR_NOTE,))


def identity(ctx: Context) -> SchemePlan:
    need_rank(ctx, range(2, 3), "an identity matrix")
    rows, cols = ctx.shape
    gain = float(ctx.params.get("gain", 1.0))
    law = sparse_law("identity", min(rows, cols), rows * cols, gain)
    return ctx.plan(law, ctx.rule.call("identity"), f"{shown(gain)}·eye({rows}, {cols})", gain=gain)


def dirac(ctx: Context) -> SchemePlan:
    """torch `dirac_(groups)`: 1 at [g·out/groups + d, d, centre…] for d < min(out/groups, in)."""
    need_rank(ctx, range(3, 6), "a 1-3 d convolution kernel (out, in, *k)")
    groups = int(ctx.params["groups"])
    out = ctx.shape[0]
    if out % groups:
        raise ShapeError(f"dirac needs shape[0] = {out} divisible by groups = {groups}")
    ones = groups * min(out // groups, ctx.shape[1])
    law = sparse_law("dirac", ones, math.prod(ctx.shape), 1.0)
    return ctx.plan(law, ctx.rule.call("dirac"), "identity on the centre tap", gain=1.0)


def delta_orthogonal(ctx: Context) -> SchemePlan:
    """Delta-orthogonal (Xiao et al. 2018): zero kernel with an orthogonal centre tap.

    Layout (*k, in, out), in <= out; the (in, out) block at [(k−1)//2, …] is orthogonal·gain.
    JAX builds the block with `orthogonal(scale, column_axis)` on shape[-2:], so its
    column_axis is an axis of the block (−2 … 1): with 0 or −2 the block is the transpose of
    an (out, in) orthogonal matrix, which differs from the default only for a square block.
    """
    need_rank(ctx, range(3, 6), "a 1-3 d convolution kernel (*k, in, out)")
    cin, cout = ctx.shape[-2], ctx.shape[-1]
    if cin > cout:
        raise ShapeError(
            f"delta_orthogonal needs in <= out (shape[-2] <= shape[-1]); received {cin} > {cout}"
        )
    axis = int(ctx.params.get("column_axis", -1))
    if axis not in BLOCK_AXES:
        raise SchemeError(
            f"delta_orthogonal's column_axis is an axis of the (in, out) block shape[-2:] (JAX "
            f"calls orthogonal on it, and raises IndexError beyond); expected one of -2, -1, 0, "
            f"1; received {axis}"
        )
    gain = ctx.num("gain")
    numel = math.prod(ctx.shape)
    rms = gain * math.sqrt(cin / numel) if numel else 0.0
    law = Law("delta_orthogonal", mean=0.0, effective_std=rms)
    block = f"orthogonal({cin}×{cout})" if axis % 2 else f"orthogonal({cout}×{cin})ᵀ"
    formula = f"centre tap = {block}·{shown(gain)}, zeros elsewhere"
    call = ctx.rule.call("delta_orthogonal")
    kept = len(ctx.shape) - 2 + axis % 2
    return ctx.plan(law, call, formula, gain=gain, kept_axis=kept, notes=(QR_NOTE,))


def zeros_per_column(sparsity: float, rows: int) -> int:
    """torch sparse_'s `num_zeros = math.ceil(sparsity * rows)`."""
    return math.ceil(sparsity * rows)


def sparse(ctx: Context) -> SchemePlan:
    """torch `sparse_(tensor, sparsity, std)`: N(0, std²), then k = ⌈sparsity·rows⌉ zeros in
    every column (Martens 2010). torch picks the rows with an unseeded `randperm`; here they are
    the k rows of the column with the smallest mask keys (service.engines.sparse), so every part
    of the tensor is computed alone. Mean 0; std·√(1 − k/rows) over the whole tensor."""
    need_rank(ctx, range(2, 3), "torch sparse_ supports only 2-d tensors (rows, columns)")
    std, sparsity = ctx.num("std"), ctx.num("sparsity")
    rows = ctx.shape[0]
    zeros = zeros_per_column(sparsity, rows)
    kept = 1.0 - zeros / rows if rows else 1.0
    law = Law("sparse", mean=0.0, effective_std=std * math.sqrt(kept), loc=0.0, stddev=std)
    formula = (
        f"N(0, {shown(std)}²), then ⌈{shown(sparsity)}·{rows}⌉ = {zeros} zeros in each column; "
        f"effective std {shown(std)}·√(1 − {zeros}/{rows}) = {shown(law.effective_std)}"
    )
    notes = ("the zero rows of each column come from the portable generator, not torch's randperm",)
    return ctx.plan(law, ctx.rule.call("sparse"), formula, notes=notes)
