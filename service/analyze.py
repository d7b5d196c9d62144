"""What a scheme does to a signal through depth: a deep MLP initialized by the service itself.

A batch of N(0, 1) inputs goes forward through `len(widths) - 1` bias-free layers,
h_{l+1} = act(h_l · W_l); a N(0, 1) gradient comes back, g_l = (g_{l+1} ⊙ act'(z_l)) · W_lᵀ. The
std of every layer's activations and gradients shows the vanishing or exploding signal that
Glorot and He initialization exist to prevent (Glorot & Bengio 2010, He et al. 2015). Weights,
inputs and gradients all come from algorithm v1, so an analysis is reproducible too.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

import numpy as np
import numpy.typing as npt

from service.engines import Engines
from service.errors import LimitExceeded
from service.plan import Limits, Plan, TensorSpec, plan
from service.schemes import Convention, FanSpec, Params

Activation = Literal["linear", "tanh", "relu", "leaky_relu", "selu", "gelu"]
ACTIVATIONS: tuple[Activation, ...] = get_args(Activation)
F64 = npt.NDArray[np.float64]
SELU_ALPHA, SELU_SCALE = 1.6732632423543772, 1.0507009873554805  # Klambauer et al. 2017
LEAKY_SLOPE = 0.01  # torch.nn.LeakyReLU's default
MAX_BYTES = 256 << 20  # float64 arrays alive at once, as `cost` estimates them
MAX_FLOPS = 1 << 34  # multiply-adds x 2 of the forward and backward matrix products
TEMPORARIES = 8  # batch x width arrays alive at once in a layer (z, h, the activation's own)
GELU_C = math.sqrt(2.0 / math.pi)


def _gelu(z: F64) -> tuple[F64, F64]:
    """GELU, tanh approximation (torch approximate='tanh'), and its derivative."""
    t = np.tanh(GELU_C * (z + 0.044715 * z**3))
    dt = (1 - t * t) * GELU_C * (1 + 3 * 0.044715 * z * z)
    return 0.5 * z * (1 + t), 0.5 * (1 + t) + 0.5 * z * dt


FUNCTIONS: dict[Activation, Callable[[F64], tuple[F64, F64]]] = {
    "linear": lambda z: (z, np.ones_like(z)),
    "tanh": lambda z: (np.tanh(z), 1 - np.tanh(z) ** 2),
    "relu": lambda z: (np.maximum(z, 0), (z > 0).astype(np.float64)),
    "leaky_relu": lambda z: (
        np.where(z > 0, z, LEAKY_SLOPE * z),
        np.where(z > 0, 1.0, LEAKY_SLOPE),
    ),
    "selu": lambda z: (
        SELU_SCALE * np.where(z > 0, z, SELU_ALPHA * np.expm1(np.minimum(z, 0))),
        SELU_SCALE * np.where(z > 0, 1.0, SELU_ALPHA * np.exp(np.minimum(z, 0))),
    ),
    "gelu": _gelu,
}


@dataclass(frozen=True)
class AnalyzeSpec:
    widths: tuple[int, ...]
    activation: Activation
    scheme: str
    convention: Convention = "keras"
    params: Params = field(default_factory=Params)
    fans: FanSpec = field(default_factory=FanSpec)
    batch: int = 256
    seed: int = 0


def _values(p: Plan) -> F64:
    data = p.engine.generate(p.sampling, 0, p.numel, p.device)
    return np.frombuffer(data, dtype="<f8").reshape(p.shape)


def cost(spec: AnalyzeSpec) -> tuple[int, int]:
    """(bytes, flops) of an analysis: every weight and every layer's activation slope is kept
    for the backward pass, plus a layer's temporaries; four products of batch x weights."""
    sizes = [a * b for a, b in zip(spec.widths, spec.widths[1:], strict=False)]
    weights = sum(sizes)
    kept = spec.batch * sum(spec.widths[1:])
    temporaries = TEMPORARIES * spec.batch * max(spec.widths) + max(sizes)  # + one being drawn
    elements = weights + kept + temporaries
    return 9 * elements, 4 * spec.batch * weights  # float64, and an eighth for what is not counted


def check(spec: AnalyzeSpec) -> None:
    """Refuse an analysis whose memory or arithmetic is beyond one request's share."""
    nbytes, flops = cost(spec)
    if nbytes > MAX_BYTES or flops > MAX_FLOPS:
        raise LimitExceeded(
            f"this network ({len(spec.widths) - 1} layers, the widest {max(spec.widths)}, batch "
            f"{spec.batch}) needs about {nbytes >> 20} MiB and {flops / 1e9:.1f} GFLOP; analyze "
            f"takes at most {MAX_BYTES >> 20} MiB and {MAX_FLOPS / 1e9:.1f} GFLOP per request: "
            "use fewer or narrower layers, or a smaller batch"
        )


def analyze(spec: AnalyzeSpec, limits: Limits, engines: Engines) -> dict[str, Any]:
    """Per-layer std of activations (forward) and of input gradients (backward)."""
    check(spec)
    pairs = list(zip(spec.widths, spec.widths[1:], strict=False))
    torch_layout = spec.convention in ("torch", "caffe")  # (out, in) weights

    def tensor(shape: tuple[int, ...], name: str, **kw: Any) -> Plan:
        t = TensorSpec(shape, seed=spec.seed, name=name, dtype="float64", format="raw", **kw)
        return plan(t, limits, engines)

    unit = {"scheme": "normal", "convention": "torch", "params": Params(mean=0.0, std=1.0)}
    h = _values(tensor((spec.batch, spec.widths[0]), "analyze.input", **unit))
    input_std = float(h.std())
    act = FUNCTIONS[spec.activation]
    layers, cache = [], []
    for i, (a, b) in enumerate(pairs):
        shape = (b, a) if torch_layout else (a, b)
        p = tensor(
            shape,
            f"layer.{i}",
            scheme=spec.scheme,
            convention=spec.convention,
            params=spec.params,
            fans=spec.fans,
        )
        w = _values(p).T if torch_layout else _values(p)
        z = h @ w
        h, slope = act(z)
        cache.append((w, slope))
        layers.append(
            {
                "layer": i + 1,
                "fan_in": p.scheme.fan_in,
                "fan_out": p.scheme.fan_out,
                "weight_std": p.scheme.law.effective_std,
                "activation_std": float(h.std()),
            }
        )
    g = _values(tensor((spec.batch, spec.widths[-1]), "analyze.gradient", **unit))
    for i in reversed(range(len(pairs))):
        w, slope = cache[i]
        g = (g * slope) @ w.T
        layers[i]["gradient_std"] = float(g.std())
    return {"input_std": input_std, "layers": layers}
