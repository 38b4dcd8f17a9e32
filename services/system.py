"""What the dashboard shows around the pages: the exchange in use, the Temporal UI to link sessions
to, and, when the exchange is the local sim, its replay speed and market time."""

from __future__ import annotations

from dataclasses import dataclass

import httpx

from core.settings import Settings

SIM_TIMEOUT_S = 1.0


@dataclass(frozen=True)
class ReplayedSeries:
    """One file the sim replays, in real dates: the file's span and the candle replaying now
    (``copy`` counts how often a tiled file started over, its prices scaled to join up)."""

    symbol: str
    interval: str
    real_from: int
    real_to: int
    real_now: int | None
    copy: int


@dataclass(frozen=True)
class SimClock:
    reachable: bool
    speed: float | str | None
    market_time: int | None
    replaying: tuple[ReplayedSeries, ...] = ()


def _replayed(state: dict) -> tuple[ReplayedSeries, ...]:
    seen: dict[tuple[str, str], ReplayedSeries] = {}
    for s in state.get("series", ()):
        key = (s["symbol"], s["interval"])
        if s.get("kind") == "mark" or key in seen or "real_first_open_time" not in s:
            continue
        seen[key] = ReplayedSeries(s["symbol"], s["interval"], s["real_first_open_time"], s["real_last_open_time"],
                                   s["replaying_real_open_time"], s["copy"])
    return tuple(seen[k] for k in sorted(seen))


@dataclass(frozen=True)
class SystemInfo:
    exchange: str
    temporal_ui_url: str | None
    temporal_namespace: str
    sim: SimClock | None


class System:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    async def info(self) -> SystemInfo:
        s = self.settings
        sim = await self._sim_clock(s.exchange_rest_url) if s.exchange_is_local_sim else None
        return SystemInfo(exchange="sim" if s.exchange_is_local_sim else "binance",
                          temporal_ui_url=s.temporal_ui_target, temporal_namespace=s.temporal_namespace, sim=sim)

    @staticmethod
    async def _sim_clock(base_url: str) -> SimClock:
        try:
            async with httpx.AsyncClient(timeout=SIM_TIMEOUT_S) as http:
                reply = await http.get(f"{base_url.rstrip('/')}/sim/state")
                reply.raise_for_status()
                state = reply.json()
            return SimClock(reachable=True, speed=state.get("speed"), market_time=state.get("virtual_now_ms"),
                            replaying=_replayed(state))
        except (httpx.HTTPError, ValueError, KeyError, TypeError):
            # The banner then says the sim is unreachable instead of the whole call failing.
            return SimClock(reachable=False, speed=None, market_time=None)
