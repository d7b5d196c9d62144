"""Initialization schemes: fan rules, gains and the numbers that define a tensor's values.

Pure math on the standard library. Every framework's rule is reproduced as its source code
computes it, in the same order of floating-point operations, so the numbers agree with the
framework's to the last bit where the framework works in float64 (Keras, TF1, torch compute
their scale in Python floats; JAX casts the variance to the tensor dtype, Caffe computes in
the blob's dtype: those two agree to float32 rounding, see docs/schemes.md).

Sources (the frameworks' own code; docs/schemes.md): torch/nn/init.py (torch 2.13),
keras/src/initializers/random_initializers.py (Keras 3.15), jax/_src/nn/initializers.py
(JAX 0.10), tensorflow/contrib/layers/python/layers/initializers.py (TF1),
caffe include/caffe/filler.hpp.

A request names a scheme and a convention; `resolve` turns it into a `SchemePlan`: the kind
of distribution, its parameters, the fans and the effective standard deviation. Named
variance-scaling schemes are rows that specialise `variance_scaling(scale, mode, distribution)`
(as jax.nn.initializers does); each convention says what the fans are and what "normal" means.
"""

from __future__ import annotations

from service.schemes.catalogue import (
    ALIASES,
    PARAMS,
    REQUIRED,
    SCHEMES,
    Scheme,
    lookup,
    resolve,
)
from service.schemes.conventions import RULES, ConventionRule, rule
from service.schemes.gains import calculate_gain
from service.schemes.laws import (
    Law,
    SchemePlan,
    normal_cdf,
    truncated_moments,
)
from service.schemes.stft import divisor as stft_divisor
from service.schemes.structured import zeros_per_column
from service.schemes.vocabulary import (
    CONVENTIONS,
    DISTRIBUTIONS,
    MODES,
    NONLINEARITIES,
    TF1_TRUNCATED_FACTOR,
    TRUNCATED_STD,
    Convention,
    Distribution,
    FanSpec,
    Kind,
    Mode,
    Nonlinearity,
    Params,
    ParamValue,
    Shape,
)

__all__ = [
    "ALIASES",
    "CONVENTIONS",
    "DISTRIBUTIONS",
    "MODES",
    "NONLINEARITIES",
    "PARAMS",
    "REQUIRED",
    "RULES",
    "SCHEMES",
    "TF1_TRUNCATED_FACTOR",
    "TRUNCATED_STD",
    "Convention",
    "ConventionRule",
    "Distribution",
    "FanSpec",
    "Kind",
    "Law",
    "Mode",
    "Nonlinearity",
    "ParamValue",
    "Params",
    "Scheme",
    "SchemePlan",
    "Shape",
    "calculate_gain",
    "lookup",
    "normal_cdf",
    "resolve",
    "rule",
    "stft_divisor",
    "truncated_moments",
    "zeros_per_column",
]
