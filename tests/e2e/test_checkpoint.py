"""`weightgen checkpoint` against a live server: the folder `save_pretrained` would write, loaded
by `from_pretrained` with nothing missing, unexpected, mismatched or newly initialized; shards
split as huggingface_hub splits them; a rerun keeps verified shards and refetches a damaged
one."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest

from bench.live import Server
from service.client import Client
from service.client import checkpoint as ckpt
from tests.e2e.test_client import cli

transformers = pytest.importorskip(
    "transformers",
    reason="transformers is not installed: pip install transformers==5.24.0 -c <torch pin>",
)
import safetensors.torch  # noqa: E402
import torch  # noqa: E402
from huggingface_hub import split_torch_state_dict_into_shards  # noqa: E402

LLAMA = {"model_type": "llama", "vocab_size": 1000, "hidden_size": 64, "intermediate_size": 160,
         "num_hidden_layers": 3, "num_attention_heads": 4, "num_key_value_heads": 2,
         "tie_word_embeddings": True, "rope_theta": 10000.0, "dtype": "bfloat16"}  # fmt: skip
GPT2 = {"model_type": "gpt2", "vocab_size": 500, "n_positions": 64, "n_embd": 32, "n_layer": 2,
        "n_head": 4}  # fmt: skip
MAMBA = {"model_type": "mamba", "vocab_size": 200, "hidden_size": 32, "num_hidden_layers": 2,
         "state_size": 8}  # fmt: skip


def load(directory: Path) -> tuple[Any, dict[str, list[Any]], list[str]]:
    """from_pretrained(directory) with its loading info and what transformers logged."""
    records: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record.getMessage())

    logger = logging.getLogger("transformers.modeling_utils")
    handler = Keep(logging.WARNING)
    logger.addHandler(handler)
    try:
        model, info = transformers.AutoModelForCausalLM.from_pretrained(
            directory, output_loading_info=True
        )
    finally:
        logger.removeHandler(handler)
    return model, info, records


def whole_bundle(server: Server, body: dict[str, Any]) -> dict[str, torch.Tensor]:
    with Client(server.url) as c:
        return dict(safetensors.torch.load(c.fetch(c.bundle_resource(body))))


@pytest.mark.parametrize(
    ("config", "shard"), [(LLAMA, "50GB"), (LLAMA, "100KB"), (GPT2, "60KB"), (MAMBA, "40KB")]
)
def test_a_checkpoint_loads_with_from_pretrained_as_save_pretrained_wrote_it(
    server: Server, tmp_path: Path, config: dict[str, Any], shard: str
) -> None:
    recipe = f"hf.{config['model_type']}"
    (tmp_path / "config.json").write_text(json.dumps(config))
    out = tmp_path / "ckpt"
    code, text, err = cli("checkpoint", recipe, "--config", str(tmp_path / "config.json"),
                          "--seed", "4", "--max-shard-size", shard, "-o", str(out),
                          "--url", server.url)  # fmt: skip
    assert (code, err) == (0, ""), err
    assert "seed 4" in text
    model, info, logged = load(out)
    assert {k: v for k, v in info.items() if v} == {}, info
    assert not [m for m in logged if "newly initialized" in m], logged
    dtype = torch.bfloat16 if config.get("dtype") == "bfloat16" else torch.float32
    assert {p.dtype for p in model.parameters()} == {dtype}
    # the values are the bundle's (tied copies included), and the files hold exactly the keys
    # save_pretrained writes for the same model
    bundle = whole_bundle(server, {"recipe": recipe, "config": config, "seed": 4})
    state = model.state_dict()
    assert set(state) == set(bundle)
    for name, tensor in state.items():
        assert torch.equal(tensor, bundle[name]), name
    theirs = tmp_path / "theirs"
    model.save_pretrained(theirs, max_shard_size=shard)
    files = sorted(p.name for p in out.glob("*.safetensors"))
    assert files == sorted(p.name for p in theirs.glob("*.safetensors"))
    assert keys(out) == keys(theirs)
    if len(files) > 1:
        ours_index = json.loads((out / ckpt.INDEX).read_text())
        their_index = json.loads((theirs / ckpt.INDEX).read_text())
        assert set(ours_index["weight_map"]) == set(their_index["weight_map"])
        assert ours_index["metadata"] == their_index["metadata"]
    else:
        assert not (out / ckpt.INDEX).exists()


def test_a_gpt_neox_checkpoint_carries_the_converters_config(
    server: Server, tmp_path: Path
) -> None:
    """`checkpoint neox` from NeoXArgs: config.json is the converter's GPTNeoXConfig (model_type
    gpt_neox, the config's rotary_pct, gpt_j_residual, ...), and from_pretrained loads it with
    nothing missing, unexpected or newly initialized."""
    neox = {"num_layers": 2, "hidden_size": 32, "num_attention_heads": 4, "pos_emb": "rotary",
            "padded_vocab_size": 128, "rotary_pct": 0.25, "gpt_j_residual": True,
            "no_weight_tying": True, "max_position_embeddings": 512,
            "init_method": "small_init", "output_layer_init_method": "wang_init"}  # fmt: skip
    (tmp_path / "neox.json").write_text(json.dumps(neox))
    out = tmp_path / "ckpt"
    code, _, err = cli("checkpoint", "neox", "--config", str(tmp_path / "neox.json"), "--seed",
                       "2", "-o", str(out), "--url", server.url)  # fmt: skip
    assert (code, err) == (0, ""), err
    written = json.loads((out / "config.json").read_text())
    assert written["model_type"] == "gpt_neox"
    assert (written["rotary_pct"], written["use_parallel_residual"]) == (0.25, True)
    assert written["max_position_embeddings"] == 512
    model, info, logged = load(out)
    assert {k: v for k, v in info.items() if v} == {}, info
    assert not [m for m in logged if "newly initialized" in m], logged
    assert model.config.rope_parameters["partial_rotary_factor"] == 0.25  # rotary_pct, read
    bundle = whole_bundle(server, {"recipe": "neox", "config": neox, "seed": 2})
    for name, tensor in model.state_dict().items():
        assert torch.equal(tensor, bundle[name]), name


def keys(directory: Path) -> set[str]:
    out: set[str] = set()
    for path in directory.glob("*.safetensors"):
        with safetensors.safe_open(str(path), "pt") as f:
            out |= set(f.keys())
            assert f.metadata()["format"] == "pt"
    return out


def test_a_rerun_keeps_verified_shards_and_refetches_a_damaged_one(
    server: Server, tmp_path: Path
) -> None:
    body = {"recipe": "hf.llama", "config": LLAMA, "seed": 9}
    out = tmp_path / "ckpt"
    with Client(server.url) as c:
        first = ckpt.write(c, body, out, max_shard_size="100KB")
        assert len(first.shards) > 2
        assert first.fetched == tuple(s.filename for s in first.shards)
        before = {s.filename: (out / s.filename).read_bytes() for s in first.shards}
        again = ckpt.write(c, body, out, max_shard_size="100KB")
        assert again.fetched == ()
        damaged, gone = first.shards[1].filename, first.shards[2].filename
        data = bytearray(before[damaged])
        data[-1] ^= 1
        (out / damaged).write_bytes(bytes(data))
        (out / gone).unlink()
        third = ckpt.write(c, body, out, max_shard_size="100KB")
        assert sorted(third.fetched) == sorted([damaged, gone])
        assert {s.filename: (out / s.filename).read_bytes() for s in first.shards} == before
        fewer = ckpt.write(c, body, out, max_shard_size="50GB")  # old shards are removed
    assert sorted(p.name for p in out.glob("*.safetensors")) == [ckpt.SINGLE]
    assert fewer.fetched == (ckpt.SINGLE,)
    assert not (out / ckpt.INDEX).exists()
    assert not list(out.glob("*.part"))


def test_shards_split_as_huggingface_hub_splits_a_state_dict() -> None:
    """The split against huggingface_hub's own, on meta tensors of the same sizes."""
    sizes = [("a", 40), ("b", 70), ("c", 10), ("d", 200), ("e", 30), ("f", 30), ("g", 45)]
    tensors = [{"name": n, "shape": [s], "dtype": "float32", "tied_to": None} for n, s in sizes]
    tensors.append({"name": "h", "shape": [40], "dtype": "float32", "tied_to": "a"})
    for limit in (1, 160, 400, 10_000):
        ours = ckpt.shards(tensors, limit)
        state = {n: torch.empty(s, device="meta") for n, s in sizes}
        theirs = split_torch_state_dict_into_shards(
            state, filename_pattern="model{suffix}.safetensors", max_shard_size=limit
        )
        assert {s.filename: list(s.names) for s in ours} == theirs.filename_to_tensors


@pytest.mark.parametrize(
    ("text", "size"),
    [("5GB", 5 * 10**9), ("500MB", 5 * 10**8), ("2GiB", 2 * 2**30), ("1.5KB", 1500),
     ("123", 123), (" 7 kb ", 7000)],
)  # fmt: skip
def test_shard_sizes_read_as_transformers_reads_them(text: str, size: int) -> None:
    assert ckpt.parse_size(text) == size


def test_cli_checkpoint_refusals(server: Server, tmp_path: Path) -> None:
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"num_hidden_layers": -1}))
    code, _, err = cli("checkpoint", "hf.llama", "--config", str(config), "-o",
                       str(tmp_path / "x"), "--url", server.url)  # fmt: skip
    assert code == 3
    assert "num_hidden_layers >= 0" in err
    config.write_text("[]")
    code, _, err = cli("checkpoint", "hf.llama", "--config", str(config), "-o",
                       str(tmp_path / "x"), "--url", server.url)  # fmt: skip
    assert code == 2
    assert "must hold a JSON object (a config.json)" in err
    config.write_text("{}")
    code, _, err = cli("checkpoint", "hf.llama", "--config", str(config), "--max-shard-size",
                       "5 parsecs", "-o", str(tmp_path / "x"), "--url", server.url)  # fmt: skip
    assert code == 2
    assert "is not a size" in err
    code, _, err = cli("checkpoint", "hf.llama", "--config", str(config), "--layout", "dcp",
                       "--max-shard-size", "5GB", "-o", str(tmp_path / "x"),
                       "--url", server.url)  # fmt: skip
    assert code == 2
    assert "--max-shard-size applies to --layout hf" in err
    assert not (tmp_path / "x").exists()


@pytest.mark.filterwarnings(
    "ignore:torch.distributed is disabled, unavailable or uninitialized:UserWarning"
)  # what dcp.save and dcp.load say in one process, as here
def test_a_dcp_checkpoint_loads_with_torch_distributed_checkpoint(
    server: Server, tmp_path: Path
) -> None:
    """--layout dcp: what dcp.save writes for the same state dict (metadata, one chunk per
    tensor), read back by dcp.load into the real model: the bundle's values, tied copies too."""
    from torch.distributed.checkpoint import state_dict_loader, state_dict_saver
    from torch.distributed.checkpoint.filesystem import FileSystemReader

    (tmp_path / "config.json").write_text(json.dumps(LLAMA))
    out = tmp_path / "dcp"
    code, text, err = cli("checkpoint", "hf.llama", "--config", str(tmp_path / "config.json"),
                          "--seed", "3", "--layout", "dcp", "-o", str(out),
                          "--url", server.url)  # fmt: skip
    assert (code, err) == (0, ""), err
    assert "seed 3" in text
    bundle = whole_bundle(server, {"recipe": "hf.llama", "config": LLAMA, "seed": 3})
    hf = transformers.AutoConfig.for_model(**LLAMA)
    model = transformers.AutoModelForCausalLM.from_config(hf, dtype=torch.bfloat16)
    state = {k: torch.zeros_like(v) for k, v in model.state_dict().items()}
    state_dict_loader.load(state, checkpoint_id=out, no_dist=True)
    assert set(state) == set(bundle)
    for name, tensor in state.items():
        assert torch.equal(tensor, bundle[name]), name
    theirs = tmp_path / "theirs"
    state_dict_saver.save(bundle, checkpoint_id=theirs, no_dist=True)
    ours_meta, their_meta = (FileSystemReader(p).read_metadata() for p in (out, theirs))
    assert ours_meta.state_dict_metadata == their_meta.state_dict_metadata
    assert set(ours_meta.storage_data) == set(their_meta.storage_data)
    assert ours_meta.planner_data == their_meta.planner_data
    assert ours_meta.version == their_meta.version


@pytest.mark.filterwarnings(
    "ignore:torch.distributed is disabled, unavailable or uninitialized:UserWarning"
)
@pytest.mark.parametrize("stack", ["torchtitan", "olmo_core"])
def test_a_dcp_checkpoint_is_what_the_torch_distributed_stacks_load(
    server: Server, tmp_path: Path, stack: str
) -> None:
    """Each stack's own loader takes the directory: torchtitan's checkpointer (its ModelWrapper
    around `dcp.load`, which fuses q/k/v again) and OLMo-core's `load_model_and_optim_state`
    (keys under `model.`). Every parameter is then the bundle's."""
    from torch.distributed.checkpoint import state_dict_loader

    if stack == "torchtitan":
        titan = pytest.importorskip("tests.unit.test_recipes_torchtitan")
        from torchtitan.components.checkpointer.base import ModelWrapper

        recipe, config = "torchtitan.llama3", titan.SMALL["untied"]
        model = titan.model_config(config).build()
    else:
        olmo = pytest.importorskip("tests.unit.test_recipes_olmo_core")
        from olmo_core.distributed.checkpoint import load_model_and_optim_state

        recipe, config = "olmo_core", olmo.CONFIGS["llama"]
        model = olmo.olmo_config(config).build(init_device="cpu")
    (tmp_path / "config.json").write_text(json.dumps(config))
    out = tmp_path / "dcp"
    code, _, err = cli("checkpoint", recipe, "--config", str(tmp_path / "config.json"), "--seed",
                       "8", "--layout", "dcp", "-o", str(out), "--url", server.url)  # fmt: skip
    assert (code, err) == (0, ""), err
    if stack == "torchtitan":
        wrapper = ModelWrapper(model)
        state = wrapper.state_dict()
        state_dict_loader.load(state, checkpoint_id=out, no_dist=True)
        wrapper.load_state_dict(state)
    else:
        load_model_and_optim_state(out, model)
    bundle = whole_bundle(server, {"recipe": recipe, "config": config, "seed": 8})
    loaded = model.state_dict()
    assert set(loaded) == set(bundle)
    for name, tensor in loaded.items():
        assert torch.equal(tensor, bundle[name]), name
