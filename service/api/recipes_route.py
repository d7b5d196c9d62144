"""GET /v1/recipes: the model recipes of bundles (`service.recipes`), their config fields and
the law of each parameter group with its upstream source. Its own router: the app includes it
with `app.include_router(recipes_route.router)`."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from service.api.catalogue import recipe_catalogue

router = APIRouter(generate_unique_id_function=lambda route: route.name)  # operationId


@router.get("/v1/recipes", tags=["catalogue"])
async def recipes_catalogue() -> dict[str, Any]:
    """Every model recipe of bundles: the stack and version it follows, the config fields it
    reads (defaults, meaning, bounds), and per parameter group the law, its formula and the
    upstream source (file:line)."""
    return recipe_catalogue()
