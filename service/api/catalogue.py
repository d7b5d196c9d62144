"""GET /v1/schemes, GET /v1/presets and GET /v1/recipes: the catalogues as JSON, built once from
the registries in `service.schemes`, `service.presets` and `service.recipes`."""

from __future__ import annotations

import functools
from typing import Any

from service import presets, recipes, schemes
from service.arguments import declared
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
    """A parameter's declaration, with this scheme's default under one convention."""
    described = PARAMS[name].describe()  # its own default is None: "not given"
    out = {k: described[k] for k in ("name", "type", "description")}
    out["required"] = default is schemes.REQUIRED
    if default is not schemes.REQUIRED:
        out["default"] = default
    keys = ("choices", "minimum", "exclusive_minimum", "maximum", "min_items", "max_items")
    return out | {k: described[k] for k in keys if k in described}


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
    """Every layer preset, its arguments (their declarations: type, meaning, default, bounds,
    and the framework's own name for each, null where the layer reads it from its input);
    built once, not to mutate."""
    return {
        "presets": [
            {
                "name": p.name,
                "summary": p.summary,
                "args": [
                    {**d.describe(), "framework_name": d.framework_name} for d in declared(p.args)
                ],
            }
            for p in presets.PRESETS.values()
        ]
    }


@functools.cache
def recipe_catalogue() -> dict[str, Any]:
    """Every model recipe: the stack and version it follows, the config fields it reads (their
    declarations, with the stack's defaults) and, per parameter group, the law, its formula and
    the upstream source (file:line); built once, not to mutate."""
    return {
        "recipes": [
            {
                "name": r.name,
                "summary": r.summary,
                "stack": r.stack,
                "version": r.version,
                "model": r.model,
                "model_type": r.model_type,
                "config": r.fields(),
                "groups": [g.describe() for g in r.groups],
                "dcp_prefix": r.dcp_prefix,
            }
            for r in recipes.RECIPES.values()
        ]
    }
