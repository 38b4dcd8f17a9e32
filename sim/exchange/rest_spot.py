"""Spot market-data REST (``/api/v3``), same paths, parameters and shapes as Binance spot.
Account and order endpoints belong in their own router beside this one."""

from __future__ import annotations

import json

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from sim.exchange.catalog import SeriesKind
from sim.exchange.errors import BinanceApiError, invalid_symbol
from sim.exchange.formats import book_row, decimal_text, kline_row, ticker_24h
from sim.exchange.market import MarketView
from sim.exchange.params import symbol_param
from sim.exchange.rest_common import binance_endpoint, json_reply, kline_params, wall_ms
from sim.exchange.symbols import symbol_info


def _requested_symbols(request: Request, known: list[str]) -> list[str]:
    params = request.query_params
    single = symbol_param(params, required=False)
    if single is not None:
        if single not in known:
            raise invalid_symbol()
        return [single]
    if params.get("symbols"):
        try:
            many = json.loads(params["symbols"])
        except json.JSONDecodeError:
            raise BinanceApiError(
                -1100,
                "Illegal characters found in parameter 'symbols'; legal range is "
                '\'^\\[("[A-Z0-9-_.]{1,20}"(,"[A-Z0-9-_.]{1,20}"){0,}){0,1}\\]$\'.',
            ) from None
        if not isinstance(many, list) or not all(isinstance(s, str) for s in many):
            raise BinanceApiError(-1100, "Illegal characters found in parameter 'symbols'.")
        if any(s not in known for s in many):
            raise invalid_symbol()
        return many
    return known


def spot_routes(market: MarketView, weight_limit: int) -> list[Route]:
    catalog = market.catalog

    @binance_endpoint
    async def ping(request: Request) -> Response:
        return json_reply({})

    @binance_endpoint
    async def server_time(request: Request) -> Response:
        return json_reply({"serverTime": wall_ms()})

    @binance_endpoint
    async def exchange_info(request: Request) -> Response:
        symbols = _requested_symbols(request, catalog.spot_symbols)
        return json_reply(
            {
                "timezone": "UTC",
                "serverTime": wall_ms(),
                "rateLimits": [
                    {
                        "rateLimitType": "REQUEST_WEIGHT",
                        "interval": "MINUTE",
                        "intervalNum": 1,
                        "limit": weight_limit,
                    },
                    {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": 100},
                    {"rateLimitType": "ORDERS", "interval": "DAY", "intervalNum": 1, "limit": 200000},
                    {"rateLimitType": "RAW_REQUESTS", "interval": "MINUTE", "intervalNum": 5, "limit": 61000},
                ],
                "exchangeFilters": [],
                "symbols": [symbol_info(s, market.finest(SeriesKind.SPOT, s)) for s in symbols],
            }
        )

    @binance_endpoint
    async def klines(request: Request) -> Response:
        symbol, interval, query = kline_params(request)
        return json_reply([kline_row(c) for c in market.klines(SeriesKind.SPOT, symbol, interval, query)])

    @binance_endpoint
    async def ticker_day(request: Request) -> Response:
        symbols = _requested_symbols(request, catalog.spot_symbols)
        tickers = [ticker_24h(s, market.last_day(s), market.now_ms) for s in symbols]
        single = request.query_params.get("symbol")
        return json_reply(tickers[0] if single else tickers)

    @binance_endpoint
    async def ticker_price(request: Request) -> Response:
        symbols = _requested_symbols(request, catalog.spot_symbols)
        prices = [{"symbol": s, "price": decimal_text(market.last_price(SeriesKind.SPOT, s))} for s in symbols]
        return json_reply(prices[0] if request.query_params.get("symbol") else prices)

    @binance_endpoint
    async def book_ticker(request: Request) -> Response:
        # No order book here: the best bid and ask are the last price (the open of the candle in
        # progress between candles), as paper fills assume.
        symbols = _requested_symbols(request, catalog.spot_symbols)
        rows = [book_row(s, market.last_price(SeriesKind.SPOT, s)) for s in symbols]
        return json_reply(rows[0] if request.query_params.get("symbol") else rows)

    return [
        Route("/api/v3/ping", ping),
        Route("/api/v3/time", server_time),
        Route("/api/v3/exchangeInfo", exchange_info),
        Route("/api/v3/klines", klines),
        Route("/api/v3/ticker/24hr", ticker_day),
        Route("/api/v3/ticker/price", ticker_price),
        Route("/api/v3/ticker/bookTicker", book_ticker),
    ]
