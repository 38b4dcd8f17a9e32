"""The route class of the paper-trading and backtest routers: one 422 shape for every rejection.

FastAPI's own 422 echoes each rejected value as ``input``; a NaN there cannot be encoded as JSON
(a 500 instead of the 422). These routes answer ``{"detail": {"field", "reason"}, "errors": [...]}``
without the values, the same shape as a session update the workflow rejected.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Sequence
from typing import Any

from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from starlette.requests import Request
from starlette.responses import Response


def _field(loc: Sequence[Any]) -> str | None:
    parts = [str(p) for p in loc if p not in ("body", "query", "path")]
    return ".".join(parts) or None


class RejectingRoute(APIRoute):
    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def route(request: Request) -> Response:
            try:
                return await handler(request)
            except RequestValidationError as exc:
                errors: list[dict[str, Any]] = [
                    {"loc": [str(p) for p in e.get("loc", ())], "msg": str(e.get("msg", "")),
                     "type": str(e.get("type", ""))} for e in exc.errors()]
                first = errors[0] if errors else {"loc": [], "msg": "invalid request"}
                detail = {"field": _field(first["loc"]), "reason": first["msg"]}
                return JSONResponse({"detail": detail, "errors": errors}, status_code=422)

        return route
