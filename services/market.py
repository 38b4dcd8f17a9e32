"""Public market data: latest prices, an overview, candles (larger timeframes aggregated from the
stored smaller ones), and chart data with indicators."""

from __future__ import annotations

import math
from dataclasses import dataclass

from pymongo.asynchronous.database import AsyncDatabase

from activities.market_store import latest_prices, read_candles, stored_streams
from core.settings import Settings
from services.errors import NotFound, Rejected
from trading.candle import INTERVAL_MS, Candle

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
# Indicators need history before the first candle shown.
CHART_LOOKBACK = 200


@dataclass(frozen=True)
class Candles:
    symbol: str
    timeframe: str
    source_interval: str  # the stored interval the candles come from (aggregated when larger)
    candles: list[Candle]


@dataclass(frozen=True)
class Chart(Candles):
    indicators: dict[str, list[float | None]]


@dataclass(frozen=True)
class Price:
    symbol: str
    price: float
    time: int


@dataclass(frozen=True)
class OverviewItem:
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


class MarketData:
    def __init__(self, settings: Settings, db: AsyncDatabase) -> None:
        self.settings = settings
        self.db = db

    async def candles(self, symbol: str, timeframe: str, limit: int, start: int | None = None,
                      end: int | None = None) -> Candles:
        if start is not None and end is not None and start > end:
            raise Rejected("from", f"from ({start}) is after to ({end})")
        symbol = symbol.upper()
        target = INTERVAL_MS[timeframe]
        streams = [interval for sym, interval in await stored_streams(self.db) if sym == symbol]
        if not streams:
            raise NotFound(f"no market data for symbol {symbol}")
        usable = sorted((i for i in streams if target % INTERVAL_MS[i] == 0), key=lambda i: INTERVAL_MS[i],
                        reverse=True)
        if not usable:
            raise NotFound(f"no stored interval of {symbol} builds {timeframe} candles (stored: {', '.join(streams)})")
        source = usable[0]
        ratio = target // INTERVAL_MS[source]
        rows = await read_candles(self.db, symbol, source, start=start, end=end, limit=(limit + 1) * ratio)
        candles = rows if ratio == 1 else aggregate(rows, target)
        return Candles(symbol, timeframe, source, candles[-limit:])

    async def chart(self, symbol: str, timeframe: str, indicators: list[str], limit: int) -> Chart:
        from trading.analysis import AnalysisSettings, compute_indicator_frame

        unknown = sorted(set(indicators) - set(INDICATORS))
        if unknown:
            raise Rejected("indicators", f"unknown indicator(s) {', '.join(unknown)}; known: {', '.join(INDICATORS)}")
        found = await self.candles(symbol, timeframe, min(limit + CHART_LOOKBACK, 1000))
        frame = compute_indicator_frame(found.candles, AnalysisSettings()) if found.candles else None
        shown = found.candles[-limit:]
        values: dict[str, list[float | None]] = {}
        for name in indicators:
            for column in INDICATOR_COLUMNS[name]:
                series = [] if frame is None else frame[column].to_numpy()[-len(shown):].tolist()
                values[column] = [None if math.isnan(v) else round(v, 10) for v in series]
        return Chart(found.symbol, timeframe, found.source_interval, shown, values)

    async def prices(self) -> list[Price]:
        prices = await latest_prices(self.db, self.settings.market_source)
        return [Price(s, p["price"], p["time"]) for s, p in sorted(prices.items())]

    async def overview(self) -> list[OverviewItem]:
        items: list[OverviewItem] = []
        finest: dict[str, str] = {}
        for symbol, interval in await stored_streams(self.db):
            if symbol not in finest or INTERVAL_MS[interval] < INTERVAL_MS[finest[symbol]]:
                finest[symbol] = interval
        for symbol, interval in sorted(finest.items()):
            day = await read_candles(self.db, symbol, interval, limit=max(1, 86_400_000 // INTERVAL_MS[interval]))
            if not day:
                continue
            last, first = day[-1], day[0]
            change = last.close - first.open
            items.append(OverviewItem(
                symbol=symbol, interval=interval, price=last.close, time=last.close_time,
                price_change_24h=change, price_change_pct_24h=100 * change / first.open,
                high_24h=max(c.high for c in day), low_24h=min(c.low for c in day),
                volume_24h=sum(c.volume for c in day),
            ))
        return items
