"""The route class of the paper-trading and backtest routers.

Kept so those routers read the same as before; the one 422 shape every route answers now comes from
the app-wide handler in ``gateway.errors`` (``invalid_request``).
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from starlette.requests import Request
from starlette.responses import Response

from gateway.errors import invalid_request


class RejectingRoute(APIRoute):
    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def route(request: Request) -> Response:
            try:
                return await handler(request)
            except RequestValidationError as exc:
                return invalid_request(exc)

        return route
