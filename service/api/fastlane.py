"""The fast lane of GET and HEAD /v1/tensors/{scheme} and /v1/bundles/{manifest}: a URL whose
plan is in the PlanCache is answered from it here, without routing, dependency injection,
validation or planning (the route would do the same: `respond` on the plan). The innermost
middleware: the request id, key, body and CORS layers still wrap it. A miss goes on to the
route, which plans the URL and remembers it."""

from __future__ import annotations

from typing import ClassVar

from fastapi import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from service.api import problems
from service.api.deps import services
from service.api.respond import respond
from service.errors import WeightgenError


class CachedUrls:
    PREFIXES: ClassVar[dict[str, str]] = {"/v1/tensors/": "scheme", "/v1/bundles/": "manifest"}

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] in ("GET", "HEAD"):
            path: str = scope["path"]
            root: str = scope.get("root_path", "")
            if root and path.startswith(root):
                path = path[len(root) :]
            for prefix in self.PREFIXES:
                rest = path[len(prefix) :] if path.startswith(prefix) else ""
                if rest and "/" not in rest and await self._hit(scope, receive, send, prefix, rest):
                    return
        await self.app(scope, receive, send)

    async def _hit(
        self, scope: Scope, receive: Receive, send: Send, prefix: str, rest: str
    ) -> bool:
        """Answer from the cache if the URL is in it; False to let the route plan it."""
        request = Request(scope, receive)
        s = services(request)
        hit = s.plans.get(s.plans.key(scope))
        if hit is None:
            return False
        scope["route"] = s.routes[prefix]  # metrics, logs
        scope["path_params"] = {self.PREFIXES[prefix]: rest}
        try:
            response = await respond(hit[0], dict(hit[1]), request)
        except WeightgenError as exc:  # outside the router: its handlers are not reached
            response = problems.domain(request, exc)
        except problems.REFUSALS as exc:
            response = problems.semantics(request, exc)
        await response(scope, receive, send)
        return True
