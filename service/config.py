"""Deployment settings, read from the environment with the prefix WEIGHTGEN_."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from service import cpus


class Settings(BaseSettings):
    """One object, built once at start-up and passed to `create_app`."""

    model_config = SettingsConfigDict(env_prefix="WEIGHTGEN_", extra="forbid", frozen=True)

    host: str = "127.0.0.1"
    port: int = Field(8000, ge=0, le=65535)
    max_elements: int = Field(2**32, ge=1, description="elements per tensor")
    max_bytes: int = Field(2**34, ge=1, description="payload bytes per tensor")
    max_streams: int = Field(4, ge=1, description="tensor streams generated at once")
    slot_wait: float = Field(
        5.0,
        ge=0,
        le=60,
        description="seconds a stream may wait for a free generation slot, first come first "
        "served, before its 503 (0: at once); at most 4 x WEIGHTGEN_MAX_STREAMS wait",
    )
    block_elements: int = Field(1 << 20, ge=1024, description="elements generated per block")
    max_body_bytes: int = Field(1 << 20, ge=1024, description="request body size")
    plan_cache_bytes: int = Field(
        32 << 20, ge=0, description="memory for the plans of repeated GET URLs (0: none kept)"
    )
    engine: Literal["numpy", "torch"] = Field(
        "numpy", description="CPU engine; torch also serves CUDA when a device is present"
    )
    devices: tuple[Literal["cpu", "cuda"], ...] = Field(
        ("cpu", "cuda"), description="devices a request may ask for"
    )
    threads: int = Field(
        default_factory=lambda: min(cpus.available(), 256),
        ge=1,
        le=256,
        description="threads of the fused CPU kernel per block (default: the CPUs this process "
        "may use, its affinity mask and cgroup CPU quota)",
    )
    api_keys: list[str] = Field(
        [], description="bearer keys for /v1 (JSON list); none: the service is open"
    )
    cors_origins: list[str] = Field([], description="origins allowed by CORS (JSON list)")
    send_timeout: float = Field(
        60.0, gt=0, description="seconds a client may take to accept 1 MiB before it is dropped"
    )
    shutdown_timeout: int = Field(
        30, ge=0, description="seconds streams in flight may take to finish on SIGTERM"
    )
    log_level: Literal["critical", "error", "warning", "info", "debug"] = "info"
    cache_visibility: Literal["auto", "public", "private"] = Field(
        "auto",
        description="Cache-Control of pinned answers: public (shared caches may keep them), "
        "private (only the client's own cache), or auto: private when API keys are set",
    )
    max_header_bytes: int = Field(
        32 << 10, ge=1024, description="request line and headers together (nginx: 4 x 8 KiB)"
    )
    header_timeout: float = Field(
        10.0, gt=0, description="seconds a client may take to send its request line and headers"
    )
    body_timeout: float = Field(
        30.0, gt=0, description="seconds a client may leave a request body stalled"
    )
    max_analyses: int = Field(2, ge=1, description="POST /v1/analyze requests computed at once")
    malloc_mmap_threshold: int = Field(
        128 << 10,
        ge=0,
        description="glibc mmap threshold in bytes, pinned so freed stream buffers go back to "
        "the system (0: glibc's own dynamic threshold)",
    )

    @field_validator("api_keys")
    @classmethod
    def _keys_are_not_blank(cls, keys: list[str]) -> list[str]:
        blank = [i for i, k in enumerate(keys) if not k.strip() or k != k.strip()]
        if blank:
            raise ValueError(
                f"API keys must be non-empty and without surrounding whitespace; keys at "
                f"positions {blank} are not (an empty key would accept 'Authorization: Bearer ')"
            )
        return keys
