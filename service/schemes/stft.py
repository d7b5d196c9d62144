"""Keras' STFT kernel: deterministic, computed from each element's index, portably.

keras/src/initializers/constant_initializers.py::STFT (Keras 3.15), shape (T, 1, F):
w[t, 0, f] = trig(−2π·t·f/N)·win[t]/s with N = 2·(F − 1), trig = cos ("real") or sin ("imag",
so −sin(2π·t·f/N)), win = scipy.signal.get_window(window, T, fftbins=periodic), and
s = √Σ win² ("density"), Σ |win| ("spectrum") or 1 (None; also when there is no window).
Keras evaluates it in the tensor's dtype (float32: the angle alone is off by up to ~2e-4 for
long frames); here every value is the exact formula in float64 (service.windows), rounded once.
"""

from __future__ import annotations

import functools
import math

from service.errors import LimitExceeded, ShapeError
from service.schemes.builders import Context, need_rank, shown
from service.schemes.laws import Law, SchemePlan
from service.windows import SCALARS, turns, window

MAX_FRAMES = 1 << 14  # the window, its scale and the moments are summed on the host, per frame


@functools.lru_cache(maxsize=8)  # up to 16,384 floats each
def window_values(name: str, frames: int, periodic: bool) -> tuple[float, ...]:
    """win[0 … frames) in float64, the engines' bits (service.windows on Python numbers)."""
    return tuple(window(SCALARS, name, t, frames, periodic) for t in range(frames))


@functools.lru_cache(maxsize=64)
def divisor(name: str, scaling: str, frames: int, periodic: bool) -> float:
    """s: √Σ win² (density) or Σ |win| (spectrum), summed exactly (math.fsum, then one correctly
    rounded √): the same float on every machine. 1 with no window or no scaling (Keras)."""
    if name == "none" or scaling == "none":
        return 1.0
    win = window_values(name, frames, periodic)
    if scaling == "density":
        return math.sqrt(math.fsum(x * x for x in win))
    return math.fsum(abs(x) for x in win)


def _sums(imag: bool, t: int, bins: int) -> tuple[float, float]:
    """Σ_f trig and Σ_f trig² over f = 0 … F − 1 for frame t, in closed form (N = 2(F − 1)).

    Σ cos(2πtf/N) = (N·[N | t] + 1 + (−1)^t)/2 (half of the full period's sum, whose two
    ends are counted once); Σ cos² = F/2 + (N·[N | 2t] + 2)/4; Σ sin² = F − Σ cos²;
    Σ sin(2πtf/N) = 0 for even t, else sin(πt/2)·sin((F)πt/(2M))/sin(πt/(2M)), M = F − 1.
    """
    n = 2 * (bins - 1)
    cos_sq = bins / 2 + (n * ((2 * t) % n == 0) + 2) / 4
    if not imag:
        return (n * (t % n == 0) + 1 + (-1) ** t) / 2, cos_sq
    sin_sum = 0.0
    if t % 2:
        _, top = turns(SCALARS, t * bins, 4 * (bins - 1))
        _, bottom = turns(SCALARS, t, 4 * (bins - 1))
        sin_sum = (1.0 if t % 4 == 1 else -1.0) * top / bottom
    return -sin_sum, bins - cos_sq


@functools.lru_cache(maxsize=64)
def moments(
    imag: bool, name: str, scaling: str, periodic: bool, frames: int, bins: int
) -> tuple[float, float]:
    """Mean and population std of the whole kernel (exact sums over the frames)."""
    if frames * bins == 0:
        return 0.0, 0.0
    s = divisor(name, scaling, frames, periodic)
    win = window_values(name, frames, periodic)
    first, second = [], []
    for t, w in enumerate(win):
        c = w / s
        total, squares = _sums(imag, t, bins)
        first.append(c * total)
        second.append(c * c * squares)
    mean = math.fsum(first) / (frames * bins)
    return mean, math.sqrt(max(math.fsum(second) / (frames * bins) - mean * mean, 0.0))


def _check_shape(ctx: Context, name: str) -> None:
    need_rank(ctx, range(3, 4), "Keras' STFT unpacks (frame_length, input_channels, fft_bins)")
    frames, channels, bins = ctx.shape
    if channels != 1:
        raise ShapeError(
            f"stft needs shape[1] = 1: Keras' STFT returns a (frame_length, 1, fft_bins) kernel "
            f"whatever shape[1] is; received shape {list(ctx.shape)}"
        )
    if bins == 1:
        raise ShapeError(
            "stft needs shape[2] (fft_bins) = 0 or >= 2: with 1 bin fft_length = 2·(bins − 1) "
            "is 0 and Keras divides by it (NaN)"
        )
    if frames == 0 and name != "none":
        raise ShapeError(
            f"stft needs shape[0] (frame_length) >= 1 with a window: scipy.signal.get_window "
            f"refuses length 0; received shape {list(ctx.shape)}"
        )
    if frames > MAX_FRAMES:
        raise LimitExceeded(
            f"stft sums its window on the host, frame by frame; this service does that for "
            f"frame lengths (shape[0]) up to {MAX_FRAMES}; received {frames}"
        )


def stft(ctx: Context) -> SchemePlan:
    """keras.initializers.STFT(side, window, scaling, periodic): see the module's docstring."""
    name, scaling, side = ctx.word("window"), ctx.word("scaling"), ctx.word("side")
    periodic = bool(ctx.params["periodic"])
    _check_shape(ctx, name)
    frames, _, bins = ctx.shape
    s = divisor(name, scaling, frames, periodic) if frames else 1.0
    if s == 0.0:
        raise ShapeError(
            f"stft needs a window with a non-zero {scaling}: the {name} window of length "
            f"{frames} (periodic={periodic}) is all zeros and Keras divides by it (NaN)"
        )
    mean, std = moments(side == "imag", name, scaling, periodic, frames, bins)
    law = Law("stft", mean=mean, effective_std=std)
    trig = "cos" if side == "real" else "−sin"
    win = "" if name == "none" else f"·{name}[t]/{shown(s)}"
    n = 2 * (bins - 1)
    formula = f"w[t, 0, f] = {trig}(2π·t·f/{n}){win}"
    ignored = name == "none" and scaling != "none"
    notes = ("Keras ignores scaling without a window",) if ignored else ()
    call = ctx.rule.call(
        "stft",
        side=side,
        window="None" if name == "none" else repr(name),
        scaling="None" if scaling == "none" else repr(scaling),
        periodic=periodic,
    )
    return ctx.plan(law, call, formula, notes=notes)
