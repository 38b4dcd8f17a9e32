"""``GET /api/paper-trading/settings/export``: the caller's paper session settings as a settings
document (``core.settings_document``), the file ``durabot backtest --config`` and ``POST
/api/backtests`` (``settings``) take unchanged. Kept apart from the paper-trading router: it is the
backtests' way in."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response

from core.settings_document import serialise
from gateway.auth.deps import AUTH_ERRORS, CurrentUser, Responses
from gateway.deps import BacktestsDep
from gateway.errors import RejectedOut
from gateway.paper.route import RejectingRoute

router = APIRouter(prefix="/api/paper-trading", tags=["paper-trading"], route_class=RejectingRoute)

DOCUMENT: Responses = {
    200: {"description": "The settings document (format durabot-settings, version 1)",
          "content": {"application/json": {"schema": {"type": "object"}}}},
    409: {"model": RejectedOut, "description": "The saved settings are not a valid document"},
}


@router.get("/settings/export", response_class=Response, responses={**DOCUMENT, **AUTH_ERRORS})
async def export_settings(user: CurrentUser, backtests: BacktestsDep) -> Response:
    """Your session's settings as a settings document, to download or to backtest with."""
    text = serialise(await backtests.session_settings(user))
    return Response(text, media_type="application/json",
                    headers={"Content-Disposition": 'attachment; filename="durabot-settings.json"'})
