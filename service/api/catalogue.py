"""GET /v1/schemes and GET /v1/presets: the catalogues as JSON, built once from the registries
in `service.schemes` and `service.presets`."""

from __future__ import annotations

import functools
from typing import Any

from service import presets, schemes
from service.dtypes import DTYPES
from service.schemes import PARAMS, RULES, SCHEMES, Scheme

_GAINS = {
    "linear, conv*, conv_transpose*, sigmoid": "1",
    "tanh": "5/3",
    "relu": "√2",
    "leaky_relu": "√(2/(1 + negative_slope²)); slope 0.01 when not given",
    "selu": "3/4",
}


def _param(name: str, default: object) -> dict[str, Any]:
    info = PARAMS[name]
    out: dict[str, Any] = {"name": name, "type": info.type, "description": info.description}
    out["required"] = default is schemes.REQUIRED
    if default is not schemes.REQUIRED:
        out["default"] = default
    if info.choices:
        out["choices"] = list(info.choices)
    if info.minimum is not None:
        out["minimum"] = info.minimum
    if info.exclusive_minimum is not None:
        out["exclusive_minimum"] = info.exclusive_minimum
    return out


def _scheme(s: Scheme) -> dict[str, Any]:
    return {
        "name": s.name,
        "aliases": sorted(a for a, target in schemes.ALIASES.items() if target == s.name),
        "summary": s.summary,
        "formula": s.formula,
        "source": s.source,
        "conventions": {
            conv: {"params": [_param(k, v) for k, v in defaults.items()]}
            for conv, defaults in s.params.items()
        },
    }


@functools.cache
def catalogue() -> dict[str, Any]:
    """The catalogue, built once: the registries are constants. Callers must not mutate it."""
    return {
        "conventions": [
            {
                "name": r.name,
                "framework": r.framework,
                "layout": r.layout,
                "fan_rule": r.fan_rule,
                "clamp": r.clamp,
                "modes": list(r.modes),
                "distributions": list(r.distributions),
                "normal_means": r.normal_means,
                "axes": list(r.axes),
            }
            for r in RULES.values()
        ],
        "default_convention": "keras",
        "schemes": [_scheme(s) for s in SCHEMES.values()],
        "gains": _GAINS,
        "dtypes": {
            d.name: {"itemsize": d.itemsize, "formats": list(d.formats())} for d in DTYPES.values()
        },
    }


@functools.cache
def preset_catalogue() -> dict[str, Any]:
    """Every layer preset, its arguments, their types and defaults; built once, not to mutate."""
    return {
        "presets": [
            {
                "name": p.name,
                "summary": p.summary,
                "args": [
                    {
                        "name": k,
                        "type": kind,
                        **({} if d is presets.REQUIRED else {"default": d}),
                        "required": d is presets.REQUIRED,
                    }
                    for k, (kind, d) in p.args.items()
                ],
            }
            for p in presets.PRESETS.values()
        ]
    }
