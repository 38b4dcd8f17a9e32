"""USDⓈ-M futures market data (``/fapi/v1``): ping, time, exchangeInfo, klines, mark-price klines,
premium index, funding-rate history, book ticker.

Symbols with files in data/futures are served from them; every other replayed symbol is served
from its spot series, with no funding history and a last funding rate of 0."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from sim.exchange.catalog import SeriesKind
from sim.exchange.errors import invalid_symbol, invalid_value
from sim.exchange.formats import book_row, decimal_text, kline_row, mark_kline_row
from sim.exchange.market import MarketView
from sim.exchange.params import limit_param, optional_int, symbol_param
from sim.exchange.rest_common import binance_endpoint, json_reply, kline_params, wall_ms
from sim.exchange.symbols import futures_symbol_info


def futures_routes(market: MarketView, weight_limit: int) -> list[Route]:
    catalog = market.catalog

    def check_symbol(symbol: str) -> None:
        if symbol not in catalog.futures_symbols:
            raise invalid_symbol()

    @binance_endpoint
    async def ping(request: Request) -> Response:
        return json_reply({})

    @binance_endpoint
    async def server_time(request: Request) -> Response:
        return json_reply({"serverTime": wall_ms()})

    @binance_endpoint
    async def exchange_info(request: Request) -> Response:
        return json_reply(
            {
                "timezone": "UTC",
                "serverTime": wall_ms(),
                "futuresType": "U_MARGINED",
                "rateLimits": [
                    {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1, "limit": weight_limit}
                ],
                "exchangeFilters": [],
                "assets": [],
                "symbols": [
                    futures_symbol_info(s, market.finest(SeriesKind.FUTURES, s)) for s in catalog.futures_symbols
                ],
            }
        )

    @binance_endpoint
    async def klines(request: Request) -> Response:
        symbol, interval, query = kline_params(request)
        check_symbol(symbol)
        return json_reply([kline_row(c) for c in market.klines(SeriesKind.FUTURES, symbol, interval, query)])

    @binance_endpoint
    async def mark_price_klines(request: Request) -> Response:
        symbol, interval, query = kline_params(request)
        check_symbol(symbol)
        return json_reply([mark_kline_row(c) for c in market.klines(SeriesKind.MARK, symbol, interval, query)])

    @binance_endpoint
    async def premium_index(request: Request) -> Response:
        symbol = symbol_param(request.query_params, required=False)
        if symbol is not None:
            check_symbol(symbol)
            return json_reply(market.premium_index(symbol))
        return json_reply([market.premium_index(s) for s in catalog.futures_symbols])

    @binance_endpoint
    async def book_ticker(request: Request) -> Response:
        symbol = symbol_param(request.query_params, required=False)
        symbols = [symbol] if symbol is not None else catalog.futures_symbols
        for name in symbols:
            check_symbol(name)
        now = market.now_ms
        rows = [{**book_row(s, market.last_price(SeriesKind.FUTURES, s)), "time": now} for s in symbols]
        return json_reply(rows[0] if symbol is not None else rows)

    @binance_endpoint
    async def funding_rate(request: Request) -> Response:
        params = request.query_params
        symbol = symbol_param(params, required=False)
        start, end = optional_int(params, "startTime"), optional_int(params, "endTime")
        if start is not None and end is not None and start > end:
            raise invalid_value("startTime")
        limit = limit_param(params, default=100, maximum=1000)
        symbols = [symbol] if symbol is not None else catalog.futures_symbols
        rows = []
        for name in symbols:
            check_symbol(name)
            for funding_time, rate in market.funding_history(name):
                if (start is None or funding_time >= start) and (end is None or funding_time <= end):
                    rows.append(
                        {
                            "symbol": name,
                            "fundingTime": funding_time,
                            "fundingRate": decimal_text(rate),
                            "markPrice": decimal_text(_mark_at(market, name, funding_time)),
                        }
                    )
        rows.sort(key=lambda r: (r["fundingTime"], r["symbol"]))
        rows = rows[:limit] if start is not None else rows[-limit:]
        return json_reply(rows)

    return [
        Route("/fapi/v1/ping", ping),
        Route("/fapi/v1/time", server_time),
        Route("/fapi/v1/exchangeInfo", exchange_info),
        Route("/fapi/v1/klines", klines),
        Route("/fapi/v1/markPriceKlines", mark_price_klines),
        Route("/fapi/v1/premiumIndex", premium_index),
        Route("/fapi/v1/fundingRate", funding_rate),
        Route("/fapi/v1/ticker/bookTicker", book_ticker),
    ]


def _mark_at(market: MarketView, symbol: str, time_ms: int) -> float:
    """The mark price at a funding instant: the open of the mark candle that contains it."""
    series = market.finest(SeriesKind.MARK, symbol)
    return series.candle(max(series.count_opened_by(time_ms) - 1, 0)).open
