"""Clients generated from a live server's /openapi.json fetch a tensor by its typed query and
check its numbers: openapi-typescript (npm) with openapi-fetch, type-checked by tsc and run by
node; openapi-python-client (PyPI), imported and called. Pinned versions; skipped, saying why,
only when npm or the generator cannot be had (no npx, the registry unreachable)."""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from bench.live import Server

CLIENTS = Path(__file__).resolve().parent / "clients"
OPENAPI_TYPESCRIPT = "7.13.0"
OPENAPI_FETCH = "0.17.0"
TYPESCRIPT = "5.9.3"
TYPES_NODE = "20.19.13"
OPENAPI_PYTHON_CLIENT = "0.29.1"  # the dev dependency
OFFLINE = ("ENOTFOUND", "EAI_AGAIN", "ECONNREFUSED", "ECONNRESET", "ETIMEDOUT", "ENETUNREACH")
SHAPE, SEED = [256, 128], 7
KEY = "generated-client-key"


def run(command: list[str], cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    env = {"npm_config_update_notifier": "false", "npm_config_fund": "false"}
    return subprocess.run(
        command,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **env},
    )


def npm_project(tmp_path: Path) -> tuple[str, Path]:
    """npx and a temporary npm project with the pinned packages and the client program."""
    npx, npm = shutil.which("npx"), shutil.which("npm")
    if npx is None or npm is None:
        pytest.skip("npx/npm not installed: the TypeScript client needs Node 20 and npm")
    project = tmp_path / "ts"
    project.mkdir()
    dependencies = {
        "openapi-fetch": OPENAPI_FETCH,
        "openapi-typescript": OPENAPI_TYPESCRIPT,
        "typescript": TYPESCRIPT,
        "@types/node": TYPES_NODE,
    }
    package = {"name": "weightgen-ts-client", "private": True, "type": "module"}
    (project / "package.json").write_text(json.dumps(package | {"dependencies": dependencies}))
    options = {
        "target": "es2022",
        "module": "nodenext",
        "moduleResolution": "nodenext",
        "strict": True,
        "noUnusedLocals": True,
        "noEmitOnError": True,
        "types": ["node"],
        "lib": ["es2022", "dom"],
        "outDir": "out",
    }
    config = {"compilerOptions": options, "files": ["fetch_tensor.ts"]}
    (project / "tsconfig.json").write_text(json.dumps(config))
    shutil.copy(CLIENTS / "fetch_tensor.ts", project)
    done = run([npm, "install", "--no-audit", "--ignore-scripts"], project, timeout=180)
    if done.returncode != 0:
        if any(code in done.stderr for code in OFFLINE):
            pytest.skip(f"the npm registry cannot be reached: {done.stderr[-400:]}")
        pytest.fail(f"npm install failed:\n{done.stderr[-2000:]}")
    return npx, project


def test_an_openapi_typescript_client_fetches_a_tensor_by_its_typed_query(
    server: Server, tmp_path: Path
) -> None:
    npx, project = npm_project(tmp_path)
    generate = [npx, "-y", f"openapi-typescript@{OPENAPI_TYPESCRIPT}"]
    done = run([*generate, f"{server.url}/openapi.json", "-o", "schema.d.ts"], project)
    assert done.returncode == 0, done.stderr
    tsc = [npx, "-y", "-p", f"typescript@{TYPESCRIPT}", "tsc", "-p", "."]
    schema = (project / "schema.d.ts").read_text()

    # the type check means something: with the query undeclared, as the issue found it, it fails
    query = (
        r"(    get_tensor: \{\n        parameters: \{\n)            query: \{\n.*?\n            \};"
    )
    untyped = re.sub(
        query,
        r"\1            query?: never;",
        schema,
        count=1,
        flags=re.DOTALL,
    )
    assert untyped != schema, "get_tensor's query type not found in schema.d.ts"
    (project / "schema.d.ts").write_text(untyped)
    refused = run([*tsc, "--noEmit"], project)
    assert refused.returncode != 0, "fetch_tensor.ts type-checks against a `never` query"
    assert "fetch_tensor.ts" in refused.stdout, refused.stdout

    (project / "schema.d.ts").write_text(schema)
    checked = run([*tsc, "--noEmit"], project)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    built = run(tsc, project)
    assert built.returncode == 0, built.stdout + built.stderr
    node = shutil.which("node") or pytest.fail("node is not installed (npx is)")
    fetched = run([node, "out/fetch_tensor.js", server.url], project)
    assert fetched.returncode == 0, fetched.stderr
    numbers = json.loads(fetched.stdout)
    described = httpx.get(
        f"{server.url}/v1/tensors/he_normal",
        params={"shape": "256,128", "seed": SEED, "format": "raw", "describe": "true"},
    ).json()
    assert numbers["bytes"] == described["content_length"] == 256 * 128 * 4
    assert numbers["std"] == described["plan"]["stddev"]
    assert numbers["range"] == f"bytes 0-15/{256 * 128 * 4}"


def join_lists(names: Iterable[str]) -> Callable[[httpx.Request], None]:
    """An httpx request hook sending the list parameters as the contract declares them,
    `style: form, explode: false` (`shape=256,128`): openapi-python-client repeats the key
    instead (`shape=256&shape=128`; its issue #197), which the service refuses."""
    lists = set(names)

    def hook(request: httpx.Request) -> None:
        params = request.url.params
        joined = {k: ",".join(params.get_list(k)) if k in lists else params[k] for k in params}
        request.url = request.url.copy_with(params=joined)

    return hook


def comma_lists(document: dict[str, Any]) -> set[str]:
    return {
        p["name"]
        for item in document["paths"].values()
        for operation in item.values()
        for p in operation.get("parameters", [])
        if p["in"] == "query" and p.get("explode") is False
    }


def generated_client(url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    if importlib.util.find_spec("openapi_python_client") is None:
        pytest.skip(f"openapi-python-client=={OPENAPI_PYTHON_CLIENT} is not installed (dev extra)")
    installed = importlib.metadata.version("openapi-python-client")
    assert installed == OPENAPI_PYTHON_CLIENT, f"openapi-python-client {installed} is installed"
    config = tmp_path / "openapi-python-client.json"
    config.write_text(
        json.dumps(
            {
                "post_hooks": [],  # no ruff formatting of the generated code
                "content_type_overrides": {  # files, as application/octet-stream is
                    "application/x-npy": "application/octet-stream",
                    "application/vnd.safetensors": "application/octet-stream",
                },
            }
        )
    )
    out = tmp_path / "py" / "weightgen_client"
    generate = [sys.executable, "-m", "openapi_python_client", "generate", "--meta", "none"]
    done = run(
        [
            *generate,
            "--url",
            f"{url}/openapi.json",
            "--config",
            str(config),
            "--output-path",
            str(out),
        ],
        tmp_path,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Unsupported content_type" not in done.stdout, done.stdout
    monkeypatch.syspath_prepend(str(out.parent))
    for name in [m for m in sys.modules if m.split(".")[0] == "weightgen_client"]:
        monkeypatch.delitem(sys.modules, name)
    return importlib.import_module("weightgen_client")


def test_an_openapi_python_client_fetches_a_tensor_by_its_typed_query(
    start_server: Callable[..., Server], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    keyed = start_server(api_keys=json.dumps([KEY]))
    package = generated_client(keyed.url, tmp_path, monkeypatch)
    models = importlib.import_module("weightgen_client.models")
    get_tensor = importlib.import_module("weightgen_client.api.tensors.get_tensor")
    describe_tensor = importlib.import_module("weightgen_client.api.tensors.describe_tensor")
    document = httpx.get(f"{keyed.url}/openapi.json").json()
    hooks = {"event_hooks": {"request": [join_lists(comma_lists(document))]}}
    client = package.AuthenticatedClient(base_url=keyed.url, token=KEY, httpx_args=hooks)
    query = {
        "shape": SHAPE,
        "seed": SEED,
        "dtype": models.GetTensorDtype.FLOAT32,
        "format_": models.GetTensorFormat.RAW,
    }
    with client:
        got = get_tensor.sync_detailed("he_normal", client=client, **query)
        assert got.status_code == 200, got.content[:500]
        assert isinstance(got.parsed, importlib.import_module("weightgen_client.types").File)
        body = models.TensorRequest(
            scheme=models.TensorRequestScheme.HE_NORMAL,
            shape=SHAPE,
            seed=SEED,
            dtype=models.TensorRequestDtype.FLOAT32,
            format_=models.TensorRequestFormatType0.RAW,
        )
        described = describe_tensor.sync(client=client, body=body)
    assert isinstance(described, models.DescribeResponse), described
    values = np.frombuffer(got.content, dtype="<f4")
    assert len(got.content) == described.content_length == described.nbytes == 256 * 128 * 4
    assert float(got.headers["X-Init-Std"]) == described.plan.stddev
    assert float(got.headers["X-Init-Effective-Std"]) == described.plan.effective_std
    assert got.headers["Content-Location"] == described.url
    assert got.headers["ETag"] == described.etag
    assert values.std() == pytest.approx(described.plan.effective_std, rel=0.02)

    # without the key: the documented 401, parsed as the Problem model
    with package.Client(base_url=keyed.url, httpx_args=hooks) as anonymous:
        refused = get_tensor.sync_detailed("he_normal", client=anonymous, **query)
    assert refused.status_code == 401
    assert isinstance(refused.parsed, models.Problem)
    assert refused.parsed.title == "Unauthorized"
    assert refused.headers["WWW-Authenticate"].startswith("Bearer")
