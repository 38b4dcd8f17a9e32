"""Test and operator controls under ``/sim`` (never API paths): health, faults, request log, usage."""

from __future__ import annotations

import json

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from sim.xai.faults import Faults
from sim.xai.ledger import Ledger


def control_routes(faults: Faults, ledger: Ledger) -> list[Route]:
    async def health(request: Request) -> Response:
        return JSONResponse({"ok": True})

    async def fault_settings(request: Request) -> Response:
        if request.method == "POST":
            try:
                body = json.loads(await request.body() or b"{}")
                if not isinstance(body, dict):
                    raise ValueError("the body must be a JSON object of fault settings")
                faults.update(body)
            except ValueError as exc:
                return JSONResponse({"error": str(exc)}, status_code=400)
        return JSONResponse(faults.as_dict())

    async def reset_faults(request: Request) -> Response:
        faults.reset()
        return JSONResponse(faults.as_dict())

    async def requests(request: Request) -> Response:
        if request.method == "DELETE":
            ledger.entries.clear()
        return JSONResponse(list(ledger.entries))

    async def usage(request: Request) -> Response:
        if request.method == "DELETE":
            ledger.clear_usage()
        return JSONResponse(ledger.usage_report())

    return [
        Route("/sim/health", health),
        Route("/sim/faults", fault_settings, methods=["GET", "POST"]),
        Route("/sim/faults/reset", reset_faults, methods=["POST"]),
        Route("/sim/requests", requests, methods=["GET", "DELETE"]),
        Route("/sim/usage", usage, methods=["GET", "DELETE"]),
    ]
