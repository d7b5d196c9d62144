"""The fused kernel's build does not lean on one compiler or platform: `_fastcore.c` carries the
no-FMA pragma itself (clang contracts without it, whatever setup.py passes), and where target
clones cannot build (no ifunc: macOS, musl) setup.py builds again without them, a module that
gives the same bytes. The first build is made to fail here by a source that stops at #error
unless WEIGHTGEN_NO_CLONES is defined; the retried build runs setup.py's own flags."""

from __future__ import annotations

import importlib.machinery
import importlib.util
import re
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
KERNEL = ROOT / "service/engines/_fastcore.c"
SUFFIX = sysconfig.get_config_var("EXT_SUFFIX") or ".so"
# kind, loc, sigma, low, width, (t_lo, t_hi, t_low_cdf, t_mass, t_sign)
CASES = [
    (0, 0.0, 0.03, 0.0, 0.0, (0.0, 0.0, 0.0, 0.0, 1.0)),
    (1, 0.0, 0.1, 0.0, 0.0, (-2.0, 2.0, 0.02275013194817921, 0.9544997361036416, -1.0)),
    (1, 0.0, 1.0, 0.0, 0.0, (37.5, 40.0, 1e-300, 1e-306, -1.0)),  # r > 5, subnormal p
    (2, 0.0, 0.0, -0.1, 0.2, (0.0, 0.0, 0.0, 0.0, 1.0)),
]


def compiler() -> str | None:
    cc = (sysconfig.get_config_var("CC") or "cc").split()[0]
    return shutil.which(cc)


needs_build = pytest.mark.skipif(
    compiler() is None or not (Path(sysconfig.get_paths()["include"]) / "Python.h").exists(),
    reason="needs a C compiler and the Python headers",
)


def load(path: Path) -> ModuleType:
    """The extension at `path`, not registered in sys.modules; its PyInit reads
    WEIGHTGEN_KERNEL once, so each build wanted is a copy of the file under its own name."""
    loader = importlib.machinery.ExtensionFileLoader("_fastcore", str(path))
    spec = importlib.util.spec_from_file_location("_fastcore", path, loader=loader)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


def outputs(core: ModuleType) -> list[bytes]:
    out = []
    for kind, loc, sigma, low, width, trunc in CASES:
        for wide in (0, 1):
            for start in (0, 2**40 + 3):
                n = 4099  # not a whole number of vectors
                buf = np.empty(n, dtype=np.float64 if wide else np.float32)
                core.generate(
                    buf, kind, start, start + n, 12345, 7, wide, loc, sigma, low, width, *trunc
                )
                out.append(buf.tobytes())
    return out


@pytest.fixture(scope="module")
def retried(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """setup.py run on a kernel whose build with clones fails: the module built and the log."""
    work = tmp_path_factory.mktemp("retry")
    (work / "service/engines").mkdir(parents=True)
    shutil.copy(ROOT / "setup.py", work)
    (work / "service/engines/_fastcore.c").write_text(
        f'#ifndef WEIGHTGEN_NO_CLONES\n#error "target_clones unavailable"\n#endif\n'
        f'#include "{KERNEL}"\n'
    )
    run = subprocess.run(
        [sys.executable, "setup.py", "build_ext", "--inplace"],
        cwd=work,
        capture_output=True,
        text=True,
        check=True,
    )
    return work / f"service/engines/_fastcore{SUFFIX}", run.stdout + run.stderr


def test_the_kernel_forbids_contraction_itself() -> None:
    assert re.search(r"^#pragma STDC FP_CONTRACT OFF$", KERNEL.read_text(), re.MULTILINE)


def test_the_kind_constants_are_the_numbers_generate_takes() -> None:
    core = pytest.importorskip("service.engines._fastcore")
    assert (core.KIND_NORMAL, core.KIND_TRUNCATED_NORMAL, core.KIND_UNIFORM) == (0, 1, 2)


@needs_build
def test_setup_builds_again_without_clones_and_warns_nothing(retried: tuple[Path, str]) -> None:
    built, log = retried
    assert "retrying with -DWEIGHTGEN_NO_CLONES" in log
    assert built.exists(), log
    # Python's CFLAGS carry -Wall: gcc's "ignoring #pragma STDC FP_CONTRACT" would show here
    assert not re.search(r"_fastcore\.c:\d+(:\d+)?: warning", log), log


@needs_build
@pytest.mark.parametrize("wanted", ["portable", "avx2", "avx512"])
def test_the_build_without_clones_gives_the_same_bytes(
    retried: tuple[Path, str], wanted: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    installed = pytest.importorskip("service.engines._fastcore")
    copy = tmp_path / f"_fastcore{SUFFIX}"
    shutil.copy(retried[0], copy)
    monkeypatch.setenv("WEIGHTGEN_KERNEL", wanted)
    plain = load(copy)
    if plain.isa != wanted:
        pytest.skip(f"this CPU has no {wanted}")
    assert outputs(plain) == outputs(installed)
