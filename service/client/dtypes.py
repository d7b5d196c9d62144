"""The service's dtypes as the client's array libraries name them: numpy's (bfloat16 and the
float8s from ml_dtypes, the types JAX uses) and torch's, which shares the service's names; and
the name behind a safetensors header's dtype code. The client folder works copied alone, so the
service's table (`service.dtypes`) is not imported; numpy and torch are imported only
when asked for (a download needs neither)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np
    import torch

BY_CODE = {"F32": "float32", "F64": "float64", "F16": "float16", "BF16": "bfloat16",
           "F8_E4M3": "float8_e4m3fn", "F8_E5M2": "float8_e5m2", "I64": "int64"}  # fmt: skip


def numpy_dtype(name: str) -> np.dtype[Any]:
    """The numpy dtype of a service dtype name."""
    import ml_dtypes
    import numpy as np

    extra = getattr(ml_dtypes, name, None)
    return np.dtype(extra if extra is not None else name)


def torch_dtype(name: str) -> torch.dtype:
    """The torch dtype of a service dtype name (torch names them alike)."""
    import torch

    if name not in BY_CODE.values():
        raise KeyError(name)
    found: torch.dtype = getattr(torch, name)
    return found
