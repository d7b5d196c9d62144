"""Building the largest orthogonal tensor (2048x2048, MAX_QR_ELEMENTS): seconds and peak RSS
above the process's start, with the normals drawn by the fused kernel and by the reference
path (the same values), each in a fresh process, since peak RSS only grows.

    OPENBLAS_NUM_THREADS=1 .venv/bin/python -m bench.structured
"""

from __future__ import annotations

import json
import subprocess
import sys

CHILD = """
import json, resource, sys, time
from service import schemes
from service.dtypes import DTYPES
from service.engines import fast, structured
from service.plan import sampling as sampling_of
from service.engines.numpy_engine import NumpyOps

def sampling(shape):
    return sampling_of(schemes.resolve("orthogonal", shape, "torch"), 1, "w", DTYPES["float32"])

draw = fast.standard_normals if sys.argv[1] == "kernel" else None
ops = NumpyOps()
structured.tensor(ops, sampling((20, 20)), draw)  # imports and first calls out of the way
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
began = time.perf_counter()
structured.tensor(ops, sampling((2048, 2048)), draw)
seconds = time.perf_counter() - began
rise = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
print(json.dumps({"seconds": seconds, "rise_mib": rise / 1024}))
"""


def main() -> None:
    print("| normals drawn by | seconds | peak RSS rise |\n|---|---:|---:|")
    for how in ("kernel", "reference"):
        out = subprocess.run(
            [sys.executable, "-c", CHILD, how], capture_output=True, text=True, check=True
        ).stdout
        r = json.loads(out)
        print(f"| {how} | {r['seconds']:.2f} | {r['rise_mib']:.0f} MiB |")


if __name__ == "__main__":
    main()
