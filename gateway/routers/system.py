"""``/api/system``: what the dashboard shows around the pages — the exchange in use, the Temporal UI
to link sessions to, and, when the exchange is the local sim, its replay speed and market time."""

from __future__ import annotations

import httpx
from fastapi import APIRouter
from pydantic import BaseModel, Field

from gateway.deps import SettingsDep

router = APIRouter(prefix="/api", tags=["system"])

SIM_TIMEOUT_S = 1.0


class SimClockOut(BaseModel):
    reachable: bool = Field(description="false when the sim did not answer; speed and market time are then null")
    speed: float | str | None = Field(description="replay speed: a multiple of real time, or `max`")
    market_time: int | None = Field(description="the sim's market time, ms since the epoch")


class SystemOut(BaseModel):
    exchange: str = Field(description="`sim` (the local sim exchange) or `binance`")
    temporal_ui_url: str | None = Field(description="base URL of the Temporal Web UI, when there is one")
    temporal_namespace: str
    sim: SimClockOut | None = Field(description="the sim's clock; null unless the exchange is the local sim")


async def _sim_clock(base_url: str) -> SimClockOut:
    try:
        async with httpx.AsyncClient(timeout=SIM_TIMEOUT_S) as http:
            reply = await http.get(f"{base_url.rstrip('/')}/sim/state")
            reply.raise_for_status()
            state = reply.json()
        return SimClockOut(reachable=True, speed=state.get("speed"), market_time=state.get("virtual_now_ms"))
    except (httpx.HTTPError, ValueError):
        # The banner then says the sim is unreachable instead of the whole call failing.
        return SimClockOut(reachable=False, speed=None, market_time=None)


@router.get("/system", response_model=SystemOut)
async def get_system(settings: SettingsDep) -> SystemOut:
    sim = await _sim_clock(settings.exchange_rest_url) if settings.exchange_is_local_sim else None
    return SystemOut(exchange="sim" if settings.exchange_is_local_sim else "binance",
                     temporal_ui_url=settings.temporal_ui_target, temporal_namespace=settings.temporal_namespace,
                     sim=sim)
