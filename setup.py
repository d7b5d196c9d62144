"""Builds the optional fused kernel; everything else is in pyproject.toml.

`optional=True`: where no C compiler is available the build goes on without it, and the
numpy engine falls back to its reference path (same bytes, slower).
"""

from setuptools import Extension, setup

setup(
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
    ]
)
