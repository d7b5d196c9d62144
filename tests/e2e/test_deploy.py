"""The deployment files, validated offline: kustomize + kubernetes-validate, hadolint,
yamllint, nginx -t; the package installed from its wheel in a fresh venv; nginx in front of
two live replicas (cache and Range)."""

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


def test_nginx_caches_answers_and_passes_ranges(tmp_path: Path) -> None:
    if nginx_binary() is None:
        pytest.skip("nginx is not installed (make test installs it where apt-get can)")
    with cluster(tmp_path) as c:
        path = "/v1/tensors/he_normal?shape=1024,700&seed=3&format=raw"
        direct = httpx.get(c.replica_urls[0] + path).content
        first = httpx.get(c.url + path)
        again = httpx.get(c.url + path)
        assert first.content == direct == again.content
        assert again.headers["x-cache-status"] == "HIT"
        part = httpx.get(c.url + path, headers={"Range": "bytes=1048000-1049999"})
        assert part.status_code == 206
        assert part.content == direct[1048000:1050000]
        post = httpx.post(c.url + "/v1/tensors/describe", json={"shape": [2], "scheme": "zeros"})
        assert post.status_code == 200
        fresh = httpx.get(c.url + "/v1/tensors/he_normal?shape=4,4")  # no seed: no-store
        assert httpx.get(c.url + "/v1/tensors/he_normal?shape=4,4").content != fresh.content
