"""The `weightgen` command."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any

from service.config import Settings


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="weightgen", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the HTTP service")
    serve.add_argument("--host", help="interface to bind (default WEIGHTGEN_HOST or 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port (default WEIGHTGEN_PORT or 8000)")
    return parser


def serve(host: str | None, port: int | None) -> None:
    import uvicorn

    from service.api import create_app

    overrides: dict[str, Any] = {}
    if host is not None:
        overrides["host"] = host
    if port is not None:
        overrides["port"] = port
    settings = Settings(**overrides)
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
    )


def main(argv: Sequence[str] | None = None) -> None:
    args = _parser().parse_args(sys.argv[1:] if argv is None else argv)
    if args.command == "serve":
        serve(args.host, args.port)
