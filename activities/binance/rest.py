"""The Binance REST client (httpx, async): time sync, exchangeInfo, klines with paging, 24h tickers.

Base URLs are constructor arguments, so the same code talks to Binance, its testnet or sim/exchange.
Only closed candles come out of ``klines``: a row counts as closed when a newer row follows it
(DESIGN §4), so the newest row of a reply (possibly still open) is never returned."""

from __future__ import annotations

import json
import time
from types import TracebackType
from typing import Any, Literal

import httpx

from activities.binance.models import BookTicker, FundingRate, SymbolInfo, Ticker24h
from activities.binance.rate_limit import BanHook, RequestGate
from activities.binance.replies import parse_book_ticker, parse_funding_rate, parse_symbol_info, parse_ticker
from activities.binance.validation import (
    BadDataCounter,
    BadExchangeData,
    kline_row_candle,
)
from activities.exchange_errors import (
    BadExchangeDataError,
    IpBannedError,
    RateLimitedError,
    TemporaryExchangeError,
    error_from_reply,
)
from trading.candle import Candle, interval_ms

Market = Literal["spot", "usdm"]
MAX_KLINES_PER_REQUEST = 1000
_DEFAULT_RETRY_AFTER_S = 60.0
_DEFAULT_BAN_S = 120.0


class BinanceRestClient:
    def __init__(
        self,
        base_url: str,
        *,
        futures_base_url: str | None = None,
        timeout_s: float = 10.0,
        weight_limit: int = 6000,
        max_in_flight: int = 1,
        on_ban: BanHook | None = None,
        bad_data: BadDataCounter | None = None,
        http_client: httpx.AsyncClient | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.futures_base_url = (futures_base_url or base_url).rstrip("/")
        self.gate = RequestGate(weight_limit=weight_limit, max_in_flight=max_in_flight, on_ban=on_ban)
        self.bad_data = bad_data or BadDataCounter()
        self._owns_http = http_client is None
        self._http = http_client or httpx.AsyncClient(timeout=timeout_s)

    async def aclose(self) -> None:
        if self._owns_http:
            await self._http.aclose()

    async def __aenter__(self) -> BinanceRestClient:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    # -- transport ------------------------------------------------------------------------------
    async def _get(
        self, path: str, params: dict[str, Any] | None = None, *, weight: int, market: Market = "spot"
    ) -> Any:
        base = self.futures_base_url if market == "usdm" else self.base_url
        async with self.gate.slot(weight):
            try:
                response = await self._http.get(base + path, params=params)
            except httpx.TimeoutException as exc:
                raise TemporaryExchangeError(f"timed out calling {path}: {exc!r}") from exc
            except httpx.TransportError as exc:
                raise TemporaryExchangeError(f"could not reach the exchange for {path}: {exc!r}") from exc
            self.gate.record_weight(response.headers)
            if response.status_code in (418, 429):
                await self._refused(path, response)
        if response.status_code >= 400:
            code, message = _error_body(response)
            raise error_from_reply(response.status_code, code, f"{path}: {message}")
        try:
            return response.json()
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            self.bad_data.reject(f"GET {path}", BadExchangeData("malformed_json", str(exc)), response.text)
            raise BadExchangeDataError(
                f"{path}: the exchange sent malformed JSON", http_status=response.status_code
            ) from None

    async def _refused(self, path: str, response: httpx.Response) -> None:
        code, message = _error_body(response)
        banned = response.status_code == 418
        retry_after = _retry_after(response, _DEFAULT_BAN_S if banned else _DEFAULT_RETRY_AFTER_S)
        if banned:
            await self.gate.record_ban(retry_after, message, code)
            raise IpBannedError(f"{path}: {message}", retry_after_s=retry_after, code=code)
        self.gate.record_retry_after(retry_after)
        raise RateLimitedError(f"{path}: {message}", retry_after_s=retry_after, code=code)

    # -- endpoints ------------------------------------------------------------------------------
    async def ping(self) -> None:
        await self._get("/api/v3/ping", weight=1)

    async def server_time(self) -> int:
        reply = await self._get("/api/v3/time", weight=1)
        if not isinstance(reply, dict) or not isinstance(reply.get("serverTime"), int):
            self.bad_data.reject("GET /api/v3/time", BadExchangeData("bad_shape", "no integer serverTime"), reply)
            raise BadExchangeDataError("/api/v3/time: no serverTime in the reply")
        return reply["serverTime"]

    async def sync_time(self) -> int:
        """Measure and keep the offset (server minus local wall clock, ms) used for signing."""
        sent = time.time()
        server = await self.server_time()
        received = time.time()
        offset = server - int((sent + received) / 2 * 1000)
        self.gate.server_offset_ms = offset
        return offset

    @property
    def time_offset_ms(self) -> int:
        return self.gate.server_offset_ms

    async def exchange_info(
        self, symbols: list[str] | None = None, *, market: Market = "spot"
    ) -> dict[str, SymbolInfo]:
        """Symbols with their filters; ``market="usdm"`` reads the USDⓈ-M contracts instead."""
        if market == "usdm":
            path, params, weight = "/fapi/v1/exchangeInfo", None, 1
        else:
            params = {"symbols": json.dumps(symbols, separators=(",", ":"))} if symbols else None
            path, weight = "/api/v3/exchangeInfo", 20
        reply = await self._get(path, params, weight=weight, market=market)
        if not isinstance(reply, dict) or not isinstance(reply.get("symbols"), list):
            self.bad_data.reject(f"GET {path}", BadExchangeData("bad_shape", "no symbols list"), reply)
            raise BadExchangeDataError(f"{path}: no symbols list in the reply")
        infos: dict[str, SymbolInfo] = {}
        for entry in reply["symbols"]:
            try:
                info = parse_symbol_info(entry)
            except BadExchangeData as bad:
                self.bad_data.reject(f"GET {path}", bad, entry)
                continue
            if symbols is None or info.symbol in symbols:
                infos[info.symbol] = info
        return infos

    async def funding_rates(
        self, symbol: str, *, start_ms: int | None = None, end_ms: int | None = None, limit: int = 1000
    ) -> list[FundingRate]:
        """USDⓈ-M funding-rate history, oldest first (one page: at most ``limit`` <= 1000 rows)."""
        if not 1 <= limit <= MAX_KLINES_PER_REQUEST:
            raise ValueError(f"limit must be between 1 and 1000, got {limit}")
        params: dict[str, Any] = {"symbol": symbol, "limit": limit}
        if start_ms is not None:
            params["startTime"] = start_ms
        if end_ms is not None:
            params["endTime"] = end_ms
        reply = await self._get("/fapi/v1/fundingRate", params, weight=1, market="usdm")
        if not isinstance(reply, list):
            self.bad_data.reject("GET /fapi/v1/fundingRate", BadExchangeData("bad_shape", "not a list"), reply)
            raise BadExchangeDataError("/fapi/v1/fundingRate: unexpected reply shape")
        rates: list[FundingRate] = []
        for entry in reply:
            try:
                rate = parse_funding_rate(entry)
                if rates and rate.funding_time <= rates[-1].funding_time:
                    raise BadExchangeData(
                        "out_of_order", f"funding time {rate.funding_time} is not after {rates[-1].funding_time}"
                    )
            except BadExchangeData as bad:
                self.bad_data.reject("GET /fapi/v1/fundingRate", bad, entry)
                continue
            rates.append(rate)
        return rates

    async def ticker_24h(self, symbol: str | None = None) -> list[Ticker24h]:
        reply = await self._get(
            "/api/v3/ticker/24hr", {"symbol": symbol} if symbol else None, weight=2 if symbol else 80
        )
        entries = [reply] if isinstance(reply, dict) else reply
        if not isinstance(entries, list):
            self.bad_data.reject("GET /api/v3/ticker/24hr", BadExchangeData("bad_shape", "not a list"), reply)
            raise BadExchangeDataError("/api/v3/ticker/24hr: unexpected reply shape")
        tickers = []
        for entry in entries:
            try:
                tickers.append(parse_ticker(entry))
            except BadExchangeData as bad:
                self.bad_data.reject("GET /api/v3/ticker/24hr", bad, entry)
        return tickers

    async def book_ticker(self, symbol: str, *, market: Market = "spot") -> BookTicker:
        """The best bid and ask of ``symbol`` (USDⓈ-M replies carry their transaction time)."""
        path = "/fapi/v1/ticker/bookTicker" if market == "usdm" else "/api/v3/ticker/bookTicker"
        reply = await self._get(path, {"symbol": symbol}, weight=2, market=market)
        try:
            return parse_book_ticker(reply)
        except BadExchangeData as bad:
            self.bad_data.reject(f"GET {path}", bad, reply)
            raise BadExchangeDataError(f"{path}: {bad}") from None

    async def klines(
        self,
        symbol: str,
        interval: str,
        *,
        start_ms: int | None = None,
        end_ms: int | None = None,
        limit: int | None = None,
        market: Market = "spot",
    ) -> list[Candle]:
        """Closed candles, oldest first. With ``start_ms``: from there forward (all of them up to
        ``end_ms``, or the first ``limit``). Without: the newest ``limit`` (default 500) up to
        ``end_ms``. Pages past 1,000 rows as needed."""
        step = interval_ms(interval)
        if limit is not None and limit < 1:
            raise ValueError(f"limit must be at least 1, got {limit}")
        if start_ms is not None and end_ms is not None and start_ms > end_ms:
            raise ValueError(f"start_ms {start_ms} is after end_ms {end_ms}")
        # Ask for one candle past end_ms: a row is known closed only when a newer row follows it.
        fetch_end = None if end_ms is None else end_ms + step
        if start_ms is not None:
            rows = await self._klines_forward(symbol, interval, market, start_ms, fetch_end, limit)
        else:
            rows = await self._klines_backward(symbol, interval, market, fetch_end, (limit or 500) + 1)
        closed = [c for c in rows[:-1] if end_ms is None or c.open_time <= end_ms]
        if limit is not None:
            closed = closed[:limit] if start_ms is not None else closed[-limit:]
        return closed

    async def _klines_forward(
        self, symbol: str, interval: str, market: Market, start: int, end: int | None, limit: int | None
    ) -> list[Candle]:
        rows: list[Candle] = []
        cursor = start
        while True:
            page = await self._kline_page(
                symbol,
                interval,
                market,
                start=cursor,
                end=end,
                limit=MAX_KLINES_PER_REQUEST,
                after=rows[-1].open_time if rows else None,
            )
            rows.extend(page.candles)
            if page.raw_rows < MAX_KLINES_PER_REQUEST or not page.candles or (limit is not None and len(rows) > limit):
                return rows
            cursor = page.last_open_time + 1

    async def _klines_backward(
        self, symbol: str, interval: str, market: Market, end: int | None, wanted: int
    ) -> list[Candle]:
        rows: list[Candle] = []
        cursor_end = end
        while len(rows) < wanted:
            ask = min(MAX_KLINES_PER_REQUEST, wanted - len(rows))
            page = await self._kline_page(symbol, interval, market, start=None, end=cursor_end, limit=ask, after=None)
            before = [c for c in page.candles if not rows or c.open_time < rows[0].open_time]
            rows = before + rows
            if page.raw_rows < ask or not page.candles:
                return rows
            cursor_end = page.first_open_time - 1
        return rows

    async def _kline_page(
        self,
        symbol: str,
        interval: str,
        market: Market,
        *,
        start: int | None,
        end: int | None,
        limit: int,
        after: int | None,
    ) -> _KlinePage:
        path = "/fapi/v1/klines" if market == "usdm" else "/api/v3/klines"
        params: dict[str, Any] = {"symbol": symbol, "interval": interval, "limit": limit}
        if start is not None:
            params["startTime"] = start
        if end is not None:
            params["endTime"] = end
        weight = 2 if market == "spot" else (5 if limit >= 500 else 2)
        reply = await self._get(path, params, weight=weight, market=market)
        if not isinstance(reply, list):
            self.bad_data.reject(f"GET {path}", BadExchangeData("bad_shape", "klines reply is not a list"), reply)
            raise BadExchangeDataError(f"{path}: klines reply is not a list")
        page = _KlinePage(len(reply))
        previous = after
        for row in reply:
            try:
                candle = kline_row_candle(row, symbol, interval)
                if previous is not None and candle.open_time <= previous:
                    raise BadExchangeData(
                        "duplicate" if candle.open_time == previous else "out_of_order",
                        f"open time {candle.open_time} does not follow {previous}",
                    )
            except BadExchangeData as bad:
                self.bad_data.reject(f"GET {path} {symbol} {interval}", bad, row)
                continue
            page.add(candle)
            previous = candle.open_time
        return page


class _KlinePage:
    def __init__(self, raw_rows: int) -> None:
        self.raw_rows = raw_rows
        self.candles: list[Candle] = []

    def add(self, candle: Candle) -> None:
        self.candles.append(candle)

    @property
    def first_open_time(self) -> int:
        return self.candles[0].open_time

    @property
    def last_open_time(self) -> int:
        return self.candles[-1].open_time


def _error_body(response: httpx.Response) -> tuple[int | None, str]:
    try:
        body = response.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None, f"HTTP {response.status_code}: {response.text[:200]}"
    if isinstance(body, dict) and isinstance(body.get("code"), int):
        return body["code"], str(body.get("msg", ""))
    return None, f"HTTP {response.status_code}: {str(body)[:200]}"


def _retry_after(response: httpx.Response, default: float) -> float:
    value = response.headers.get("retry-after", "")
    try:
        seconds = float(value)
    except ValueError:
        return default
    return seconds if seconds > 0 else default
