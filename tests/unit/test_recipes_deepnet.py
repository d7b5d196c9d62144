"""service.recipes.torchscale: `torchscale.deepnet` against torchscale 0.3.0's own Decoder
(DecoderConfig(deepnorm=True)), built on the CPU. For a tiny config, one with every option on, a
shared embedding, bert_init with and without the tie and no output layer: names, shapes and order
against the model's state dict, the count, each law against a table read from torchscale's
source (below, cited, independent of the recipe code), DeepNorm's division checked bit for bit
against the same model without it, and a bundle fetched over HTTP that loads strictly into the
real model, in its dtype, with every random tensor KS-indistinguishable from the model's own
init (pooled over seeds where small), constants and padding rows exact, the tie byte-equal and
the describe's bounds and stds the formulas. Also what torchscale does not call (the xavier
`reset_parameters`), the fields that shape no tensor, the refusals (422s), the catalogue row and
the cited sources (against the repository at git 881d0307 where a mirror is present).

torchscale imports timm only for DropPath's `drop_path` (droppath.py:5), a forward-time function
no init touches; timm 0.6.13 (torchscale's pin) imports torchvision, whose wheels replace the CPU
torch. Where timm is absent a stand-in module is put in its place while torchscale is imported
(its drop_path raises), so the real decoder code runs unchanged."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import math
import subprocess
import sys
import types
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from service import recipes
from service.presets.base import Member
from tests.integration.test_bundles import member_bytes
from tests.support import assert_loads_strictly, cited, layout, members_layout

REASON = ("torchscale is not installed: make stacks installs torchscale==0.3.0 and "
          "fairscale==0.4.0 with --no-deps (docs/recipes.md, Testing)")  # fmt: skip
pytest.importorskip("fairscale", reason=REASON)
torchscale = pytest.importorskip("torchscale", reason=REASON)


def _drop_path(*_args: object, **_kwargs: object) -> object:
    raise RuntimeError("timm stand-in: drop_path is forward-time and not used by these tests")


def _timm_stand_in() -> dict[str, types.ModuleType]:
    modules = {n: types.ModuleType(n) for n in ("timm", "timm.models", "timm.models.layers")}
    modules["timm.models.layers"].drop_path = _drop_path  # type: ignore[attr-defined]
    return modules


with pytest.MonkeyPatch.context() as patch:
    if importlib.util.find_spec("timm") is None:
        for _name, _module in _timm_stand_in().items():
            patch.setitem(sys.modules, _name, _module)
    from torchscale.architecture.config import DecoderConfig
    from torchscale.architecture.decoder import Decoder
    from torchscale.component.embedding import TextEmbedding
    from torchscale.component.multihead_attention import MultiheadAttention

import safetensors.torch  # noqa: E402
import scipy.stats  # noqa: E402
import torch  # noqa: E402

RECIPE = "torchscale.deepnet"
ROOT = Path(torchscale.__file__).parents[1]  # site-packages: the cites start at torchscale/
COMMIT = "881d03079da7b0c52ba0a473c70faac47042efc8"  # the git commit whose files 0.3.0 ships
MIRROR = Path("/work/.mirror/microsoft+torchscale/repo")  # the `fetch` tool's copy, if present

# --- configs -----------------------------------------------------------------------------------

TINY: dict[str, Any] = {"vocab_size": 50, "decoder_embed_dim": 32, "decoder_layers": 2,
                        "decoder_attention_heads": 4, "decoder_ffn_embed_dim": 48}  # fmt: skip
# every option on (untied), bfloat16, and fields that shape no tensor
OPTIONS: dict[str, Any] = {
    **TINY, "decoder_layers": 3, "embed_tokens": True, "padding_idx": 1,
    "layernorm_embedding": True, "multiway": True, "rel_pos_buckets": 8, "max_rel_pos": 64,
    "activation_fn": "swish", "dtype": "bfloat16", "dropout": 0.1, "layernorm_eps": 1e-6,
}  # fmt: skip
SHARED: dict[str, Any] = {**TINY, "decoder_layers": 1, "embed_tokens": True, "padding_idx": 0,
                          "share_decoder_input_output_embed": True}  # fmt: skip
BERT: dict[str, Any] = {**TINY, "bert_init": True, "embed_tokens": True, "padding_idx": 3,
                        "rel_pos_buckets": 4, "max_rel_pos": 16}  # fmt: skip
# bert_init and a shared weight: the output Linear re-draws the embedding, padding row included
BERT_SHARED: dict[str, Any] = {**BERT, "share_decoder_input_output_embed": True}
HEADLESS: dict[str, Any] = {**TINY, "no_output_layer": True, "decoder_layers": 4}
CONFIGS: Mapping[str, Mapping[str, Any]] = {
    "tiny": TINY, "options": OPTIONS, "shared": SHARED, "bert": BERT,
    "bert_shared": BERT_SHARED, "headless": HEADLESS,
}  # fmt: skip
KINDS = tuple(CONFIGS)
OWN = ("embed_tokens", "padding_idx", "dtype")  # the recipe's besides DecoderConfig's


def decoder_config(given: Mapping[str, Any]) -> Any:
    """DecoderConfig(deepnorm=True, **given): it pops the keys it knows and drops the rest."""
    return DecoderConfig(**{"deepnorm": True, **{k: v for k, v in given.items() if k not in OWN}})


def build(given: Mapping[str, Any], device: str = "cpu") -> Any:
    """Decoder(args, embed_tokens=TextEmbedding(...) with `embed_tokens`), in `dtype`."""
    cfg = decoder_config(given)
    with torch.device(device):
        embed = None
        if given.get("embed_tokens"):
            pad = given.get("padding_idx")
            embed = TextEmbedding(cfg.vocab_size, cfg.decoder_embed_dim, pad)
        model = Decoder(cfg, embed_tokens=embed)
    dtype = given.get("dtype")
    return model.to(getattr(torch, dtype)) if dtype else model


# --- the law table, read from torchscale 0.3.0's source (not from service.recipes) -------------
# multihead_attention.py:40-45   k, v, q, out_proj = nn.Linear(embed_dim, embed_dim, bias=True)
# multihead_attention.py:58-63   reset_parameters (xavier_uniform_, gain 1/√2): never called
# feedforward_network.py:121-122 fc1 = nn.Linear(d, ffn), fc2 = nn.Linear(ffn, d)
# torch/nn/modules/linear.py:117-128  kaiming_uniform_(a=√5); bias U(±1/√fan_in)
# decoder.py:282-283, utils.py:10-33  bert_init: Linear N(0, 0.02), bias 0; Embedding N(0, 0.02)
#                                      then the padding row 0
# decoder.py:285-297  deepnorm: init_scale = math.pow(8.0 * decoder_layers, 0.25); every param
#                     whose name holds fc1, fc2, out_proj or v_proj: p.data.div_(init_scale)
# decoder.py:319-332  shared: output_projection.weight = embed_tokens.weight; else
#                     normal_(std=decoder_embed_dim**-0.5)
# embedding.py:93-96  TextEmbedding: normal_(std=embedding_dim**-0.5), padding row 0
# relative_position_bias.py:19  nn.Embedding(num_buckets, n_heads): N(0, 1)
SCALED = ("fc1", "fc2", "out_proj", "v_proj")  # decoder.py:291-296
Law = tuple[str, Any]


def kaiming_bound(fan_in: int) -> float:
    """torch kaiming_uniform_(a=√5)'s bound, by torch's own functions."""
    gain = torch.nn.init.calculate_gain("leaky_relu", math.sqrt(5))
    return math.sqrt(3.0) * (gain / math.sqrt(fan_in))


def expected_law(name: str, cfg: Any) -> Law:
    d, bert = cfg.decoder_embed_dim, cfg.bert_init
    div = math.pow(8.0 * cfg.decoder_layers, 0.25) if any(k in name for k in SCALED) else 1.0
    if "layer_norm" in name or name.startswith("layernorm_embedding"):
        return ("ones", None) if name.endswith(".weight") else ("zeros", None)
    if name == "output_projection.weight" and cfg.share_decoder_input_output_embed:
        return "tied", None
    if name in ("output_projection.weight", "embed_tokens.weight"):
        return "normal", 0.02 if bert else d**-0.5
    if name.endswith("relative_attention_bias.weight"):
        return "normal", 0.02 if bert else 1.0
    fan_in = cfg.decoder_ffn_embed_dim if ".fc2." in name else d
    if bert:
        return ("zeros", None) if name.endswith(".bias") else ("normal", 0.02 / div)
    if name.endswith(".bias"):
        return "uniform", 1 / math.sqrt(fan_in) / div
    return "uniform", kaiming_bound(fan_in) / div


def law_of(m: Member) -> Law:
    """The recipe member's law, in the table's terms (its scheme resolved as planned)."""
    from service import schemes

    if m.tied_to is not None:
        return "tied", None
    if m.scheme in ("zeros", "ones"):
        return m.scheme, None
    law = schemes.resolve(m.scheme, m.shape, m.convention, m.params).law
    if law.kind == "uniform":
        return "uniform", law.limit
    return law.kind, law.stddev


def padding_row(given: Mapping[str, Any]) -> int | None:
    """The row of embed_tokens that is zero: padding_idx, unless bert_init and the tie re-draw
    it (Module.apply reaches output_projection after embed_tokens)."""
    redrawn = given.get("bert_init") and given.get("share_decoder_input_output_embed")
    return None if redrawn else given.get("padding_idx")


# --- names, shapes, order, counts ---------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_names_shapes_and_order_are_the_decoders_state_dict(kind: str) -> None:
    given = CONFIGS[kind]
    members, _ = recipes.members(RECIPE, given)
    model = build(given)
    assert type(model).__name__ == recipes.lookup(RECIPE).model == "Decoder"
    assert members_layout(members) == layout(model.state_dict())
    assert recipes.count(RECIPE, given) == len(members)
    assert [m.name for m in members if m.tied_to] == (
        ["output_projection.weight"] if kind in ("shared", "bert_shared") else []
    )


def test_defaults_are_decoderconfigs_and_the_readme_model_has_its_size() -> None:
    """{} is DecoderConfig(deepnorm=True): 12 layers of width 768, no vocabulary, so no output
    projection; README's DecoderConfig(vocab_size=64000) adds it: 134,206,464 parameters."""
    for given, params in (({}, 85_054_464), ({"vocab_size": 64000}, 134_206_464)):
        members, ignored = recipes.members(RECIPE, given)
        assert ignored == ()
        model = build(given, "meta")
        assert members_layout(members) == layout(model.state_dict())
        ours = sum(math.prod(m.shape) for m in members)
        assert ours == sum(p.numel() for p in model.parameters()) == params


@pytest.mark.parametrize("layers", [0, 1, 3])
@pytest.mark.parametrize("flag", [False, True])
def test_count_is_the_expansion(layers: int, flag: bool) -> None:
    config = {"decoder_layers": layers, "vocab_size": 10 if flag else -1, "embed_tokens": flag,
              "multiway": flag, "layernorm_embedding": flag, "rel_pos_buckets": 4,
              "max_rel_pos": 8 if flag else 0, "decoder_embed_dim": 8,
              "decoder_attention_heads": 2}  # fmt: skip
    assert recipes.count(RECIPE, config) == len(recipes.members(RECIPE, config)[0])


# fields DecoderConfig has that change no tensor of a deepnorm decoder (subln and
# decoder_normalize_before: deepnorm forces both false, config.py:121-123)
UNREAD: dict[str, Any] = {
    "dropout": 0.3, "drop_path_rate": 0.2, "attention_dropout": 0.1, "activation_dropout": 0.1,
    "no_scale_embedding": False, "layernorm_eps": 1e-3, "max_target_positions": 7,
    "checkpoint_activations": True, "fsdp": True, "ddp_rank": 3, "subln": True,
    "decoder_normalize_before": True, "moe_expert_count": 4, "moe_top1_expert": True,
    "xpos_scale_base": 64, "moe_gating_use_fp32": False,
}  # fmt: skip


def test_the_fields_it_does_not_read_shape_no_tensor() -> None:
    model = build(TINY, "meta")
    members = recipes.members(RECIPE, TINY)[0]
    for key, value in UNREAD.items():
        other = build({**TINY, key: value}, "meta").state_dict()
        assert layout(other) == layout(model.state_dict()), key
        got, ignored = recipes.members(RECIPE, {**TINY, key: value})
        assert ignored == (key,)
        assert got == members


def test_the_describe_answer_lists_the_ignored_fields(client: TestClient) -> None:
    body = {"seed": 0, "recipe": RECIPE, "config": {**OPTIONS, "subln": True}}
    r = client.post("/v1/bundles/describe", json=body)
    assert r.status_code == 200, r.text
    assert r.json()["ignored_config"] == ["dropout", "layernorm_eps", "subln"]
    assert {t["dtype"] for t in r.json()["tensors"]} == {"bfloat16"}


# --- laws ------------------------------------------------------------------------------------


def test_multihead_attentions_reset_parameters_is_never_called(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The xavier_uniform_(gain 1/√2) of multihead_attention.py:58-63 is dead code in 0.3.0:
    building the decoder never calls it, so the projections keep nn.Linear's init."""
    calls: list[object] = []
    monkeypatch.setattr(MultiheadAttention, "reset_parameters", lambda self: calls.append(self))
    for kind in KINDS:
        build(CONFIGS[kind])
    assert calls == []


def test_deepnorm_divides_those_names_by_8m_to_the_quarter() -> None:
    """Against the same decoder built from the same seed without DeepNorm (and without sub-LN,
    which adds tensors): fc1, fc2, out_proj, v_proj, weights and biases, are that model's
    divided by math.pow(8.0·M, 0.25), bit for bit; every other tensor is the same."""
    given = {**TINY, "decoder_layers": 3, "multiway": True}
    torch.manual_seed(7)
    deep = build(given).state_dict()
    torch.manual_seed(7)
    plain = build({**given, "deepnorm": False, "subln": False}).state_dict()
    s = math.pow(8.0 * 3, 0.25)
    assert set(deep) < set(plain)  # plain adds the final pre-LN layer_norm
    for name, tensor in deep.items():
        scaled = any(k in name for k in SCALED)
        assert torch.equal(tensor, plain[name] / s if scaled else plain[name]), name
    assert sum(any(k in n for k in SCALED) for n in deep) == 3 * 12


@pytest.mark.parametrize("kind", KINDS)
def test_each_law_is_what_the_decoder_applies(kind: str) -> None:
    """The recipe's law of every tensor equals the table read from torchscale's source, and the
    table holds for the model torchscale builds (bounds, constants, padding rows, the tie)."""
    given = CONFIGS[kind]
    cfg = decoder_config(given)
    torch.manual_seed(0)
    model = build(given)
    state = model.state_dict()
    for m in recipes.members(RECIPE, given)[0]:
        law, number = expected_law(m.name, cfg)
        assert m.convention == "torch"
        assert law_of(m) == (law, number), m.name
        real = state[m.name]
        if law == "uniform":
            top = float(real.double().abs().max())
            assert 0.7 * number < top <= number * (1 + torch.finfo(real.dtype).eps), m.name
        elif law in ("zeros", "ones"):
            assert torch.all(real == (1.0 if law == "ones" else 0.0)), m.name
        elif law == "tied":
            assert model.output_projection.weight is model.embed_tokens.weight
            assert m.tied_to == "embed_tokens.weight"
        if m.name == "embed_tokens.weight":
            row = padding_row(given)
            assert m.zero_rows == (() if row is None else (row,))
            zero = (real == 0).all(dim=1).nonzero().flatten().tolist()
            assert zero == ([] if row is None else [row])


# --- over HTTP: the bundle against the real model ---------------------------------------------

SEEDS = (31, 32, 33, 34)  # the bundle's seeds; the model's: torch.manual_seed(0 … 3)
SMALL = 2000  # a tensor with fewer elements is pooled over every seed for its KS test


def describe(client: TestClient, body: dict[str, Any]) -> dict[str, Any]:
    r = client.post("/v1/bundles/describe", json=body)
    assert r.status_code == 200, r.text
    out: dict[str, Any] = r.json()
    return out


def ks_p(ours: list[torch.Tensor], theirs: list[torch.Tensor]) -> float:
    a, b = (torch.cat([t.double().flatten() for t in ts]).numpy() for ts in (ours, theirs))
    return float(scipy.stats.ks_2samp(a, b).pvalue)


def check_numbers(t: dict[str, Any], law: str, number: Any) -> None:
    """The describe's bound (uniform) or std (normal) is the table's formula."""
    plan = t["plan"]
    if law == "uniform":
        assert plan["limit"] == pytest.approx(number, rel=1e-15, abs=0.0), t["name"]
        assert (plan["low"], plan["high"]) == (-plan["limit"], plan["limit"])
    elif law == "normal":
        assert (plan["kind"], plan["mean"]) == ("normal", 0)
        assert plan["stddev"] == pytest.approx(number, rel=1e-15, abs=0.0), t["name"]


@pytest.mark.parametrize("kind", KINDS)
def test_a_bundle_loads_strictly_and_draws_as_the_decoder_does(
    client: TestClient, kind: str
) -> None:
    config = CONFIGS[kind]
    cfg = decoder_config(config)
    described = [describe(client, {"seed": s, "recipe": RECIPE, "config": config}) for s in SEEDS]
    blobs = [client.get(d["url"]).content for d in described]
    bundles = [safetensors.torch.load(b) for b in blobs]
    models = []
    for s in range(len(SEEDS)):
        torch.manual_seed(s)
        models.append(build(config).state_dict())
    theirs = models[0]
    assert_loads_strictly(build(config), bundles[0], theirs)
    for t in described[0]["tensors"]:
        name, (law, number) = t["name"], expected_law(t["name"], cfg)
        assert (t["tied_to"] is not None) == (law == "tied"), name
        check_numbers(t, law, number)
        if law in ("zeros", "ones"):
            assert torch.equal(bundles[0][name], theirs[name]), name  # exact, in the dtype
        elif law == "tied":
            assert member_bytes(blobs[0], name) == member_bytes(blobs[0], t["tied_to"])
        else:
            n = 1 if theirs[name].numel() >= SMALL else len(SEEDS)
            p = ks_p([b[name] for b in bundles[:n]], [m[name] for m in models[:n]])
            assert p > 1e-4, (name, p)
    if (row := padding_row(config)) is not None:
        assert bool((bundles[0]["embed_tokens.weight"][row] == 0).all())


def test_the_ks_check_tells_the_papers_xavier_apart(client: TestClient) -> None:
    """The test above has power where the docs' claim lies: k_proj (d = 256) drawn by the
    recipe matches the decoder's U(±1/√d), not xavier_uniform_ with gain 1/√2 (reset_parameters,
    which would give U(±√(3/(2d))))."""
    config = {**TINY, "decoder_embed_dim": 256, "decoder_layers": 1}
    name = "layers.0.self_attn.k_proj.weight"
    d = describe(client, {"seed": 5, "recipe": RECIPE, "config": config})
    ours = [safetensors.torch.load(client.get(d["url"]).content)[name]]
    torch.manual_seed(5)
    theirs = [build(config).state_dict()[name]]
    xavier = [torch.nn.init.xavier_uniform_(torch.empty(256, 256), gain=1 / math.sqrt(2))]
    assert ks_p(ours, theirs) > 1e-4
    assert ks_p(ours, xavier) < 1e-4


# --- refusals ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("config", "text"),
    [
        ({"decoder_embed_dim": 0}, "torchscale.deepnet config needs decoder_embed_dim >= 1"),
        ({"decoder_layers": 10001}, "decoder_layers >= 0 and <= 10000"),
        ({"vocab_size": -2}, "vocab_size >= -1"),
        ({"padding_idx": -1}, "padding_idx >= 0"),
        ({"multiway": "yes"}, "multiway must be true or false"),
        ({"activation_fn": "tanh"}, "unknown torchscale.deepnet config argument activation_fn"),
        ({"decoder_ffn_embed_dim": 1.5}, "decoder_ffn_embed_dim must be an integer"),
        ({"model_type": "gpt2"}, "model_type must be 'torchscale.deepnet'"),
        ({"deepnorm": False}, "deepnorm false: torchscale.deepnet is the DeepNorm decoder"),
        ({"moe_freq": 2}, "moe_freq=2: mixture-of-experts layers"),
        ({"xpos_rel_pos": True}, "XPOS's persistent scale buffer"),
        ({"decoder_embed_dim": 10, "decoder_attention_heads": 4},
         "decoder_embed_dim=10 must be divisible by decoder_attention_heads=4"),
        ({"embed_tokens": True}, "embed_tokens needs vocab_size >= 1; received -1"),
        ({"vocab_size": 9, "share_decoder_input_output_embed": True},
         "share_decoder_input_output_embed needs embed_tokens"),
        ({"vocab_size": 9, "embed_tokens": True, "padding_idx": 9},
         "padding_idx=9 must be below vocab_size=9"),
    ],
)  # fmt: skip
def test_bad_values_are_422s_naming_the_field(
    client: TestClient, config: dict[str, Any], text: str
) -> None:
    r = client.post("/v1/bundles/describe", json={"recipe": RECIPE, "config": config})
    assert r.status_code == 422, r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert text in r.json()["detail"]


def test_what_is_refused_torchscale_refuses_or_builds_otherwise() -> None:
    """The refused configs: torchscale raises, or builds tensors this recipe has not. (Its MoE
    layers need a torch.distributed group even on one process: get_moe_group is None.)"""
    small = {**TINY, "decoder_layers": 1}
    for given, error in (
        ({**small, "share_decoder_input_output_embed": True}, AttributeError),
        ({**small, "activation_fn": "tanh"}, NotImplementedError),
        ({**small, "embed_tokens": True, "padding_idx": 50}, AssertionError),
        ({**small, "moe_freq": 1, "moe_expert_count": 2}, TypeError),
    ):
        with pytest.raises(error):
            build(given)
    base = set(build(small, "meta").state_dict())
    extra = {
        "deepnorm": {"layers.0.self_attn.inner_attn_ln.weight", "layer_norm.weight"},
        "xpos_rel_pos": {"layers.0.self_attn.xpos.scale"},
    }
    for key, names in extra.items():
        value = key != "deepnorm"
        assert names <= set(build({**small, key: value}, "meta").state_dict()) - base, key


# --- the catalogue and its sources ------------------------------------------------------------


def test_the_catalogue_lists_the_recipe_with_its_fields_and_laws(client: TestClient) -> None:
    rows = {r["name"]: r for r in client.get("/v1/recipes").json()["recipes"]}
    row = rows[RECIPE]
    assert (row["stack"], row["version"], row["model"], row["model_type"]) == (
        "torchscale", importlib.metadata.version("torchscale"), "Decoder", RECIPE)  # fmt: skip
    defaults = {f["name"]: f.get("default") for f in row["config"]}
    reference = DecoderConfig()
    for name in set(defaults) - {"deepnorm", "embed_tokens", "padding_idx", "dtype",
                                 "torch_dtype"}:  # fmt: skip
        assert defaults[name] == getattr(reference, name), name
    assert (defaults["deepnorm"], reference.deepnorm) == (True, False)  # the recipe's one change
    assert (defaults["embed_tokens"], defaults["padding_idx"]) == (False, None)
    assert {g["law"] for g in row["groups"]} == {"uniform", "normal", "tied", "ones", "zeros"}
    assert all(g["formula"] and ":" in g["source"] for g in row["groups"])


# what each group's cited lines must say (a group is found by a piece of its `tensors`)
SAYS = {
    "{k,q}_proj.weight": ["self.k_proj = MultiwayWrapper(args, nn.Linear(embed_dim, embed_dim, "
                          "bias=True))", "def reset_parameters(self):",
                          "nn.init.xavier_uniform_(self.q_proj.weight, gain=1 / math.sqrt(2))",
                          "init.kaiming_uniform_(self.weight, a=math.sqrt(5))",
                          "normal_(module.q_proj.weight.data)", "self.B.reset_parameters()"],
    "{k,q}_proj.bias": ["bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0",
                        "init.uniform_(self.bias, -bound, bound)", "module.bias.data.zero_()"],
    "{v,out}_proj.weight": ["init_scale = math.pow(8.0 * args.decoder_layers, 0.25)",
                            'or "v_proj" in name', "p.data.div_(init_scale)",
                            "self.fc1 = nn.Linear(self.embed_dim, ffn_dim)"],
    "fc2.weight": ["self.fc2 = nn.Linear(ffn_dim, self.embed_dim)", '"fc2" in name',
                   "p.data.div_(init_scale)"],
    "ffn.fc1.bias": ["for name, p in self.named_parameters():",
                     "init.uniform_(self.bias, -bound, bound)", "p.data.div_(init_scale)"],
    "output_projection.weight (vocab_size, d), untied": [
        "and not args.no_output_layer", "and args.vocab_size > 0",
        "output_projection.weight, mean=0, std=args.decoder_embed_dim**-0.5",
        "normal_(module.weight.data)"],
    "embed_tokens.weight": ["nn.init.normal_(self.weight, mean=0, std=self.embedding_dim**-0.5)",
                            "self._fill_padding_idx_with_zero()",
                            "self.embed_tokens = embed_tokens",
                            "module.weight.data[module.padding_idx].zero_()"],
    "with share_decoder_input_output_embed": [
        "output_projection.weight = self.embed_tokens.weight"],
    "final_layer_norm}.weight": ["self.self_attn_layer_norm = LayerNorm(self.embed_dim, "
                                 "eps=args.layernorm_eps)", "self.final_layer_norm = LayerNorm(",
                                 "self.layernorm_embedding = LayerNorm(embed_dim"],
    "final_layer_norm}.bias": ["self.final_layer_norm = LayerNorm("],
    "relative_attention_bias": ["if args.rel_pos_buckets > 0 and args.max_rel_pos > 0:",
                                "nn.Embedding(self.num_buckets, self.n_heads)",
                                "if isinstance(module, nn.Embedding):"],
}  # fmt: skip


def test_the_cited_sources_say_what_the_groups_say() -> None:
    assert Path(torch.__file__).parents[1] == ROOT  # torch's linear.py is cited from there too
    found = recipes.lookup(RECIPE)
    assert found.version == importlib.metadata.version("torchscale") == "0.3.0"
    texts = {g.tensors: cited(g.source, ROOT) for g in found.groups}
    for piece, says in SAYS.items():
        (text,) = [t for tensors, t in texts.items() if piece in tensors]
        for said in says:
            assert said in text, (piece, said)


@pytest.mark.skipif(
    not MIRROR.is_dir(), reason="no torchscale mirror: fetch github:microsoft/torchscale"
)
def test_the_installed_files_are_the_repositorys_at_the_commit() -> None:
    """torchscale 0.3.0 on PyPI ships the files of git 881d0307 (2023-09-29); the head of the
    repository (2024) has moved on (flash attention), so the recipe names the release."""
    cites = {c.partition(":")[0] for g in recipes.lookup(RECIPE).groups
             for c in g.source.split("; ") if c.startswith("torchscale/")}  # fmt: skip
    for path in sorted(cites):
        show = ["git", "--git-dir", str(MIRROR), "show", f"{COMMIT}:{path}"]
        at_commit = subprocess.run(show, capture_output=True, check=True).stdout
        assert (ROOT / path).read_bytes() == at_commit, path
