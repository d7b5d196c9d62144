"""Keras' STFT initializer (issue 18, point 1): against the real keras.initializers.STFT (Keras
3.15, torch backend) for shapes, windows, scalings, sides and periodicity; Keras' refusals as
ours; the same bytes on every engine and in every part; the described moments."""

from __future__ import annotations

import os

import numpy as np
import numpy.typing as npt
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from service.dtypes import DTYPES
from service.engines import Sampling
from service.engines.numpy_engine import NUMPY_DTYPES, NumpyEngine
from service.engines.torch_engine import TorchEngine
from service.errors import LimitExceeded, SchemeError, ShapeError
from service.plan import sampling
from service.schemes import Params, resolve
from service.schemes.stft import MAX_FRAMES
from service.slices import Slice
from service.windows import WINDOWS

os.environ["KERAS_BACKEND"] = "torch"  # before keras is imported (it reads it once)
keras = pytest.importorskip("keras", reason="keras 3 is a dev dependency (pyproject [dev])")
if keras.backend.backend() != "torch":
    pytest.skip("keras was imported earlier with another backend", allow_module_level=True)

NUMPY, TORCH = NumpyEngine(), TorchEngine()
ENGINES: list[NumpyEngine | TorchEngine] = [NUMPY, TORCH]
F64 = npt.NDArray[np.float64]


def params(
    side: str = "real", window: str = "hann", scaling: str = "density", periodic: bool = False
) -> Params:
    return Params(side=side, window=window, scaling=scaling, periodic=periodic)  # type: ignore[arg-type]


def ours(shape: tuple[int, ...], p: Params, dtype: str = "float32") -> Sampling:
    return sampling(resolve("stft", shape, "keras", p), 0, "kernel", DTYPES[dtype])  # type: ignore[index]


def values(s: Sampling, engine: NumpyEngine | TorchEngine = NUMPY) -> npt.NDArray[np.generic]:
    raw = engine.generate(s, 0, s.produced, "cpu")
    return np.frombuffer(raw, dtype=NUMPY_DTYPES[s.dtype.name])


def theirs(shape: tuple[int, ...], p: Params, dtype: str) -> F64:
    none = {"none": None}
    init = keras.initializers.STFT(
        side=p.side,
        window=none.get(str(p.window), p.window),
        scaling=none.get(str(p.scaling), p.scaling),
        periodic=p.periodic,
    )
    return np.asarray(init(shape, dtype=dtype).cpu().numpy(), dtype=np.float64).reshape(-1)


CASES = [
    ((64, 1, 33), params()),
    ((400, 1, 257), params("imag")),
    ((255, 1, 129), params(window="hamming", scaling="spectrum", periodic=True)),
    ((1024, 1, 513), params("imag", "flattop")),
    ((48, 1, 25), params(window="blackman", scaling="none")),
    ((31, 1, 16), params("imag", "triang", periodic=True)),
    ((20, 1, 11), params(window="bartlett")),
    ((9, 1, 5), params("imag", "cosine", "spectrum")),
    ((16, 1, 9), params(window="boxcar")),
    ((17, 1, 9), params("imag", "nuttall", periodic=True)),
    ((33, 1, 17), params(window="blackmanharris")),
    ((64, 1, 33), params(window="none")),
    ((1, 1, 7), params()),
    ((5, 1, 2), params("imag")),
    ((0, 1, 5), params(window="none")),
    ((4, 1, 0), params()),
]


@pytest.mark.parametrize(("shape", "p"), CASES)
def test_equals_keras_stft_in_float64_rounded_once(shape: tuple[int, ...], p: Params) -> None:
    """Every value is Keras' float64 kernel rounded to float32 (1 ulp where Keras' own float64
    arithmetic sits on a rounding boundary); where Keras' is within 1e-12 of 0 (a quarter turn,
    which Keras' float64 π misses by ~1e-17, or blackman's ends, 0.42 − 0.5 + 0.08), so is ours."""
    got = values(ours(shape, p)).astype(np.float64)
    expected = theirs(shape, p, "float64")
    assert got.shape == expected.shape
    tiny = np.abs(expected) < 1e-12
    assert (np.abs(got[tiny]) < 1e-12).all()
    near = expected[~tiny].astype(np.float32).view(np.int32).astype(np.int64)
    ulps = np.abs(got[~tiny].astype(np.float32).view(np.int32).astype(np.int64) - near)
    assert ulps.max(initial=0) <= 1
    assert (ulps == 0).mean() > 0.9999 if ulps.size else True


@pytest.mark.parametrize(("shape", "p"), CASES[:6])
def test_keras_float32_kernel_differs_only_by_its_float32_angle(
    shape: tuple[int, ...], p: Params
) -> None:
    """Keras computes −2·t·(f/N)·π in float32: its error grows with t·f, up to ~2e-4 here."""
    got = values(ours(shape, p)).astype(np.float64)
    expected = theirs(shape, p, "float32")
    assert np.abs(got - expected).max() <= 4e-7 * shape[0]


@pytest.mark.parametrize(("shape", "p"), CASES)
def test_float64_agrees_with_keras_float64_to_1e_12(shape: tuple[int, ...], p: Params) -> None:
    got = values(ours(shape, p, "float64")).astype(np.float64)
    np.testing.assert_allclose(got, theirs(shape, p, "float64"), rtol=0, atol=1e-12)


@pytest.mark.parametrize(("shape", "p"), CASES)
def test_numpy_and_torch_give_the_same_bytes(shape: tuple[int, ...], p: Params) -> None:
    for dtype in ("float32", "float64", "bfloat16"):
        s = ours(shape, p, dtype)
        assert NUMPY.generate(s, 0, s.numel) == TORCH.generate(s, 0, s.numel, "cpu")


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 40), st.integers(2, 40), st.sampled_from(WINDOWS), st.data())
def test_any_part_equals_that_part_of_the_whole(
    frames: int, bins: int, window: str, data: st.DataObject
) -> None:
    s = ours((frames, 1, bins), params(data.draw(st.sampled_from(["real", "imag"])), window))
    whole = values(s).reshape(frames, 1, bins)
    t0 = data.draw(st.integers(0, frames - 1))
    t1 = data.draw(st.integers(t0 + 1, frames))
    f0 = data.draw(st.integers(0, bins - 1))
    f1 = data.draw(st.integers(f0 + 1, bins))
    part = Slice(((t0, t1), (0, 1), (f0, f1)))
    sliced = Sampling(s.distribution, s.shape, s.seed, s.stream, s.dtype, part=part)
    engine = data.draw(st.sampled_from(ENGINES))
    assert np.array_equal(values(sliced, engine).reshape(part.shape), whole[t0:t1, :, f0:f1])


@pytest.mark.parametrize(("shape", "p"), CASES)
def test_the_described_moments_are_the_kernels(shape: tuple[int, ...], p: Params) -> None:
    law = resolve("stft", shape, "keras", p).law
    kernel = theirs(shape, p, "float64")
    assert law.kind == "stft"
    assert law.mean == pytest.approx(kernel.mean() if kernel.size else 0.0, abs=1e-12)
    assert law.effective_std == pytest.approx(kernel.std() if kernel.size else 0.0, abs=1e-12)


def test_the_plan_spells_the_keras_call_and_reports_keras_fans() -> None:
    p = resolve("stft", (512, 1, 257), "keras")
    assert (
        p.rule
        == "keras.initializers.STFT(side='real', window='hann', scaling='density', periodic=False)"
    )
    assert (p.fan_in, p.fan_out, p.mode) == (512.0, 257.0 * 512, None)
    assert p.formula.startswith("w[t, 0, f] = cos(2π·t·f/512)·hann[t]/")
    bare = resolve("stft", (8, 1, 5), "keras", params("imag", "none", "spectrum"))
    assert (
        bare.rule
        == "keras.initializers.STFT(side='imag', window=None, scaling='spectrum', periodic=False)"
    )
    assert bare.notes == ("Keras ignores scaling without a window",)


# --- refusals: Keras' own, and the service's ---------------------------------------------------


def keras_refuses(shape: tuple[int, ...], p: Params) -> bool:
    try:
        kernel = theirs(shape, p, "float32")
    except ValueError:
        return True
    return bool(np.isnan(kernel).any()) or kernel.size != np.prod(shape)


@pytest.mark.parametrize(
    ("shape", "p", "match"),
    [
        ((8, 5), params(), "stft needs a rank 3 shape"),
        ((2, 8, 1, 5), params(), "received rank 4"),
        ((8, 3, 5), params(), r"stft needs shape\[1\] = 1"),
        ((8, 1, 1), params(), r"fft_bins\) = 0 or >= 2"),
        ((0, 1, 5), params(), "refuses length 0"),
        ((2, 1, 5), params(window="hann"), "hann window of length 2"),
        ((2, 1, 5), params(window="bartlett", scaling="spectrum"), "all zeros"),
    ],
)
def test_what_keras_refuses_or_fills_with_nan_is_a_shape_error(
    shape: tuple[int, ...], p: Params, match: str
) -> None:
    assert keras_refuses(shape, p)
    with pytest.raises(ShapeError, match=match):
        resolve("stft", shape, "keras", p)


@pytest.mark.parametrize(
    ("given", "match"),
    [
        ({"window": "tukey"}, "unknown window 'tukey'; expected one of hann, hamming"),
        ({"window": "kaiser"}, "unknown window 'kaiser'"),
        ({"scaling": "power"}, "expected one of density, spectrum, none"),
        ({"side": "both"}, "expected one of real, imag"),
        ({"periodic": 1}, "periodic must be true or false"),
    ],
)
def test_bad_parameters_name_what_is_allowed(given: dict[str, object], match: str) -> None:
    with pytest.raises(SchemeError, match=match):
        resolve("stft", (8, 1, 5), "keras", Params(**given))  # type: ignore[arg-type]


def test_only_keras_defines_it_and_long_frames_are_a_limit() -> None:
    with pytest.raises(SchemeError, match="defined under keras"):
        resolve("stft", (8, 1, 5), "torch")
    with pytest.raises(LimitExceeded, match=f"up to {MAX_FRAMES}"):
        resolve("stft", (MAX_FRAMES + 1, 1, 2), "keras")


def test_keras_also_refuses_the_windows_the_service_does_not_compute_only_partly() -> None:
    """tukey is a window Keras takes and the service refuses (not portable here); kaiser
    Keras refuses too (it needs a parameter)."""
    keras.initializers.STFT(window="tukey")
    with pytest.raises(ValueError, match="must have parameters"):
        keras.initializers.STFT(window="kaiser")


def test_quarter_turns_are_exact_zeros() -> None:
    """cos(2π·t·f/N) is 0 where 4·t·f/N is odd: exactly 0 here, ~1e-17 in Keras' float64."""
    got = values(ours((8, 1, 5), params(window="boxcar", scaling="none"), "float64"))
    kernel = got.reshape(8, 5)
    assert kernel[1, 2] == 0.0  # 2π·2/8 = π/2
    assert abs(theirs((8, 1, 5), params(window="boxcar", scaling="none"), "float64")[7]) > 0


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
@pytest.mark.parametrize(("shape", "p"), CASES[:4])
def test_cuda_gives_the_cpu_bytes(shape: tuple[int, ...], p: Params) -> None:
    s = ours(shape, p)
    assert TORCH.generate(s, 0, s.numel, "cuda") == NUMPY.generate(s, 0, s.numel)
