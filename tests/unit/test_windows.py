"""service.windows: exact turns, scipy's windows, and the same bits on Python numbers, numpy
and torch (the catalogue sums the window on the host, the engines compute it per element)."""

from __future__ import annotations

import math
from typing import Any

import mpmath  # type: ignore[import-untyped]
import numpy as np
import pytest
import scipy.signal
import torch
from hypothesis import given
from hypothesis import strategies as st

from service.engines.numpy_engine import NumpyOps
from service.engines.torch_engine import TorchOps
from service.windows import SCALARS, WINDOWS, turns, window

NUMPY = NumpyOps()
TORCH = TorchOps(torch.device("cpu"))
LENGTHS = [1, 2, 3, 4, 5, 8, 17, 64, 255, 400]


@given(st.integers(0, 2**40), st.integers(1, 2**31))
def test_turns_are_within_an_ulp_of_the_exact_cosine_and_sine(p: int, q: int) -> None:
    mpmath.mp.dps = 40
    cos, sin = turns(SCALARS, p, q)
    angle = 2 * mpmath.pi * mpmath.mpf(p % q) / q
    assert abs(cos - mpmath.cos(angle)) <= 2.3e-16
    assert abs(sin - mpmath.sin(angle)) <= 2.3e-16


@pytest.mark.parametrize(
    ("p", "q", "expected"),
    [(0, 7, (1.0, 0.0)), (1, 4, (0.0, 1.0)), (2, 4, (-1.0, 0.0)), (3, 4, (0.0, -1.0))],
)
def test_quarter_turns_are_exact(p: int, q: int, expected: tuple[float, float]) -> None:
    cos, sin = turns(SCALARS, p, q)
    assert (cos, sin) == expected


def test_python_numpy_and_torch_give_the_same_bits() -> None:
    q = 8 * 997 + 3
    p = np.arange(0, 3 * q, 7, dtype=np.int64)
    on_numpy = turns(NUMPY, p.astype(np.uint64), q)
    on_torch = turns(TORCH, torch.from_numpy(p), q)
    for a, b in zip(on_numpy, on_torch, strict=True):
        assert np.array_equal(a, b.numpy())
    scalars = [turns(SCALARS, int(x), q) for x in p[:2000]]
    assert np.array_equal(np.array([c for c, _ in scalars]), on_numpy[0][:2000])
    assert np.array_equal(np.array([s for _, s in scalars]), on_numpy[1][:2000])


def _reference(name: str, length: int, periodic: bool) -> Any:
    if name == "none":
        return np.ones(length)
    return scipy.signal.get_window(name, length, fftbins=periodic)


@pytest.mark.parametrize("periodic", [False, True])
@pytest.mark.parametrize("name", WINDOWS)
def test_windows_equal_scipys_get_window(name: str, periodic: bool) -> None:
    for length in LENGTHS:
        n = np.arange(length, dtype=np.uint64)
        ours = np.broadcast_to(window(NUMPY, name, n, length, periodic), (length,))
        np.testing.assert_allclose(ours, _reference(name, length, periodic), rtol=0, atol=2e-15)
        on_torch = window(TORCH, name, torch.arange(length), length, periodic)
        assert np.array_equal(np.broadcast_to(on_torch.numpy(), (length,)), ours)
        scalars = [window(SCALARS, name, t, length, periodic) for t in range(length)]
        assert np.array_equal(np.array(scalars, dtype=np.float64), ours)


@pytest.mark.parametrize("name", ["hann", "bartlett"])
def test_rational_points_are_exact(name: str) -> None:
    """hann's ends are 0 and its middle 1; bartlett's ramp is scipy's own division."""
    w = [window(SCALARS, name, t, 9, False) for t in range(9)]
    assert (w[0], w[4], w[8]) == (0.0, 1.0, 0.0)
    if name == "bartlett":
        assert w == list(scipy.signal.get_window("bartlett", 9, fftbins=False))


def test_an_unknown_window_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown window 'tukey'; expected one of hann"):
        window(SCALARS, "tukey", 0, 8, False)


def test_the_series_constants_are_the_reciprocal_factorials() -> None:
    from service.windows import COS_SERIES, SIN_SERIES

    assert SIN_SERIES[3] == -1 / math.factorial(7)
    assert COS_SERIES[2] == 1 / math.factorial(4)
