"""Test and operator controls under ``/sim`` (never Binance paths): state, faults, request log."""

from __future__ import annotations

import json

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from sim.exchange.catalog import SeriesKind
from sim.exchange.clock import MarketClock
from sim.exchange.faults import Faults, RequestLog
from sim.exchange.lockstep import Lockstep
from sim.exchange.streams import StreamHub


def control_routes(
    clock: MarketClock, hub: StreamHub, faults: Faults, request_log: RequestLog, tiling: bool, lockstep: Lockstep
) -> list[Route]:
    async def state(request: Request) -> Response:
        now = clock.virtual_now_ms
        series = []
        for kind, s in clock.catalog.all_series():
            closed = s.count_closed_by(now)
            # The real dates behind the virtual clock: which candle of the file is replaying now.
            copy, position = divmod(closed - 1, s.file_length) if closed else (0, None)
            series.append(
                {
                    "real_first_open_time": s.source[0].open_time,
                    "real_last_open_time": s.source[-1].open_time,
                    "replaying_real_open_time": s.source[position].open_time if position is not None else None,
                    "copy": copy,
                    "market": "spot" if kind is SeriesKind.SPOT else "usdm",
                    "kind": kind.value,
                    "symbol": s.symbol,
                    "interval": s.interval,
                    "closed_candles": closed,
                    "last_closed_open_time": s.candle(closed - 1).open_time if closed else None,
                    "file_candles": s.file_length,
                }
            )
        return JSONResponse(
            {
                "origin_ms": clock.origin_ms,
                "virtual_now_ms": now,
                "speed": clock.speed,
                "tiling": tiling,
                "events_sent": clock.events_sent,
                "ws_connections": len(hub.connections),
                "ws_connections_opened": hub.connections_opened,
                "ws_connections_dropped": hub.connections_dropped,
                "series": series,
                "lockstep": lockstep.view(),
                "lockstep_timeouts": lockstep.timeouts,
            }
        )

    async def fault_settings(request: Request) -> Response:
        if request.method == "POST":
            try:
                body = json.loads(await request.body() or b"{}")
                if not isinstance(body, dict):
                    raise ValueError("the body must be a JSON object of fault settings")
                faults.update(body)
                if faults.user_stream_down:
                    await hub.drop_user_streams()
            except ValueError as exc:
                return JSONResponse({"error": str(exc)}, status_code=400)
        return JSONResponse(faults.as_dict())

    async def requests(request: Request) -> Response:
        if request.method == "DELETE":
            request_log.entries.clear()
        return JSONResponse(request_log.as_list())

    return [
        Route("/sim/state", state),
        Route("/sim/faults", fault_settings, methods=["GET", "POST"]),
        Route("/sim/requests", requests, methods=["GET", "DELETE"]),
    ]
