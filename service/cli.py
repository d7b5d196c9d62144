"""The `weightgen` command: run the service, or use one.

    weightgen serve [--host H] [--port P]
    weightgen schemes [--json]
    weightgen describe he_normal 3 3 32 64 [--convention keras] [-p factor=2] [--json]
    weightgen fetch he_normal 4096 4096 --seed 1 -o w.safetensors [--connections 4] [--no-verify]
    weightgen bundle manifest.json -o init.safetensors [--no-verify]
    weightgen checkpoint hf.llama --config config.json --seed 0 [--dtype bfloat16]
                         [--max-shard-size 5GB] [--layout hf|dcp] [--connections 4] -o DIR

Exit codes: 0 done; 2 bad usage; 3 the server refused (its problem is printed); 4 the server
could not be reached; 5 the bytes did not add up (length, ETag, or the file's SHA-256 against
the server's Repr-Digest, checked unless --no-verify; the file is then not written).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:
    from service.client import Client, Resource

EXIT_USAGE, EXIT_PROBLEM, EXIT_UNREACHABLE, EXIT_INTEGRITY = 2, 3, 4, 5
FORMATS = {".npy": "npy", ".safetensors": "safetensors", ".bin": "raw", ".raw": "raw"}
NO_VERIFY = "skip the check of the file's SHA-256 against the server's Repr-Digest"


def _client_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--url",
        default=os.environ.get("WEIGHTGEN_URL", "http://127.0.0.1:8000"),
        help="the service (default WEIGHTGEN_URL or http://127.0.0.1:8000)",
    )
    p.add_argument(
        "--api-key",
        default=os.environ.get("WEIGHTGEN_API_KEY"),
        help="bearer key (default WEIGHTGEN_API_KEY)",
    )
    p.add_argument("--json", action="store_true", help="machine-readable output")


def _tensor_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("scheme", help="a scheme or alias (weightgen schemes lists them)")
    p.add_argument("shape", nargs="*", type=int, help="dimensions (none: a scalar)")
    p.add_argument("--convention", help="keras (default), torch, jax, tf1, caffe")
    p.add_argument("--seed", type=int, help="0 … 2^64-1 (absent: the service picks one)")
    p.add_argument("--dtype", help="float32 (default), float64, float16, bfloat16, …")
    p.add_argument("--name", help="tensor name (default weight)")
    p.add_argument(
        "-p",
        "--param",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a scheme parameter, e.g. -p factor=2 -p mode=fan_out",
    )


def _checkpoint_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("recipe", help="a recipe (GET /v1/recipes), e.g. hf.llama")
    p.add_argument("--config", required=True, help="its config.json (- for stdin)")
    p.add_argument("--seed", type=int, help="0 … 2^64-1 (absent: the service picks one)")
    p.add_argument("--dtype", help="wins over the config's (default: its, or float32)")
    p.add_argument(
        "--max-shard-size",
        help="--layout hf: as save_pretrained, 5GB (10^9), 2GiB (2^30) or bytes; default 50GB",
    )
    p.add_argument(
        "--layout",
        choices=["hf", "dcp"],
        default="hf",
        help="hf: as save_pretrained (default); dcp: a torch.distributed.checkpoint directory "
        "(torchtitan, OLMo-core; needs torch)",
    )
    p.add_argument("-o", "--output", required=True, help="the folder to write")
    p.add_argument("--connections", type=int, default=1, help="parallel byte ranges")
    p.add_argument("--no-verify", action="store_true", help=NO_VERIFY)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="weightgen",
        description="Initialized neural-network weight tensors over HTTP.",
        epilog="Exit codes: 0 done, 2 usage, 3 refused by the server, 4 unreachable, 5 integrity.",
    )
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run the HTTP service")
    serve.add_argument("--host", help="interface to bind (default WEIGHTGEN_HOST or 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port (default WEIGHTGEN_PORT or 8000)")

    schemes = commands.add_parser("schemes", help="list the schemes and their conventions")
    _client_options(schemes)
    describe = commands.add_parser("describe", help="the numbers of a tensor, without sampling")
    _tensor_options(describe)
    _client_options(describe)
    fetch = commands.add_parser("fetch", help="download a tensor to a file")
    _tensor_options(fetch)
    _client_options(fetch)
    fetch.add_argument("-o", "--output", required=True, help="file: .npy, .safetensors or .bin")
    fetch.add_argument("--format", choices=["npy", "safetensors", "raw"], help="default: from -o")
    fetch.add_argument("--connections", type=int, default=1, help="parallel byte ranges")
    fetch.add_argument("--no-verify", action="store_true", help=NO_VERIFY)
    bundle = commands.add_parser("bundle", help="download a bundle (manifest JSON) to a file")
    bundle.add_argument("manifest", help="a JSON manifest file, or - for standard input")
    bundle.add_argument("-o", "--output", required=True, help="the .safetensors file")
    bundle.add_argument("--connections", type=int, default=1, help="parallel byte ranges")
    bundle.add_argument("--no-verify", action="store_true", help=NO_VERIFY)
    _client_options(bundle)
    checkpoint = commands.add_parser(
        "checkpoint", help="write a recipe's whole model as save_pretrained does (to a folder)"
    )
    _checkpoint_options(checkpoint)
    _client_options(checkpoint)
    return parser


class UsageError(Exception):
    """The command line itself is wrong (exit code 2, like argparse's own errors)."""


def _value(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


def _params(args: argparse.Namespace) -> dict[str, Any]:
    params: dict[str, Any] = {}
    for item in args.param:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UsageError(f"-p takes KEY=VALUE; received {item!r}")
        params[key] = _value(value)
    for key in ("convention", "seed", "dtype", "name"):
        if getattr(args, key, None) is not None:
            params[key] = getattr(args, key)
    return params


class Bar:
    """A progress line on stderr (bytes, rate, ETA), drawn only when stderr is a terminal."""

    def __init__(self, stream: TextIO) -> None:
        self.stream, self.start, self.last = stream, time.monotonic(), 0.0
        self.enabled = stream.isatty()

    def __call__(self, done: int, total: int) -> None:
        now = time.monotonic()
        if not self.enabled or (now - self.last < 0.1 and done < total):
            return
        self.last = now
        rate = done / max(now - self.start, 1e-9)
        eta = (total - done) / rate if rate > 0 else 0.0
        pct = 100 * done / total if total else 100.0
        self.stream.write(
            f"\r{done / 2**20:9.1f} / {total / 2**20:.1f} MiB {pct:5.1f}% "
            f"{rate / 2**20:7.1f} MiB/s ETA {int(eta // 60)}:{int(eta % 60):02d} "
        )
        if done >= total:
            self.stream.write("\n")
        self.stream.flush()


def _print(args: argparse.Namespace, data: Any, text: str) -> None:
    print(json.dumps(data, indent=2) if args.json else text)


def _schemes(client: Client, args: argparse.Namespace) -> None:
    data = client.schemes()
    lines = [
        f"{s['name']:<18} {', '.join(s['conventions']):<28} {s['summary']}" for s in data["schemes"]
    ]
    _print(args, data, "\n".join(lines))


def _describe(client: Client, args: argparse.Namespace) -> None:
    d = client.describe(args.scheme, args.shape, **_params(args))
    p = d["plan"]
    _print(
        args,
        d,
        "\n".join(
            [
                f"{p['rule']}",
                f"{p['formula']}",
                f"fan_in {p['fan_in']}  fan_out {p['fan_out']}  stddev {p['stddev']}  "
                f"limit {p['limit']}  effective std {p['effective_std']}",
                f"seed {d['seed']}, {d['content_length']} bytes, {d['url']}",
            ]
        ),
    )


def _save(client: Client, r: Resource, args: argparse.Namespace) -> None:
    """Download `r` to the output path as the command line asks (connections, verification)."""
    client.save(
        r,
        args.output,
        connections=args.connections,
        progress=Bar(sys.stderr),
        verify=not args.no_verify,
    )


def _fetch(client: Client, args: argparse.Namespace) -> None:
    fmt = args.format or FORMATS.get(Path(args.output).suffix, "npy")
    r = client.resource(args.scheme, args.shape, format=fmt, **_params(args))
    _save(client, r, args)
    _print(
        args,
        {"path": args.output, "bytes": r.length, "etag": r.etag, "url": r.url},
        f"{args.output}: {r.length} bytes ({fmt}), seed {r.info['seed']}",
    )


def _bundle(client: Client, args: argparse.Namespace) -> None:
    r = client.bundle_resource(_read_json(args.manifest))
    _save(client, r, args)
    _print(
        args,
        {
            "path": args.output,
            "bytes": r.length,
            "tensors": len(r.info["tensors"]),
            "etag": r.etag,
        },
        f"{args.output}: {r.length} bytes, {len(r.info['tensors'])} tensors, seed {r.info['seed']}",
    )


def _read_json(name: str) -> Any:
    text = sys.stdin.read() if name == "-" else Path(name).read_text()
    try:
        return json.loads(text)
    except ValueError as exc:
        raise UsageError(f"{name} is not JSON: {exc}") from None


def _checkpoint_dcp(client: Client, body: dict[str, Any], args: argparse.Namespace) -> None:
    from service.client import dcp

    if args.max_shard_size is not None:
        raise UsageError("--max-shard-size applies to --layout hf; a DCP directory is one file")
    seed, total = dcp.write(client, body, args.output, connections=args.connections,
                            progress=Bar(sys.stderr), verify=not args.no_verify)  # fmt: skip
    data = {"path": args.output, "seed": seed, "bytes": total, "layout": "dcp"}
    _print(args, data, f"{args.output}: torch.distributed.checkpoint, {total} bytes of tensors, "
           f"seed {seed}")  # fmt: skip


def _checkpoint(client: Client, args: argparse.Namespace) -> None:
    from service.client import checkpoint

    config = _read_json(args.config)
    if not isinstance(config, dict):
        raise UsageError(f"{args.config} must hold a JSON object (a config.json)")
    body: dict[str, Any] = {"recipe": args.recipe, "config": config}
    body |= {k: getattr(args, k) for k in ("seed", "dtype") if getattr(args, k) is not None}
    if args.layout == "dcp":
        _checkpoint_dcp(client, body, args)
        return
    size = args.max_shard_size or checkpoint.DEFAULT_SHARD
    try:
        checkpoint.parse_size(size)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    w = checkpoint.write(
        client,
        body,
        args.output,
        max_shard_size=size,
        connections=args.connections,
        progress=Bar(sys.stderr),
        verify=not args.no_verify,
    )
    kept = len(w.shards) - len(w.fetched)
    _print(
        args,
        {"path": str(w.directory), "seed": w.seed, "bytes": w.bytes,
         "shards": [s.filename for s in w.shards], "fetched": list(w.fetched)},
        f"{w.directory}: {len(w.shards)} shard(s), {w.bytes} bytes, seed {w.seed}"
        + (f" ({kept} already there, verified)" if kept else ""),
    )  # fmt: skip


_COMMANDS: dict[str, Callable[[Client, argparse.Namespace], None]] = {
    "schemes": _schemes,
    "describe": _describe,
    "fetch": _fetch,
    "bundle": _bundle,
    "checkpoint": _checkpoint,
}


def run(args: argparse.Namespace) -> int:
    # imported on use, so that `weightgen serve` and `-h` do not load httpx and numpy
    from service.client import Client

    with Client(args.url, api_key=args.api_key) as client:
        command = _COMMANDS.get(args.command)
        if command is not None:
            command(client, args)
    return 0


def serve(host: str | None, port: int | None) -> None:
    import uvicorn
    from pydantic import ValidationError
    from pydantic_settings import SettingsError

    from service import allocator, logs
    from service.api import create_app
    from service.api.protocol import bounded
    from service.config import Settings

    overrides: dict[str, Any] = {}
    if host is not None:
        overrides["host"] = host
    if port is not None:
        overrides["port"] = port
    try:
        settings = Settings(**overrides)
    except ValidationError as exc:
        # one line per setting, without the value given: it may be an API key
        for e in exc.errors():
            where = "_".join(str(part) for part in e["loc"]).upper()
            print(f"weightgen: error: WEIGHTGEN_{where}: {e['msg']}", file=sys.stderr)
        raise SystemExit(EXIT_USAGE) from None
    except SettingsError as exc:  # a list or tuple setting that is not JSON
        print(f"weightgen: error: {exc}", file=sys.stderr)
        raise SystemExit(EXIT_USAGE) from None
    allocator.pin_mmap_threshold(settings.malloc_mmap_threshold)
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        # httptools bounded in head size and time (service/api/protocol.py)
        http=bounded(settings.max_header_bytes, settings.header_timeout),
        log_config=logs.config(settings.log_level),
        access_log=False,  # the service logs each request itself, as JSON with its id
        timeout_graceful_shutdown=settings.shutdown_timeout,
    )


def main(argv: Sequence[str] | None = None) -> None:
    args = _parser().parse_args(sys.argv[1:] if argv is None else argv)
    if args.command == "serve":
        serve(args.host, args.port)
        return
    from service.client import IntegrityError, ProblemError, UnreachableError

    exit_codes: tuple[tuple[type[Exception], int], ...] = (
        (UsageError, EXIT_USAGE),
        (ProblemError, EXIT_PROBLEM),
        (UnreachableError, EXIT_UNREACHABLE),
        (IntegrityError, EXIT_INTEGRITY),
        (OSError, EXIT_PROBLEM),
    )
    try:
        code = run(args)
    except tuple(kind for kind, _ in exit_codes) as exc:
        message = (
            f"{exc.title} ({exc.status}): {exc.detail}"
            if isinstance(exc, ProblemError)
            else str(exc)
        )
        print(f"weightgen: error: {message}", file=sys.stderr)
        code = next(status for kind, status in exit_codes if isinstance(exc, kind))
    raise SystemExit(code)


if __name__ == "__main__":
    main()
