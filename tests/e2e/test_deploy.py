"""The deployment files, validated offline: kustomize + kubernetes-validate, hadolint,
yamllint, nginx -t; the package installed from its wheel in a fresh venv; nginx in front of
two live replicas (the cache, Range, keyed requests; tests/e2e/test_fault.py kills them)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import httpx
import pytest

from bench.cluster import cluster, nginx_binary, render
from bench.live import free_port

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def run(*command: str | Path, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [str(c) for c in command], capture_output=True, text=True, cwd=cwd, timeout=300
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done


@pytest.mark.parametrize("overlay", ["cpu", "gpu"])
def test_kustomize_overlays_are_valid_kubernetes(overlay: str, tmp_path: Path) -> None:
    rendered = run(BIN / "kubectl", "kustomize", f"deploy/k8s/overlays/{overlay}").stdout
    (tmp_path / "all.yaml").write_text(rendered)
    out = run(BIN / "kubernetes-validate", "--strict", tmp_path / "all.yaml").stdout
    for kind in (
        "deployment",
        "service",
        "poddisruptionbudget",
        "horizontalpodautoscaler",
        "networkpolicy",
    ):
        assert f"passed for resource {kind}/" in out
    assert "readOnlyRootFilesystem: true" in rendered
    assert ("nvidia.com/gpu: 1" in rendered) == (overlay == "gpu")


def test_dockerfiles_pass_hadolint() -> None:
    run(BIN / "hadolint", "Dockerfile", "Dockerfile.cuda")


def test_yaml_passes_yamllint() -> None:
    run(BIN / "yamllint", "--strict", "deploy", ".yamllint.yaml")


def test_nginx_config_passes_nginx_t(tmp_path: Path) -> None:
    nginx = nginx_binary()
    if nginx is None:
        pytest.skip("nginx is not installed (make test installs it where apt-get can)")
    (tmp_path / "cache").mkdir()
    (tmp_path / "nginx.conf").write_text(render([free_port(), free_port()], free_port(), tmp_path))
    run(nginx, "-t", "-c", tmp_path / "nginx.conf")


def test_the_wheel_installs_and_serves_from_a_fresh_venv(tmp_path: Path) -> None:
    """The image's install steps: build the wheel, install it alone, run it outside the tree."""
    run(
        BIN / "pip",
        "wheel",
        "--no-deps",
        "--no-build-isolation",
        "-q",
        "-w",
        tmp_path / "wheels",
        ".",
    )
    wheel = next((tmp_path / "wheels").glob("weightgen-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    assert any(n.startswith("service/engines/_fastcore") and n.endswith(".so") for n in names)
    assert not any(n.startswith("tests/") for n in names)
    run(sys.executable, "-m", "venv", tmp_path / "venv")
    venv_python = tmp_path / "venv" / "bin" / "python"
    run(venv_python, "-m", "pip", "install", "-q", "--no-deps", wheel)
    # the dependencies come from this environment's site-packages, not from the source tree
    site = next((tmp_path / "venv" / "lib").glob("python3*/site-packages"))
    deps = [p for p in sys.path if p.endswith("site-packages")]
    (site / "deps.pth").write_text("\n".join(deps) + "\n")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    proc = subprocess.Popen(
        [venv_python, "-m", "service", "--port", str(port)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        for _ in range(100):
            try:
                if httpx.get(f"{url}/healthz").status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        ready = httpx.get(f"{url}/readyz").json()
        assert ready["fast_kernel"] is True
        where = run(
            venv_python, "-c", "import service; print(service.__file__)", cwd=tmp_path
        ).stdout
        assert str(tmp_path / "venv") in where
        r = httpx.get(f"{url}/v1/tensors/he_normal?shape=64,64&seed=1&format=safetensors")
        assert r.status_code == 200
        assert httpx.get(f"{url}/v1/schemes").status_code == 200
    finally:
        proc.terminate()
        proc.wait(timeout=20)
        if proc.stderr is not None:
            proc.stderr.close()


def cached_files(workdir: Path) -> list[Path]:
    return [p for p in (workdir / "cache").rglob("*") if p.is_file()]


def test_nginx_caches_whole_public_answers_and_passes_ranges(tmp_path: Path) -> None:
    if nginx_binary() is None:
        pytest.skip("nginx is not installed (make test installs it where apt-get can)")
    with cluster(tmp_path) as c:
        path = "/v1/tensors/he_normal?shape=1024,700&seed=3&format=raw"
        direct = httpx.get(c.replica_urls[0] + path)
        body, etag = direct.content, direct.headers["etag"]
        # a Range on a miss goes to a replica (with its If-Range) and is not stored
        span = {"Range": "bytes=1048000-1049999"}
        miss = httpx.get(c.url + path, headers={**span, "If-Range": etag})
        assert (miss.status_code, miss.headers["x-cache-status"]) == (206, "MISS")
        assert miss.content == body[1048000:1050000]
        # a whole GET fills the cache; the next one and any Range come from it
        first = httpx.get(c.url + path)
        again = httpx.get(c.url + path)
        assert first.content == body == again.content
        assert first.headers["cache-control"] == "public, max-age=31536000, immutable"
        assert (first.headers["x-cache-status"], again.headers["x-cache-status"]) == (
            "MISS",
            "HIT",
        )
        part = httpx.get(c.url + path, headers={**span, "If-Range": etag})
        assert (part.status_code, part.headers["x-cache-status"]) == (206, "HIT")
        assert part.content == body[1048000:1050000]
        assert part.headers["content-range"] == f"bytes 1048000-1049999/{len(body)}"
        other = httpx.get(c.url + path, headers={**span, "If-Range": '"another"'})
        assert (other.status_code, other.content == body) == (200, True)
        assert len(cached_files(tmp_path)) == 1  # one whole answer, no slices
        # a HEAD goes to a replica as a HEAD (nothing generated, nothing filled or kept)
        path2 = path.replace("seed=3", "seed=4")
        head = httpx.head(c.url + path2)
        assert (head.status_code, head.headers["content-length"]) == (200, str(len(body)))
        assert "x-cache-status" not in head.headers
        assert httpx.get(c.url + path2).headers["x-cache-status"] == "MISS"
        # answers without Cache-Control (the catalogue) and no-store ones are never kept
        httpx.get(c.url + "/v1/schemes")
        assert httpx.get(c.url + "/v1/schemes").headers["x-cache-status"] == "MISS"
        post = httpx.post(c.url + "/v1/tensors/describe", json={"shape": [2], "scheme": "zeros"})
        assert post.status_code == 200
        fresh = httpx.get(c.url + "/v1/tensors/he_normal?shape=4,4")  # no seed: no-store
        assert httpx.get(c.url + "/v1/tensors/he_normal?shape=4,4").content != fresh.content
        sizes = [f.stat().st_size for f in cached_files(tmp_path)]
        assert len(sizes) == 2  # the two whole answers
        assert all(len(body) < size < len(body) + 4096 for size in sizes)


@pytest.mark.parametrize("visibility", ["auto", "public"])
def test_nginx_never_answers_an_unkeyed_request_from_a_keyed_one(
    tmp_path: Path, visibility: str
) -> None:
    """With keys on, keyed requests bypass the cache entirely (even where the operator chose
    WEIGHTGEN_CACHE_VISIBILITY=public): a request without the key always reaches a replica."""
    if nginx_binary() is None:
        pytest.skip("nginx is not installed (make test installs it where apt-get can)")
    env = {"WEIGHTGEN_API_KEYS": '["k-one"]', "WEIGHTGEN_CACHE_VISIBILITY": visibility}
    with cluster(tmp_path, env=env) as c:
        path = "/v1/tensors/he_normal?shape=1024,700&seed=3&format=raw"
        key = {"Authorization": "Bearer k-one"}
        body = httpx.get(c.replica_urls[0] + path, headers=key).content
        keyed = [httpx.get(c.url + path, headers=key) for _ in range(2)]
        for r in keyed:
            assert (r.status_code, r.content == body) == (200, True)
            assert "x-cache-status" not in r.headers  # not looked up, not stored
        expected = "public" if visibility == "public" else "private"
        assert keyed[0].headers["cache-control"] == f"{expected}, max-age=31536000, immutable"
        part = httpx.get(c.url + path, headers={**key, "Range": "bytes=1048000-1049999"})
        assert (part.status_code, part.content) == (206, body[1048000:1050000])
        for headers in ({}, {"Range": "bytes=0-99"}, {"Authorization": "Bearer nope"}):
            unkeyed = httpx.get(c.url + path, headers=headers)
            assert unkeyed.status_code == 401, (headers, unkeyed.headers)
            assert httpx.head(c.url + path, headers=headers).status_code == 401
        assert cached_files(tmp_path) == []


def test_nginx_does_not_store_private_answers(tmp_path: Path) -> None:
    """The second rule, on its own: an answer marked `private` is not kept (no keys here, so
    the requests take the cache's path)."""
    if nginx_binary() is None:
        pytest.skip("nginx is not installed (make test installs it where apt-get can)")
    with cluster(tmp_path, env={"WEIGHTGEN_CACHE_VISIBILITY": "private"}) as c:
        path = "/v1/tensors/he_normal?shape=64,64&seed=3&format=raw"
        answers = [httpx.get(c.url + path) for _ in range(2)]
        assert [r.headers["x-cache-status"] for r in answers] == ["MISS", "MISS"]
        assert answers[0].headers["cache-control"] == "private, max-age=31536000, immutable"
        assert answers[0].content == answers[1].content
        assert cached_files(tmp_path) == []
