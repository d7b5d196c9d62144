"""The kernel's bfloat16 output (`generate_bf16`, `generate_runs_bf16`): the reference's bytes,
whichever way a value is made. Its AVX-512 build makes untruncated normals with loc = 0 from a
float32 Φ⁻¹ and remakes in float64 the values whose float32 result lies near a bfloat16 rounding
midpoint (docs/decisions.md); these tests force such values, count the remade ones, compare
millions of values with the float64 path, and run the exhaustive bound's program on the words
where the branches meet."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from dataclasses import replace
from itertools import product
from pathlib import Path

import ml_dtypes
import numpy as np
import numpy.typing as npt
import pytest

from service import rng
from service.distributions import Distribution, Normal, TruncatedNormal, Uniform
from service.dtypes import DTYPES
from service.engines import Sampling, fast
from service.engines.numpy_engine import NumpyEngine, NumpyOps
from service.slices import Slice

pytestmark = pytest.mark.skipif(not fast.available(), reason="the fused kernel was not built here")

ROOT = Path(__file__).resolve().parents[2]
BF16 = DTYPES["bfloat16"]
SEED, STREAM = 2024, rng.stream_id("model.layers.0.mlp.up_proj.weight")
FAR = 2**40 + 3  # block counters that fill both words
GUARD = 72  # the kernel's BF16_GUARD: float32 steps; within 40 the shortcut must step aside
REFERENCE = NumpyEngine(fast=False)
SHORTCUT = fast.isa() == "avx512"  # the other builds make every value in float64


def normal(sigma: float, shape: tuple[int, ...] = (1 << 20,), loc: float = 0.0) -> Sampling:
    return Sampling(Normal(loc, sigma), shape, SEED, STREAM, BF16)


def bits(n: int) -> npt.NDArray[np.uint16]:
    return np.empty(n, np.uint16)


def z_of(index: int) -> float:
    """The float64 standard normal of element `index` (32-bit word), by the reference."""
    ops = NumpyOps()
    u = rng.uniform(ops, SEED, STREAM, index, index + 1, False)
    return float(rng.normal_ppf(ops, u)[0])


def midpoint_sigma(z: float, steps: int) -> float:
    """A σ that puts (float)(z·σ) `steps` float32 steps from a bfloat16 rounding midpoint (a
    float32 whose low 16 bits are 0x8000): z·(M/|z|) is ±M to within a float64 rounding."""
    near = int(np.float32(abs(z) * 0.02).view(np.uint32))
    target = np.uint32(((near & ~0xFFFF) | 0x8000) + steps).view(np.float32)
    return float(target) / abs(z)


@pytest.mark.parametrize(
    ("sigma", "start", "stop"),
    [
        (0.02, 0, 70_001),  # two threads' shares
        (1.0, 3, 4_099),
        (1 / 3, 17, 18),
        (7.3e-3, 1021, 1041),
        (2.5e4, FAR, FAR + 3_001),
        (1e-30, 5, 2_053),
        (2.0**-100, 0, 8_192),  # the smallest σ taken: subnormal products are remade
        (2.0**-101, 0, 4_096),  # below it: the float64 path throughout
        (7e29, 1, 1_025),
    ],
)
def test_bfloat16_normals_are_the_references_bytes(sigma: float, start: int, stop: int) -> None:
    s = normal(sigma, (FAR + 8192,))
    expected = bytes(REFERENCE.generate(s, start, stop))
    assert bytes(NumpyEngine(threads=2).generate(s, start, stop)) == expected
    assert bytes(NumpyEngine(threads=1).generate(s, start, stop)) == expected


@pytest.mark.parametrize("steps", [0, 1, -1, 2, -3, 17, -40, 70, -71, 72, 73, -73, 90, 300])
def test_values_near_a_rounding_midpoint_are_remade_exactly(steps: int) -> None:
    """Element i's σ puts its value `steps` float32 steps from a midpoint; the windows around
    it put it in every lane of a vector. Within 40 steps the float32 result cannot be far enough
    from the midpoint, so the shortcut must remake at least that value."""
    ops = NumpyOps()
    u = rng.uniform(ops, SEED, STREAM, 0, 4096, False)
    tails = [int(i) for i in np.flatnonzero(np.abs(u - 0.5) > 0.425)[:6]]
    for i in [0, 1, 2, 7, 15, 16, 31, 33, *tails]:
        sigma = midpoint_sigma(z_of(i), steps)
        s = normal(sigma, (4096,))
        lo, hi = max(i - i % 16 - 3, 0), i + 13
        assert bytes(NumpyEngine(threads=1).generate(s, lo, hi)) == bytes(
            REFERENCE.generate(s, lo, hi)
        ), (i, steps)
        redone = fast.Draw.of(s).generate_bf16(bits(hi - lo), lo, hi)
        if SHORTCUT and abs(steps) <= 40:
            assert redone >= 1, (i, steps)


def test_the_shortcut_gives_the_float64_paths_bytes_on_millions_of_values() -> None:
    """33.5 million values over seeds, σ and offsets: the shortcut's bits are the float64
    path's (exact=True, which also gives the reference's: the other tests), and about
    (2·GUARD + 1)/2^16 of them are remade."""
    n, total, redone = 1 << 20, 0, 0
    a, b, f = bits(n), bits(n), np.empty(n, np.float32)
    for seed, sigma, start in product(
        (0, 1, 2**63 + 5, 2**64 - 1), (0.02, 1.0, 3.3e-3, 6e-25), (0, FAR)
    ):
        draw = fast.Draw(Normal, (seed, STREAM ^ seed, False), sigma=sigma)
        redone += draw.generate_bf16(a, start, start + n)
        assert draw.generate_bf16(b, start, start + n, exact=True) == 0
        assert np.array_equal(a, b), (seed, sigma, start)
        total += n
    draw.generate(f, start, start + n)  # and the float32 values narrowed, as before
    assert np.array_equal(f.astype(ml_dtypes.bfloat16).view(np.uint16), a)
    if SHORTCUT:
        assert 0.5 * (2 * GUARD + 1) / 2**16 < redone / total < 1.5 * (2 * GUARD + 1) / 2**16
    else:
        assert redone == 0


@pytest.mark.parametrize(
    "law",
    [
        Normal(0.5, 0.02),  # loc != 0
        Normal(-1e-3, 1.0),
        Normal(0.0, 2.0**101),  # σ beyond the shortcut's range
        TruncatedNormal(0.0, 0.02, -2.0, 2.0),
        TruncatedNormal(0.0, 1.0, 0.5, 3.0),
        Uniform(-0.1, 0.1),
    ],
    ids=repr,
)
def test_other_laws_take_the_float64_path_narrowed(law: Distribution) -> None:
    s = Sampling(law, (FAR + 4096,), SEED, STREAM, BF16)
    draw = fast.Draw.of(s)
    for start, stop in ((3, 5_000), (FAR, FAR + 1_000)):
        out, f = bits(stop - start), np.empty(stop - start, np.float32)
        assert draw.generate_bf16(out, start, stop) == 0
        draw.generate(f, start, stop)
        assert np.array_equal(out, f.astype(ml_dtypes.bfloat16).view(np.uint16))
        assert out.tobytes() == bytes(REFERENCE.generate(s, start, stop))


@pytest.mark.parametrize(
    "part",
    [Slice(((7, 300), (3, 5))), Slice(((7, 300), (100, 431))), Slice(((0, 2), (1, 699)))],
    ids=["short runs", "long runs", "two rows"],
)
@pytest.mark.parametrize("sigma", [0.02, 1.0])
def test_slices_are_the_references_bytes(part: Slice, sigma: float) -> None:
    s = replace(normal(sigma, (300, 700)), part=part)
    expected = bytes(REFERENCE.generate(s, 0, part.numel))
    assert bytes(NumpyEngine(threads=2).generate(s, 0, part.numel)) == expected
    assert bytes(NumpyEngine(threads=1).generate(s, 3, part.numel - 1)) == expected[6:-2]


def test_runs_are_the_ranges_made_one_by_one() -> None:
    """generate_runs_bf16 against generate_bf16 run by run: short runs (gathered, float64),
    long ones (the shortcut), past 2^40; the remade counts add up."""
    starts = np.array([5, 9, 4096, 70_000, 70_001, 100_003, FAR, 7], np.int64)
    lengths = np.array([3, 1, 1_500, 1, 31, 32, 2_500, 0], np.int64)
    draw = fast.Draw(Normal, (SEED, STREAM, False), sigma=0.02)
    whole = bits(int(lengths.sum()))
    redone = draw.generate_runs_bf16(whole, starts, lengths)
    pieces, counted = [], 0
    for start, length in zip(starts.tolist(), lengths.tolist(), strict=True):
        piece = bits(length)
        made = draw.generate_bf16(piece, start, start + length)
        counted += made if length >= 32 else 0  # shorter runs are gathered: float64
        pieces.append(piece)
    assert np.array_equal(whole, np.concatenate(pieces))
    assert redone == counted


def test_bad_calls_are_refused() -> None:
    draw = fast.Draw(Normal, (SEED, STREAM, True), sigma=0.02)  # wide: float64 words
    with pytest.raises(ValueError, match="bfloat16 asked wide"):
        draw.generate_bf16(bits(8), 0, 8)
    narrow = fast.Draw(Normal, (SEED, STREAM, False), sigma=0.02)
    with pytest.raises(ValueError, match="buffer size"):
        narrow.generate_bf16(bits(7), 0, 8)
    one = np.ones(1, np.int64)
    with pytest.raises(ValueError, match="bad runs"):
        narrow.generate_runs_bf16(bits(0), one, one)


def digests() -> list[str]:
    """SHA-256 of bfloat16 values of several laws, σ, offsets and runs, by the build that runs."""
    out = []
    starts = np.array([5, 9, 4096, FAR, 70_001], np.int64)
    lengths = np.array([3, 1, 1_500, 2_500, 31], np.int64)
    for sigma, loc in product((0.02, 1.0, 1 / 3, 2.0**-100), (0.0, 0.25)):
        draw = fast.Draw(Normal, (SEED, STREAM, False), loc=loc, sigma=sigma)
        for start, stop in ((0, 20_000), (3, 1_020), (FAR, FAR + 4_099)):
            out_bits = bits(stop - start)
            draw.generate_bf16(out_bits, start, stop)
            out.append(hashlib.sha256(out_bits.tobytes()).hexdigest())
        runs = bits(int(lengths.sum()))
        draw.generate_runs_bf16(runs, starts, lengths)
        out.append(hashlib.sha256(runs.tobytes()).hexdigest())
    return out


@pytest.mark.parametrize("build", ["avx2", "portable"])
def test_every_build_gives_the_same_bfloat16_bytes(build: str) -> None:
    if fast.BUILDS.index(build) >= fast.BUILDS.index(str(fast.isa())):
        pytest.skip(f"this process runs {fast.isa()}: nothing higher to compare {build} with")
    code = (
        "import json, tests.unit.test_kernel_bf16 as t; from service.engines import fast; "
        "print(json.dumps([fast.isa(), t.digests()]))"
    )
    env = {**os.environ, "WEIGHTGEN_KERNEL": build}
    other = subprocess.run(
        [sys.executable, "-c", code], env=env, cwd=ROOT, capture_output=True, text=True, check=True
    )
    isa, theirs = json.loads(other.stdout)
    assert isa == build
    assert theirs == digests()


CENTRAL_LO, CENTRAL_HI = 322_122_547, 3_972_844_748  # the kernel's integer branch test


def bound_ranges() -> list[tuple[int, int]]:
    """Words around the branch boundaries, p = 0.5 and both ends: 2^20 each."""
    half = 1 << 19
    return [(0, 2 * half), (2**32 - 2 * half, 2**32)] + [
        (w - half, w + half) for w in (CENTRAL_LO, 2**31, CENTRAL_HI + 1)
    ]


@pytest.mark.skipif(sys.platform != "linux", reason="builds with gcc and pthreads")
def test_the_bound_program_passes_where_the_branches_meet(tmp_path: Path) -> None:
    from bench import bf16_bound

    binary = tmp_path / "bf16_bound"
    try:
        bf16_bound.build(binary)
    except (OSError, subprocess.CalledProcessError) as e:
        pytest.skip(f"cannot build the bound program here: {e}")
    for first, last in bound_ranges():
        result = bf16_bound.run(binary, first, last, 2)
        if result.returncode == 2:
            pytest.skip(result.stderr.strip())
        assert result.returncode == 0, result.stdout + result.stderr
        assert "branch test mismatches: 0;" in result.stdout
