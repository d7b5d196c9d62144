"""Builds the optional fused kernel; everything else is in pyproject.toml.

`optional=True`: where no C compiler is available the build goes on without it, and the
numpy engine falls back to its reference path (same bytes, slower).
"""

import sys

# setuptools ships no type information here (mypy checks service, tests and bench, not this)
from setuptools import Extension, setup  # type: ignore[import-untyped]
from setuptools.command.build_ext import build_ext  # type: ignore[import-untyped]
from setuptools.errors import CCompilerError  # type: ignore[import-untyped]

NO_CLONES = "WEIGHTGEN_NO_CLONES"


class BuildKernel(build_ext):  # type: ignore[misc]
    """Target clones need ifunc (glibc ELF): on macOS or musl the first build fails, and
    without this retry the optional extension would be dropped, so the slow reference path
    would run where the kernel builds fine without clones."""

    def build_extension(self, ext: Extension) -> None:
        if sys.byteorder == "big":  # the module would refuse to import anyway (_fastcore.c)
            self.warn(f"{ext.name}: big-endian host, not built; the reference path is used")
            return
        try:
            super().build_extension(ext)
        except CCompilerError as first:
            if any(name == NO_CLONES for name, _ in ext.define_macros):
                raise
            self.warn(f"{ext.name}: build failed ({first}); retrying with -D{NO_CLONES}")
            ext.define_macros.append((NO_CLONES, None))
            super().build_extension(ext)  # a second failure skips it, as optional=True says


setup(
    cmdclass={"build_ext": BuildKernel},
    ext_modules=[
        Extension(
            "service.engines._fastcore",
            ["service/engines/_fastcore.c"],
            # bit-identity with the reference: no contraction into FMA, no fast-math. The two
            # -fno-* flags change no result: sqrt still rounds correctly without errno, and
            # without traps the selects of both AS241 branches may be if-converted (vectorized).
            # -fno-wrapv undoes Python's -fwrapv (no signed arithmetic here overflows): with it
            # the AVX-512 normal loop was slower (docs/decisions.md)
            extra_compile_args=[
                "-O3",
                "-std=c11",
                "-ffp-contract=off",
                "-fno-fast-math",
                "-fno-math-errno",
                "-fno-trapping-math",
                "-fno-wrapv",
            ],
            optional=True,
        )
    ],
)
