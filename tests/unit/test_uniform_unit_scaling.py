"""tf.compat.v1.uniform_unit_scaling_initializer (issue 18, point 1). TensorFlow is not
installed: the reference is its source, tensorflow/tensorflow@0060366 (and the TF 2.x compat.v1
copy, the same lines) tensorflow/python/ops/init_ops.py, `UniformUnitScaling.__call__`:

    input_size = 1.0
    for dim in scale_shape[:-1]:
      input_size *= float(dim)
    input_size = max(input_size, 1.0)
    max_val = math.sqrt(3 / input_size) * self.factor
    return random_ops.random_uniform(shape, -max_val, max_val, dtype, seed=self.seed)
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy import stats

from service.dtypes import DTYPES
from service.engines.numpy_engine import NumpyEngine
from service.engines.torch_engine import TorchEngine
from service.errors import SchemeError
from service.plan import sampling
from service.schemes import Params, resolve


def tf_max_val(shape: tuple[int, ...], factor: float) -> float:
    """The lines quoted above, as TF runs them."""
    input_size = 1.0
    for dim in shape[:-1]:
        input_size *= float(dim)
    input_size = max(input_size, 1.0)
    return math.sqrt(3 / input_size) * factor


@given(st.lists(st.integers(0, 300), min_size=0, max_size=5).map(tuple), st.floats(0.01, 10))
def test_the_bound_is_tfs_to_the_last_bit(shape: tuple[int, ...], factor: float) -> None:
    law = resolve("uniform_unit_scaling", shape, "tf1", Params(factor=factor)).law
    bound = tf_max_val(shape, factor)
    assert (law.kind, law.low, law.high) == ("uniform", -bound, bound)
    assert law.effective_std == pytest.approx(bound / math.sqrt(3), rel=1e-15)


@pytest.mark.parametrize(
    ("shape", "input_size"),
    [((), 1), ((7,), 1), ((128, 256), 128), ((3, 3, 32, 64), 288), ((0, 5), 1), ((4, 0), 4)],
)
def test_input_size_is_the_product_of_all_but_the_last_dimension(
    shape: tuple[int, ...], input_size: int
) -> None:
    p = resolve("uniform_unit_scaling", shape, "tf1")
    assert p.law.high == math.sqrt(3 / input_size)
    assert f"= {input_size}; L = √(3/{input_size})·1" in p.formula
    assert p.rule == "tf.compat.v1.uniform_unit_scaling_initializer(factor=1)"
    assert p.mode is None  # not a fan: rank 1 gives 1, its fans are (n, n)


def test_fans_are_reported_by_the_tf1_rule() -> None:
    p = resolve("uniform_unit_scaling", (3, 3, 32, 64), "tf1", Params(factor=1.43))
    assert (p.fan_in, p.fan_out) == (288.0, 576.0)
    assert p.gain == 1.43


@pytest.mark.slow
def test_the_values_pass_ks_against_the_uniform_with_that_bound() -> None:
    shape = (3, 3, 64, 128)
    p = resolve("uniform_unit_scaling", shape, "tf1", Params(factor=1.15))
    s = sampling(p, 20261129, "conv", DTYPES["float64"])
    x = np.frombuffer(NumpyEngine().generate(s, 0, s.numel), dtype="<f8")
    bound = tf_max_val(shape, 1.15)
    assert stats.kstest(x, stats.uniform(-bound, 2 * bound).cdf).pvalue > 1e-4
    reference = np.random.default_rng(0).uniform(-bound, bound, x.size)  # numpy's uniform
    assert stats.ks_2samp(x, reference).pvalue > 1e-4
    assert -bound <= x.min()
    assert x.max() <= bound
    assert x.std() == pytest.approx(p.law.effective_std, rel=0.01)


def test_engines_agree() -> None:
    p = resolve("uniform_unit_scaling", (64, 32), "tf1")
    s = sampling(p, 1, "w", DTYPES["bfloat16"])
    assert NumpyEngine().generate(s, 0, s.numel) == TorchEngine().generate(s, 0, s.numel, "cpu")


@pytest.mark.parametrize(
    ("convention", "params", "match"),
    [
        ("keras", {}, "defined under tf1"),
        ("tf1", {"factor": 0.0}, "factor must be > 0"),
        ("tf1", {"gain": 2.0}, "does not take gain; it takes factor"),
    ],
)
def test_refusals(convention: str, params: dict[str, float], match: str) -> None:
    with pytest.raises(SchemeError, match=match):
        resolve("uniform_unit_scaling", (4, 4), convention, Params(**params))  # type: ignore[arg-type]
