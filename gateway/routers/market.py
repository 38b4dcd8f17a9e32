"""Public market data: latest prices, an overview, candles, and chart data with indicators."""

from __future__ import annotations

import math
from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Path, Query
from pydantic import BaseModel, Field

from activities.market_store import latest_prices, read_candles, stored_streams
from gateway.deps import DbDep, SettingsDep
from trading.candle import INTERVAL_MS, Candle

router = APIRouter(prefix="/api", tags=["market"])

Timeframe = Literal["1m", "5m", "15m", "1h", "4h", "1d"]
TIMEFRAMES: tuple[str, ...] = ("1m", "5m", "15m", "1h", "4h", "1d")
INDICATORS = ("rsi", "macd", "bollinger", "stochastic", "volume", "atr")
INDICATOR_COLUMNS = {
    "rsi": ("rsi",),
    "macd": ("macd", "macd_signal", "macd_histogram"),
    "bollinger": ("bb_lower", "bb_mid", "bb_upper", "bb_bandwidth", "bb_percent_b"),
    "stochastic": ("stoch_k", "stoch_d"),
    "volume": ("volume_sma", "volume_ratio"),
    "atr": ("atr",),
}
NOT_FOUND = {404: {"description": "No data for this symbol"}}
BAD_INPUT = {422: {"description": "Invalid timeframe, range or indicator"}}

SymbolPath = Annotated[str, Path(pattern=r"^[A-Za-z0-9]{2,20}$", description="e.g. BTCUSDT")]


class CandleOut(BaseModel):
    open_time: int = Field(description="ms since the epoch, UTC (market time)")
    close_time: int
    open: float
    high: float
    low: float
    close: float
    volume: float


class CandlesResponse(BaseModel):
    symbol: str
    timeframe: str
    source_interval: str = Field(description="the stored interval the candles come from (aggregated when larger)")
    candles: list[CandleOut]


class ChartResponse(CandlesResponse):
    indicators: dict[str, list[float | None]]


class PriceOut(BaseModel):
    symbol: str
    price: float
    time: int = Field(description="market time of the price, ms")


class OverviewItem(BaseModel):
    symbol: str
    interval: str
    price: float
    time: int
    price_change_24h: float
    price_change_pct_24h: float
    high_24h: float
    low_24h: float
    volume_24h: float


def aggregate(candles: list[Candle], target_ms: int) -> list[Candle]:
    """Bucket finer candles into ``target_ms`` candles on the UTC grid; a bucket still open at the
    last stored close is left out (it is not closed yet)."""
    out: list[Candle] = []
    bucket: list[Candle] = []
    for c in candles:
        start = c.open_time - c.open_time % target_ms
        if bucket and start != bucket[0].open_time - bucket[0].open_time % target_ms:
            out.append(_merge(bucket, target_ms))
            bucket = []
        bucket.append(c)
    if bucket:
        start = bucket[0].open_time - bucket[0].open_time % target_ms
        if bucket[-1].close_time >= start + target_ms:
            out.append(_merge(bucket, target_ms))
    return out


def _merge(bucket: list[Candle], target_ms: int) -> Candle:
    first = bucket[0]
    return Candle(first.open_time - first.open_time % target_ms, first.open, max(c.high for c in bucket),
                  min(c.low for c in bucket), bucket[-1].close, sum(c.volume for c in bucket), target_ms, first.symbol)


async def _candles(db, symbol: str, timeframe: str, limit: int, start: int | None, end: int | None):
    if start is not None and end is not None and start > end:
        raise HTTPException(422, detail=f"from ({start}) is after to ({end})")
    target = INTERVAL_MS[timeframe]
    streams = [interval for sym, interval in await stored_streams(db) if sym == symbol]
    if not streams:
        raise HTTPException(404, detail=f"no market data for symbol {symbol}")
    usable = sorted((i for i in streams if target % INTERVAL_MS[i] == 0), key=lambda i: INTERVAL_MS[i], reverse=True)
    if not usable:
        raise HTTPException(
            404, detail=f"no stored interval of {symbol} builds {timeframe} candles (stored: {', '.join(streams)})"
        )
    source = usable[0]
    ratio = target // INTERVAL_MS[source]
    rows = await read_candles(db, symbol, source, start=start, end=end, limit=(limit + 1) * ratio)
    candles = rows if ratio == 1 else aggregate(rows, target)
    return source, candles[-limit:]


def _out(c: Candle) -> CandleOut:
    return CandleOut(open_time=c.open_time, close_time=c.close_time, open=c.open, high=c.high, low=c.low,
                     close=c.close, volume=c.volume)


@router.get("/candles/{symbol}/{timeframe}", response_model=CandlesResponse, responses={**NOT_FOUND, **BAD_INPUT})
async def get_candles(
    db: DbDep,
    symbol: SymbolPath,
    timeframe: Timeframe,
    limit: Annotated[int, Query(ge=1, le=1000)] = 500,
    start: Annotated[int | None, Query(alias="from", ge=0, description="open time ≥ this (ms)")] = None,
    end: Annotated[int | None, Query(alias="to", ge=0, description="open time ≤ this (ms)")] = None,
) -> CandlesResponse:
    symbol = symbol.upper()
    source, candles = await _candles(db, symbol, timeframe, limit, start, end)
    return CandlesResponse(symbol=symbol, timeframe=timeframe, source_interval=source,
                           candles=[_out(c) for c in candles])


@router.get("/chart/{symbol}/{timeframe}", response_model=ChartResponse, responses={**NOT_FOUND, **BAD_INPUT})
async def get_chart(
    db: DbDep,
    symbol: SymbolPath,
    timeframe: Timeframe,
    indicators: Annotated[str, Query(description=f"comma-separated: {', '.join(INDICATORS)}")] = "rsi,macd",
    limit: Annotated[int, Query(ge=1, le=1000)] = 300,
) -> ChartResponse:
    from trading.analysis import AnalysisSettings, compute_indicator_frame

    wanted = [name.strip() for name in indicators.split(",") if name.strip()]
    unknown = sorted(set(wanted) - set(INDICATORS))
    if unknown:
        raise HTTPException(422, detail=f"unknown indicator(s) {', '.join(unknown)}; known: {', '.join(INDICATORS)}")
    symbol = symbol.upper()
    # Indicators need history before the first candle shown; fetch it, then cut it off.
    source, candles = await _candles(db, symbol, timeframe, min(limit + 200, 1000), None, None)
    frame = compute_indicator_frame(candles, AnalysisSettings()) if candles else None
    shown = candles[-limit:]
    values: dict[str, list[float | None]] = {}
    for name in wanted:
        for column in INDICATOR_COLUMNS[name]:
            series = [] if frame is None else frame[column].to_numpy()[-len(shown):].tolist()
            values[column] = [None if math.isnan(v) else round(v, 10) for v in series]
    return ChartResponse(symbol=symbol, timeframe=timeframe, source_interval=source,
                         candles=[_out(c) for c in shown], indicators=values)


@router.get("/prices", response_model=list[PriceOut])
async def get_prices(db: DbDep, settings: SettingsDep) -> list[PriceOut]:
    prices = await latest_prices(db, settings.market_source)
    return [PriceOut(symbol=s, price=p["price"], time=p["time"]) for s, p in sorted(prices.items())]


@router.get("/overview", response_model=list[OverviewItem])
async def get_overview(db: DbDep) -> list[OverviewItem]:
    items: list[OverviewItem] = []
    finest: dict[str, str] = {}
    for symbol, interval in await stored_streams(db):
        if symbol not in finest or INTERVAL_MS[interval] < INTERVAL_MS[finest[symbol]]:
            finest[symbol] = interval
    for symbol, interval in sorted(finest.items()):
        day = await read_candles(db, symbol, interval, limit=max(1, 86_400_000 // INTERVAL_MS[interval]))
        if not day:
            continue
        last, first = day[-1], day[0]
        change = last.close - first.open
        items.append(OverviewItem(
            symbol=symbol, interval=interval, price=last.close, time=last.close_time,
            price_change_24h=change, price_change_pct_24h=100 * change / first.open,
            high_24h=max(c.high for c in day), low_24h=min(c.low for c in day), volume_24h=sum(c.volume for c in day),
        ))
    return items
