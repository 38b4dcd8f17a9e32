"""Shared plumbing of the REST routers: Binance error replies and the kline query parameters."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from sim.exchange.errors import BinanceApiError, invalid_interval, invalid_value
from sim.exchange.market import KlineQuery
from sim.exchange.params import limit_param, optional_int, required_text, symbol_param
from trading.candle import INTERVAL_MS

Endpoint = Callable[[Request], Awaitable[Response]]


def binance_endpoint(handler: Endpoint) -> Endpoint:
    """Turn a raised ``BinanceApiError`` into Binance's JSON error reply."""

    async def endpoint(request: Request) -> Response:
        try:
            return await handler(request)
        except BinanceApiError as error:
            return error.response()

    endpoint.__name__ = handler.__name__
    return endpoint


def wall_ms() -> int:
    return int(time.time() * 1000)


def kline_params(request: Request) -> tuple[str, str, KlineQuery]:
    params = request.query_params
    symbol = symbol_param(params)
    assert symbol is not None
    interval = required_text(params, "interval")
    if interval not in INTERVAL_MS:
        raise invalid_interval()
    start, end = optional_int(params, "startTime"), optional_int(params, "endTime")
    if start is not None and end is not None and start > end:
        raise invalid_value("startTime")
    return symbol, interval, KlineQuery(start, end, limit_param(params, default=500, maximum=1000))


def json_reply(payload: object) -> JSONResponse:
    return JSONResponse(payload)
