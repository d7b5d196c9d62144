"""The JSON bodies the clients send."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any


def tensor_body(scheme: str, shape: Sequence[int], params: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "scheme": scheme,
        "shape": list(shape),
        **{k: v for k, v in params.items() if v is not None},
    }
