"""A route class for endpoints that receive secrets (passwords, exchange keys, tokens).

FastAPI's 422 reply echoes each rejected value as ``input``: a mistyped exchange secret or a
password would travel back in the body, and into any proxy or client log that records bodies.
Routes of this class answer the same 422 without the ``input`` values.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from starlette.requests import Request
from starlette.responses import Response


class SecretSafeRoute(APIRoute):
    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def route(request: Request) -> Response:
            try:
                return await handler(request)
            except RequestValidationError as exc:
                scrubbed = [{k: v for k, v in error.items() if k != "input"} for error in exc.errors()]
                raise RequestValidationError(scrubbed) from None

        return route
