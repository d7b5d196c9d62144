"""What an engine draws for a scheme's plan: its law as a `Distribution` (the engine seam's
input), every field final. Plans (service.plan) call it; engines never see a scheme. No HTTP,
no pydantic, no arrays.
"""

from __future__ import annotations

import service.distributions as dist
from service.schemes import SchemePlan, stft_divisor, zeros_per_column


def distribution(p: SchemePlan) -> dist.Distribution:
    """The distribution of a scheme's plan, every field final (the engine seam's input)."""
    law = p.law
    gain = 1.0 if p.gain is None else p.gain  # 0 is a gain: torch gives zeros
    if law.kind == "normal":
        return dist.Normal(law.loc, _given(law.stddev, p))
    if law.kind == "truncated_normal":
        alpha, beta = _given(law.alpha, p), _given(law.beta, p)
        return dist.TruncatedNormal(law.loc, _given(law.stddev, p), alpha, beta)
    if law.kind == "uniform":
        return dist.Uniform(_given(law.low, p), _given(law.high, p))
    if law.kind == "constant":
        return dist.Constant(law.loc)
    if law.kind == "identity":
        return dist.Identity(gain)
    if law.kind == "dirac":
        return dist.Dirac(int(p.params.get("groups", 1)))
    kept = p.kept_axis if p.kept_axis is not None else len(p.shape) - 1
    if law.kind == "orthogonal":
        return dist.Orthogonal(gain, kept)
    if law.kind == "delta_orthogonal":
        return dist.DeltaOrthogonal(gain, kept - (len(p.shape) - 2))
    return _computed(p)


def _computed(p: SchemePlan) -> dist.Distribution:
    """The kinds whose numbers the catalogue computes from the parameters and the shape."""
    q = p.params
    if p.law.kind == "sparse":
        zeros = zeros_per_column(float(q["sparsity"]), p.shape[0])
        return dist.Sparse(_given(p.law.stddev, p), zeros)
    if p.law.kind == "inverse_softplus_log_uniform":  # Mamba's dt_proj.bias
        low, high, floor = float(q["low"]), float(q["high"]), float(q["floor"])
        return dist.InverseSoftplusLogUniform(low, high, floor)
    if p.law.kind == "log_arange":  # Mamba's A_log
        return dist.LogArange()
    if p.law.kind != "stft":
        raise ValueError(
            f"scheme {p.scheme!r} resolved to kind {p.law.kind!r}, which no engine draws"
        )
    window, scaling, periodic = str(q["window"]), str(q["scaling"]), bool(q["periodic"])
    divisor = stft_divisor(window, scaling, p.shape[0], periodic) if p.shape[0] else 1.0
    return dist.Stft(q["side"] == "imag", window, periodic, divisor)


def _given(value: float | None, p: SchemePlan) -> float:
    if value is None:  # the law constructors of service.schemes.laws always set them
        raise ValueError(f"scheme {p.scheme!r} resolved to an incomplete {p.law.kind} law")
    return value
