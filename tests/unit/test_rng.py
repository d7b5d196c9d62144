"""service.rng: known answers, the portable log, Φ and Φ⁻¹, and slicing of the word stream."""

from __future__ import annotations

import hashlib
import math

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from scipy import stats

from service import rng
from service.engines.numpy_engine import NumpyOps
from service.engines.torch_engine import TorchOps

NP = NumpyOps()
TORCH = TorchOps(torch.device("cpu"))

# Random123 kat_vectors for philox4x32_10: counter, key, output (docs/reproducibility.md)
KAT = [
    ((0, 0, 0, 0), (0, 0), (0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8)),
    ((0xFFFFFFFF,) * 4, (0xFFFFFFFF, 0xFFFFFFFF), (0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD)),
    (
        (0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344),
        (0xA4093822, 0x299F31D0),
        (0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1),
    ),
]


@pytest.mark.parametrize(("counter", "key", "expected"), KAT)
def test_philox_known_answers_with_ints_numpy_and_torch(
    counter: tuple[int, int, int, int], key: tuple[int, int], expected: tuple[int, ...]
) -> None:
    assert tuple(rng.philox(counter, key)) == expected
    as_numpy = rng.philox([np.array([c], dtype=np.uint64) for c in counter], key)
    assert tuple(int(x[0]) for x in as_numpy) == expected
    as_torch = rng.philox([torch.tensor([c], dtype=torch.int64) for c in counter], key)
    assert tuple(int(x[0]) for x in as_torch) == expected


def test_counter_layout_block_and_stream() -> None:
    stream = rng.stream_id("layer.weight")
    seed = 0x0123456789ABCDEF
    w = rng.words(NP, seed, stream, 0, 12)
    block2 = rng.philox((2, 0, stream & 0xFFFFFFFF, stream >> 32), (0x89ABCDEF, 0x01234567))
    assert [int(x) for x in w[8:12]] == list(block2)
    assert stream == int.from_bytes(hashlib.sha256(b"layer.weight").digest()[:8], "little")


@given(st.integers(0, 2**64 - 1), st.integers(0, 5000), st.integers(0, 300))
def test_any_slice_of_the_word_stream_stands_alone(seed: int, start: int, length: int) -> None:
    whole = rng.words(NP, seed, 99, 0, start + length)
    assert np.array_equal(rng.words(NP, seed, 99, start, start + length), whole[start:])
    alone = rng.words(TORCH, seed, 99, start, start + length).numpy().astype(np.uint64)
    assert np.array_equal(alone, whole[start:])


def test_own_log_is_accurate() -> None:
    x = np.geomspace(1e-300, 0.5, 200_001)  # AS241's tail branch takes p < 0.075
    got = rng.log(NP, x)
    want = np.array([math.log(v) for v in x])
    assert np.max(np.abs(got - want) / np.abs(want)) <= 2.3e-16
    near_one = np.linspace(0.5, 1.0, 10_001)
    want = np.array([math.log(v) for v in near_one])
    assert np.max(np.abs(rng.log(NP, near_one) - want)) <= 2.3e-16
    assert rng.log(NP, np.array([1.0]))[0] == 0.0


def test_normal_ppf_is_accurate_in_both_branches_and_tails() -> None:
    p = np.concatenate([np.linspace(1e-6, 1 - 1e-6, 100_001), np.geomspace(1e-300, 1e-6, 1000)])
    got = rng.normal_ppf(NP, p)
    want = stats.norm.ppf(p)
    assert np.max(np.abs(got - want) / np.maximum(np.abs(want), 1.0)) < 1e-14
    assert rng.normal_ppf(NP, np.array([0.5]))[0] == 0.0


@pytest.mark.parametrize("x", [-37.5, -12.0, -6.0, -2.0, -0.3, 0.0, 0.7, 2.0, 5.9, 6.1, 9.0])
def test_normal_cdf_is_correctly_rounded(x: float) -> None:
    exact = 0.5 * math.erfc(-x / math.sqrt(2))
    assert rng.normal_cdf(x) == pytest.approx(exact, rel=4e-16)


def test_uniforms_are_open_and_exact() -> None:
    u = rng.uniform(NP, 0, 0, 0, 100_000, wide=False)
    assert u.min() > 0.0
    assert u.max() < 1.0
    w = rng.words(NP, 0, 0, 0, 100_000).astype(np.float64)
    assert np.array_equal((u / 2.0**-32) - 0.5, w)
    u52 = rng.uniform(NP, 0, 0, 0, 100_000, wide=True)
    assert u52.min() > 0.0
    assert u52.max() < 1.0
    assert len(np.unique(u52)) == 100_000


def test_truncation_mirrors_the_upper_tail() -> None:
    t = rng.truncation(5.0, 6.0)
    assert (t.lo, t.hi, t.sign) == (-6.0, -5.0, -1.0)
    assert t.mass > 0
    z = rng.truncated_ppf(NP, rng.uniform(NP, 3, 3, 0, 10_000, wide=True), t)
    assert z.min() >= 5.0
    assert z.max() <= 6.0


def test_the_known_answers_of_docs_reproducibility() -> None:
    stream = rng.stream_id("weight")
    assert (stream & 0xFFFFFFFF, stream >> 32) == (0x8FDF4408, 0xDAEA9EEE)
    w = rng.words(NP, 0, stream, 0, 8)
    assert [int(x) for x in w] == [
        0x3A754105, 0x2B0BEB16, 0xEA27CBFD, 0x6A396F1B,
        0x4268353C, 0x949DA336, 0x7E8D91B2, 0xA691AC3E,
    ]  # fmt: skip
    z = rng.normal_ppf(NP, rng.uniform(NP, 0, stream, 0, 4, wide=False))
    assert z.astype("<f4").tobytes().hex() == "8b893ebfd02476bfef5eaf3fd5035cbe"
