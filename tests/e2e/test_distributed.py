"""`service.client.distributed.load_module` under torch.distributed on CPU (gloo): a tiny Llama
from the `hf.llama` recipe, built on the meta device, filled in one process, under FSDP2
(`fully_shard`) and under a tensor-parallel plan on 1, 2 and 4 spawned processes against a live
server. Every parameter's `full_tensor()` is byte-identical across the layouts and to the bundle
fetched whole, and each rank's fetch made the server generate exactly its local tensors' bytes
(the server's `weightgen_generated_bytes` counter, ranks fetching one after another)."""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import safetensors.torch
import torch

from bench.live import Server, free_port
from service.client import Client
from service.client.distributed import load_module

CONFIG = {"model_type": "llama", "vocab_size": 50, "hidden_size": 12, "intermediate_size": 22,
          "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 1,
          "attention_bias": True, "tie_word_embeddings": False}  # fmt: skip
# head_dim 3 and one KV head: k_proj/v_proj are (3, 12), so 4 ranks hold 1, 1, 1 and 0 rows;
# vocab 50 and intermediate 22 cut unevenly (torch.chunk: 13, 13, 13, 11 and 6, 6, 6, 4)
BODY = {"seed": 5, "recipe": "hf.llama", "config": CONFIG, "dtype": "bfloat16"}
COLWISE = ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "mlp.gate_proj",
           "mlp.up_proj")  # fmt: skip
ROWWISE = ("self_attn.o_proj", "mlp.down_proj")
WORLDS = (1, 2, 4)
LAYOUTS = ("fsdp", "tp")
DEADLINE = 120.0  # seconds for one world's processes, start to end


def meta_model(config: dict[str, Any] = CONFIG) -> torch.nn.Module:
    import transformers

    auto: Any = transformers.AutoModelForCausalLM
    with torch.device("meta"):
        model: torch.nn.Module = auto.from_config(
            transformers.AutoConfig.for_model(**config), dtype=torch.bfloat16
        )
    return model


def generated(url: str) -> float:
    """The server's weightgen_generated_bytes, all labels."""
    text = httpx.get(f"{url}/metrics", timeout=10).text
    return sum(float(v) for v in re.findall(r"^weightgen_generated_bytes_total\{.*\} (\S+)$",
                                             text, re.M))  # fmt: skip


def local_bytes(model: torch.nn.Module) -> int:
    """Bytes this rank holds of the model's distinct tensors (DTensors: the local part)."""
    from torch.distributed.tensor import DTensor

    distinct = {id(t): t for t in model.state_dict(keep_vars=True).values()}.values()
    local = [t.to_local() if isinstance(t, DTensor) else t for t in distinct]
    return sum(t.numel() * t.element_size() for t in local)


def parallelize(model: torch.nn.Module, layout: str, world: int) -> None:
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import fully_shard
    from torch.distributed.tensor.parallel import (
        ColwiseParallel,
        RowwiseParallel,
        parallelize_module,
    )

    if layout == "2d":  # FSDP over dp × row-wise TP over tp: (Shard(0), Shard(1)) boxes
        dims = init_device_mesh("cpu", (2, world // 2), mesh_dim_names=("dp", "tp"))
        for layer in model.model.layers:  # type: ignore[union-attr]
            parallelize_module(layer, dims["tp"], {n: RowwiseParallel() for n in ROWWISE})
            fully_shard(layer, mesh=dims["dp"])
        fully_shard(model, mesh=dims["dp"])
        return
    mesh = init_device_mesh("cpu", (world,))
    if layout == "fsdp":
        for layer in model.model.layers:  # type: ignore[union-attr]
            fully_shard(layer, mesh=mesh)
        fully_shard(model, mesh=mesh)
        return
    plan: dict[str, Any] = {n: ColwiseParallel() for n in COLWISE}
    plan |= {n: RowwiseParallel() for n in ROWWISE}
    for layer in model.model.layers:  # type: ignore[union-attr]
        parallelize_module(layer, mesh, plan)


def rank_main(rank: int, world: int, port: int, url: str, out: str) -> None:
    """One rank: each layout built on meta, filled (ranks one after another, each measuring the
    server's counter around its own fetch), then gathered whole on rank 0."""
    import torch.distributed as dist

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank,
                            world_size=world)  # fmt: skip
    try:
        for layout in LAYOUTS + (("2d",) if world == 4 else ()):
            model = meta_model()
            parallelize(model, layout, world)
            report: dict[str, Any] = {}
            for turn in range(world):
                if turn == rank:
                    before = generated(url)
                    with Client(url, timeout=30) as client:
                        loaded = load_module(client, model, BODY)
                    report = {"server": generated(url) - before, "client": loaded.bytes,
                              "held": local_bytes(model), "requests": loaded.requests}  # fmt: skip
                dist.barrier()
            Path(out, f"{layout}-{world}-{rank}.json").write_text(json.dumps(report))
            gather(model, Path(out, f"{layout}-{world}.safetensors"), rank)
        dist.barrier()  # every rank done before any tears gloo down (a rank once aborted there)
    finally:
        dist.destroy_process_group()


def gather(model: torch.nn.Module, path: Path, rank: int) -> None:
    from torch.distributed.tensor import DTensor

    whole = {}
    for name, t in model.state_dict().items():
        whole[name] = t.full_tensor() if isinstance(t, DTensor) else t
    if rank == 0:
        safetensors.torch.save_file({k: v.contiguous() for k, v in whole.items()}, str(path))


def spawn(world: int, url: str, out: Path) -> None:
    """`world` spawned ranks, waited for within DEADLINE; killed and reaped whatever happens."""
    from torch.multiprocessing.spawn import start_processes

    args = (world, free_port(), url, str(out))
    ctx = start_processes(  # type: ignore[no-untyped-call]
        rank_main, args=args, nprocs=world, join=False, start_method="spawn"
    )
    deadline = time.monotonic() + DEADLINE
    try:
        while not ctx.join(timeout=max(0.1, deadline - time.monotonic())):
            if time.monotonic() > deadline:
                raise TimeoutError(f"{world} ranks did not finish in {DEADLINE} s")
    finally:
        for p in ctx.processes:
            if p.is_alive():
                p.kill()
            p.join()


@pytest.fixture(scope="module")
def runs(server: Server, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("ranks")
    env = {k: os.environ.get(k) for k in ("OMP_NUM_THREADS",)}
    os.environ["OMP_NUM_THREADS"] = "1"
    try:
        for world in WORLDS:
            spawn(world, server.url, out)
    finally:
        for k, v in env.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    return out


@pytest.fixture(scope="module")
def whole(server: Server) -> dict[str, torch.Tensor]:
    with Client(server.url) as client:
        return client.state_dict(BODY)


def as_bytes(t: torch.Tensor) -> bytes:
    return t.contiguous().view(torch.uint8).numpy().tobytes()


def test_one_process_from_meta_is_the_whole_bundle(
    server: Server, whole: dict[str, torch.Tensor]
) -> None:
    model = meta_model()
    before = generated(server.url)
    with Client(server.url) as client:
        loaded = load_module(client, model, BODY)
    got = model.state_dict()
    assert sorted(got) == sorted(whole) == sorted(loaded.filled)
    assert all(as_bytes(got[n]) == as_bytes(whole[n]) for n in whole)
    assert loaded.bytes == local_bytes(model) == sum(t.nbytes for t in whole.values())
    assert generated(server.url) - before == loaded.bytes
    assert not any(t.is_meta for t in got.values())
    assert loaded.untouched == ["model.rotary_emb.inv_freq", "model.rotary_emb.original_inv_freq"]


RUNS = [(layout, world) for world in WORLDS for layout in LAYOUTS] + [("2d", 4)]


@pytest.mark.parametrize(("layout", "world"), RUNS)
def test_layout_assembles_the_whole_bundle(
    runs: Path, whole: dict[str, torch.Tensor], layout: str, world: int
) -> None:
    full = safetensors.torch.load_file(str(runs / f"{layout}-{world}.safetensors"))
    assert sorted(full) == sorted(whole)
    different = [n for n in whole if as_bytes(full[n]) != as_bytes(whole[n])]
    assert different == []


@pytest.mark.parametrize(("layout", "world"), RUNS)
def test_each_rank_fetched_only_its_part(
    runs: Path, whole: dict[str, torch.Tensor], layout: str, world: int
) -> None:
    reports = [json.loads((runs / f"{layout}-{world}-{r}.json").read_text()) for r in range(world)]
    total = sum(t.nbytes for t in whole.values())
    for report in reports:
        assert report["server"] == report["client"] == report["held"]
        assert report["requests"] == 1
        if world > 1:
            assert report["held"] < total
    if layout == "fsdp":  # every tensor cut once: the ranks' parts add up to the model
        assert sum(r["held"] for r in reports) == total
    else:  # tp: norms, embeddings, lm_head, row-parallel biases on every rank; 2d: on 2 of 4
        assert sum(r["held"] for r in reports) > total or world == 1


def test_refuses_a_body_without_seed_or_already_cut(server: Server) -> None:
    with Client(server.url) as client:
        with pytest.raises(ValueError, match="needs a seed"):
            load_module(client, meta_model(), {**BODY, "seed": None})
        with pytest.raises(ValueError, match=r"cuts the bundle \(shard\)"):
            load_module(client, meta_model(), {**BODY, "shard": {"dim": 0, "index": 0, "count": 2}})


def test_tied_weights_fetched_once(server: Server) -> None:
    config = {**CONFIG, "tie_word_embeddings": True}
    model = meta_model(config)
    with Client(server.url) as client:
        loaded = load_module(client, model, {**BODY, "config": config})
        whole = client.state_dict({**BODY, "config": config})
    got = model.state_dict()
    assert got["lm_head.weight"].data_ptr() == got["model.embed_tokens.weight"].data_ptr()
    assert as_bytes(got["lm_head.weight"]) == as_bytes(whole["lm_head.weight"])
    assert loaded.bytes == local_bytes(model) < sum(t.nbytes for t in whole.values())


def test_tied_in_the_recipe_only_fills_both_tensors(server: Server) -> None:
    """A module that keeps lm_head apart gets the source's bytes in both (one member asked)."""
    tied = {**CONFIG, "tie_word_embeddings": True}
    model = meta_model()  # untied
    with Client(server.url) as client:
        loaded = load_module(client, model, {**BODY, "config": tied})
        whole = client.state_dict({**BODY, "config": tied})
    got = model.state_dict()
    assert as_bytes(got["lm_head.weight"]) == as_bytes(whole["model.embed_tokens.weight"])
    assert as_bytes(got["model.embed_tokens.weight"]) == as_bytes(whole["lm_head.weight"])
    assert loaded.bytes == local_bytes(model) - got["lm_head.weight"].nbytes


def test_another_dtype_is_cast(server: Server, whole: dict[str, torch.Tensor]) -> None:
    """A float32 module from a bfloat16 bundle: staged and cast (bfloat16 → float32 is exact)."""
    model = meta_model().float()
    with Client(server.url) as client:
        loaded = load_module(client, model, BODY)
    got = model.state_dict()
    assert all(got[n].dtype == torch.float32 for n in whole)
    assert all(torch.equal(got[n], whole[n].float()) for n in whole)
    assert loaded.bytes == sum(t.nbytes for t in whole.values())
