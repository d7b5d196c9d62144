"""Engines: a registry keyed by the API's names, built once at start-up.

numpy is always there (CPU). torch is imported only when the deployment asks for it
(WEIGHTGEN_ENGINE=torch): it serves the CPU, and CUDA when a device is present.
"""

from __future__ import annotations

from typing import Literal

from service.engines.base import Engine, Sampling
from service.engines.numpy_engine import NumpyEngine
from service.errors import Unavailable, UnsupportedCombination, one_of

EngineName = Literal["numpy", "torch"]
ENGINE_NAMES: tuple[EngineName, ...] = ("numpy", "torch")

__all__ = ["ENGINE_NAMES", "Engine", "EngineName", "Engines", "Sampling"]


class Engines:
    """The engines of this deployment; `select` resolves a request's device to one of them."""

    def __init__(
        self,
        cpu: str = "numpy",
        allowed_devices: tuple[str, ...] = ("cpu", "cuda"),
        threads: int = 1,
    ):
        if cpu not in ENGINE_NAMES:
            raise UnsupportedCombination(
                f"unknown engine {cpu!r}; expected one of {one_of(ENGINE_NAMES)}"
            )
        self.allowed = allowed_devices
        self.numpy = NumpyEngine(threads=threads)
        self.by_name: dict[str, Engine] = {"numpy": self.numpy}
        if cpu == "torch":
            from service.engines.torch_engine import TorchEngine

            self.by_name["torch"] = TorchEngine()
        self.cpu = self.by_name[cpu]

    def devices(self) -> tuple[str, ...]:
        found = {d for e in self.by_name.values() for d in e.devices()}
        return tuple(d for d in ("cpu", "cuda") if d in found and d in self.allowed)

    def select(self, device: str) -> tuple[Engine, str]:
        """(engine, concrete device) for `auto`, `cpu` or `cuda`; a clear error otherwise."""
        available = self.devices()
        if device == "auto":
            device = "cuda" if "cuda" in available else "cpu"
        if device not in available:
            raise Unavailable(
                f"device {device!r} is not available in this deployment (devices: "
                f"{one_of(available)}; engine {self.cpu.name}); CUDA needs WEIGHTGEN_ENGINE=torch "
                "on a machine with a CUDA device",
                retry_after=3600,
            )
        if device == "cuda":
            return self.by_name["torch"], "cuda"
        return self.cpu, "cpu"
