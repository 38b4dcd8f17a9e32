"""``GET /v1/models`` and ``GET /v1/models/{id}``, in OpenAI's list and model shapes."""

from __future__ import annotations

import time
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from sim.xai.auth import check_key
from sim.xai.config import SimXaiConfig
from sim.xai.errors import ApiError
from sim.xai.ledger import Ledger


def model_routes(config: SimXaiConfig, ledger: Ledger) -> list[Route]:
    def describe(model: str) -> dict[str, Any]:
        return {"id": model, "object": "model", "created": config.model_created(model), "owned_by": "xai"}

    async def answer(request: Request, build: Any) -> Response:
        wall_ms, path = int(time.time() * 1000), request.url.path
        try:
            check_key(request.headers, config.api_keys)
            body = build()
        except ApiError as exc:
            ledger.record(wall_ms=wall_ms, path=path, model=None, status=exc.status, error_code=exc.code)
            return JSONResponse(exc.body(), exc.status)
        ledger.record(wall_ms=wall_ms, path=path, model=body.get("id"), status=200)
        return JSONResponse(body)

    async def list_models(request: Request) -> Response:
        return await answer(request, lambda: {"object": "list", "data": [describe(m) for m in config.models]})

    async def one_model(request: Request) -> Response:
        model = request.path_params["model"]

        def build() -> dict[str, Any]:
            if model not in config.models:
                raise ApiError(404, f"The model `{model}` does not exist or your team does not have access to it.",
                               code="model_not_found", param="model")
            return describe(model)

        return await answer(request, build)

    return [Route("/v1/models", list_models), Route("/v1/models/{model}", one_model)]
