"""Gains of nonlinearities, as torch.nn.init.calculate_gain computes them."""

from __future__ import annotations

import math

from service.errors import SchemeError, one_of
from service.schemes.vocabulary import NONLINEARITIES, TORCH_LEAKY_RELU_SLOPE, Nonlinearity

# --------------------------------------------------------------------------------------------
# Gains (torch.nn.init.calculate_gain)


def calculate_gain(nonlinearity: Nonlinearity, param: float | None = None) -> float:
    """Recommended gain for a nonlinearity, as torch.nn.init.calculate_gain computes it.

    linear, conv*, conv_transpose*, sigmoid: 1; tanh: 5/3; relu: √2;
    leaky_relu: √(2/(1 + slope²)), slope = 0.01 when `param` is None; selu: 3/4
    (Klambauer et al. 2017 want 'linear' for self-normalizing networks; torch gives 3/4).
    """
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        slope = TORCH_LEAKY_RELU_SLOPE if param is None else param
        return math.sqrt(2.0 / (1 + slope**2))
    if nonlinearity == "selu":
        return 3.0 / 4
    if nonlinearity in NONLINEARITIES:
        return 1.0
    raise SchemeError(
        f"unsupported nonlinearity {nonlinearity!r}; expected one of {one_of(NONLINEARITIES)}"
    )
