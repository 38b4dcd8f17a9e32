"""``/api/system``: what the dashboard shows around the pages — the exchange in use, the Temporal UI
to link sessions to, and, when the exchange is the local sim, its replay speed and market time."""

from __future__ import annotations

from dataclasses import asdict

from fastapi import APIRouter
from pydantic import BaseModel, Field

from gateway.deps import SystemDep

router = APIRouter(prefix="/api", tags=["system"])


class ReplayedSeriesOut(BaseModel):
    symbol: str
    interval: str
    real_from: int = Field(description="open time of the file's first candle: the real date, ms")
    real_to: int = Field(description="open time of the file's last candle, ms")
    real_now: int | None = Field(description="real open time of the candle replaying now; null before the first")
    copy_: int = Field(alias="copy", description="how often a tiled file started over (0: the real data as is)")


class SimClockOut(BaseModel):
    reachable: bool = Field(description="false when the sim did not answer; speed and market time are then null")
    speed: float | str | None = Field(description="replay speed: a multiple of real time, or `max`")
    market_time: int | None = Field(description="the sim's market time (its virtual clock), ms since the epoch")
    replaying: list[ReplayedSeriesOut] = Field(description="the files replayed, in their real dates")


class SystemOut(BaseModel):
    exchange: str = Field(description="`sim` (the local sim exchange) or `binance`")
    temporal_ui_url: str | None = Field(description="base URL of the Temporal Web UI, when there is one")
    temporal_namespace: str
    sim: SimClockOut | None = Field(description="the sim's clock; null unless the exchange is the local sim")


@router.get("/system", response_model=SystemOut)
async def get_system(system: SystemDep) -> SystemOut:
    info = await system.info()
    sim = SimClockOut(reachable=info.sim.reachable, speed=info.sim.speed, market_time=info.sim.market_time,
                      replaying=[ReplayedSeriesOut(**asdict(r)) for r in info.sim.replaying]) if info.sim else None
    return SystemOut(exchange=info.exchange, temporal_ui_url=info.temporal_ui_url,
                     temporal_namespace=info.temporal_namespace, sim=sim)
