"""JAX delta_orthogonal's column_axis (issue 18, point 1), against jax 0.10.2's own initializer:
column_axis is an axis of the (in, out) centre block, not of the kernel; 0 or −2 transposes an
(out, in) orthogonal matrix, which differs from the default only when the block is square."""

from __future__ import annotations

import jax
import numpy as np
import numpy.typing as npt
import pytest
from jax.nn.initializers import delta_orthogonal as jax_delta_orthogonal
from scipy import stats

from service.dtypes import DTYPES
from service.engines.numpy_engine import NumpyEngine
from service.engines.torch_engine import TorchEngine
from service.errors import SchemeError
from service.plan import sampling
from service.schemes import Params, resolve

NUMPY = NumpyEngine()
F64 = npt.NDArray[np.float64]


def ours(shape: tuple[int, ...], axis: int, seed: int = 3, gain: float = 1.0) -> F64:
    p = resolve("delta_orthogonal", shape, "jax", Params(column_axis=axis, gain=gain))
    s = sampling(p, seed, "kernel", DTYPES["float64"])
    return np.frombuffer(NUMPY.generate(s, 0, s.numel), dtype="<f8").reshape(shape)


def theirs(shape: tuple[int, ...], axis: int, seed: int = 3) -> F64:
    init = jax_delta_orthogonal(column_axis=axis)
    w: F64 = np.array(init(jax.random.key(seed), shape, jax.numpy.float32), dtype=np.float64)
    return w


def centre(w: F64) -> F64:
    block: F64 = w[tuple((k - 1) // 2 for k in w.shape[:-2])]
    return block


@pytest.mark.parametrize("shape", [(3, 3, 4, 4), (3, 5, 5), (2, 3, 3, 6, 6)])
@pytest.mark.parametrize("axis", [0, -2])
def test_a_square_block_is_transposed_as_in_jax(shape: tuple[int, ...], axis: int) -> None:
    assert np.array_equal(centre(theirs(shape, axis)), centre(theirs(shape, -1)).T)
    assert np.array_equal(centre(ours(shape, axis)), centre(ours(shape, -1)).T)
    for same in (1, -1):
        assert np.array_equal(theirs(shape, same), theirs(shape, -1))
        assert np.array_equal(ours(shape, same), ours(shape, -1))


@pytest.mark.parametrize("shape", [(3, 4, 6), (3, 3, 2, 7), (1, 1, 1, 3, 8)])
def test_a_wide_block_is_the_same_for_every_column_axis_as_in_jax(shape: tuple[int, ...]) -> None:
    for axis in (-2, 0, 1):
        assert np.array_equal(theirs(shape, axis), theirs(shape, -1))
        assert np.array_equal(ours(shape, axis), ours(shape, -1))


@pytest.mark.parametrize("axis", [-2, -1, 0, 1])
def test_the_centre_has_orthonormal_rows_times_the_gain_and_zeros_elsewhere(axis: int) -> None:
    w = ours((3, 3, 5, 8), axis, gain=1.5)
    block = centre(w)
    assert np.allclose(block @ block.T, 1.5**2 * np.eye(5), atol=1e-12)
    w[1, 1] = 0
    assert not w.any()


@pytest.mark.parametrize("axis", [2, -3, 5])
def test_axes_jax_cannot_index_are_refused(axis: int) -> None:
    with pytest.raises(IndexError):
        theirs((3, 4, 6), axis)
    with pytest.raises(SchemeError, match=f"expected one of -2, -1, 0, 1; received {axis}"):
        resolve("delta_orthogonal", (3, 4, 6), "jax", Params(column_axis=axis))


def test_tf1_takes_no_column_axis() -> None:
    with pytest.raises(SchemeError, match="does not take column_axis; it takes gain"):
        resolve("delta_orthogonal", (3, 4, 6), "tf1", Params(column_axis=0))


@pytest.mark.slow
@pytest.mark.parametrize(("shape", "axis"), [((3, 4, 4), 0), ((3, 4, 4), -1), ((3, 3, 6), 0)])
def test_the_entries_follow_jaxs_distribution_over_seeds(shape: tuple[int, ...], axis: int) -> None:
    """Haar-orthogonal rows: the centre's entries of 400 seeds, two-sample KS against JAX's,
    and each entry's second moment 1/out."""
    mine = np.concatenate([centre(ours(shape, axis, seed)).ravel() for seed in range(400)])
    jaxs = np.concatenate([centre(theirs(shape, axis, seed)).ravel() for seed in range(400)])
    assert stats.ks_2samp(mine, jaxs).pvalue > 1e-3
    assert np.mean(mine**2) == pytest.approx(1 / shape[-1], rel=0.05)
    assert np.mean(jaxs**2) == pytest.approx(1 / shape[-1], rel=0.05)


def test_the_engines_agree_and_the_plan_names_the_block() -> None:
    p = resolve("delta_orthogonal", (3, 3, 4, 4), "jax", Params(column_axis=0))
    assert p.formula == "centre tap = orthogonal(4×4)ᵀ·1, zeros elsewhere"
    assert p.kept_axis == 2
    assert p.rule == "jax.nn.initializers.delta_orthogonal(scale=gain, column_axis)"
    s = sampling(p, 9, "kernel", DTYPES["float32"])
    a = np.frombuffer(NUMPY.generate(s, 0, s.numel), dtype="<f4")
    b = np.frombuffer(TorchEngine().generate(s, 0, s.numel, "cpu"), dtype="<f4")
    np.testing.assert_allclose(a, b, atol=1e-6)  # QR: equal to rounding (weak ETag)
