"""Market data as seen at the clock's virtual now: only the virtual past is visible."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sim.exchange.catalog import Catalog, SeriesKind
from sim.exchange.errors import invalid_interval, invalid_symbol
from sim.exchange.formats import decimal_text, opening_candle
from sim.exchange.series import ReplaySeries
from trading.candle import DAY_MS, INTERVAL_MS, Candle

FUNDING_PERIOD_MS = 8 * 3_600_000


@dataclass(frozen=True)
class KlineQuery:
    start_ms: int | None
    end_ms: int | None
    limit: int


class MarketView:
    def __init__(self, catalog: Catalog, virtual_now: Callable[[], int]) -> None:
        self.catalog = catalog
        self._now = virtual_now

    @property
    def now_ms(self) -> int:
        return self._now()

    # -- series lookup --------------------------------------------------------------------------
    def _series_by_interval(self, kind: SeriesKind, symbol: str) -> dict[str, ReplaySeries]:
        fallbacks = {
            SeriesKind.SPOT: (SeriesKind.SPOT,),
            SeriesKind.FUTURES: (SeriesKind.FUTURES, SeriesKind.SPOT),
            SeriesKind.MARK: (SeriesKind.MARK, SeriesKind.FUTURES, SeriesKind.SPOT),
        }[kind]
        for candidate in fallbacks:
            found = self.catalog.series(candidate, symbol)
            if found:
                return found
        raise invalid_symbol()

    def source_for(self, kind: SeriesKind, symbol: str, interval: str) -> ReplaySeries:
        """The stored series for ``interval``, or the coarsest finer one that aggregates into it."""
        by_interval = self._series_by_interval(kind, symbol)
        if interval not in INTERVAL_MS:
            raise invalid_interval()
        if interval in by_interval:
            return by_interval[interval]
        wanted = INTERVAL_MS[interval]
        finer = [s for s in by_interval.values() if s.interval_ms < wanted and wanted % s.interval_ms == 0]
        if not finer:
            raise invalid_interval()
        return max(finer, key=lambda s: s.interval_ms)

    def finest(self, kind: SeriesKind, symbol: str) -> ReplaySeries:
        return min(self._series_by_interval(kind, symbol).values(), key=lambda s: s.interval_ms)

    # -- klines ---------------------------------------------------------------------------------
    def _visible(self, series: ReplaySeries, index: int, now: int) -> Candle:
        candle = series.candle(index)
        return opening_candle(candle) if candle.close_time > now else candle

    def klines(self, kind: SeriesKind, symbol: str, interval: str, query: KlineQuery) -> list[Candle]:
        series = self.source_for(kind, symbol, interval)
        now = self.now_ms
        visible = series.count_opened_by(now)
        if series.interval == interval:
            return self._direct(series, visible, now, query)
        return self._aggregated(series, INTERVAL_MS[interval], visible, now, query)

    def _direct(self, series: ReplaySeries, visible: int, now: int, q: KlineQuery) -> list[Candle]:
        stop = visible if q.end_ms is None else min(visible, series.count_opened_by(q.end_ms))
        if q.start_ms is not None:
            start = series.count_opened_by(q.start_ms - 1)
            stop = min(stop, start + q.limit)
        else:
            start = max(0, stop - q.limit)
        return [self._visible(series, i, now) for i in range(start, stop)]

    def _aggregated(self, series: ReplaySeries, step: int, visible: int, now: int, q: KlineQuery) -> list[Candle]:
        buckets: list[list[Candle]] = []
        if q.start_ms is not None:
            first_bucket = -(-q.start_ms // step) * step
            stop = (
                visible
                if q.end_ms is None
                else min(visible, series.count_opened_by(q.end_ms - q.end_ms % step + step - 1))
            )
            for i in range(series.count_opened_by(first_bucket - 1), stop):
                candle = self._visible(series, i, now)
                bucket = candle.open_time - candle.open_time % step
                if not buckets or buckets[-1][0].open_time - buckets[-1][0].open_time % step != bucket:
                    if len(buckets) == q.limit:
                        break
                    buckets.append([])
                buckets[-1].append(candle)
        else:
            stop = (
                visible
                if q.end_ms is None
                else min(visible, series.count_opened_by(q.end_ms - q.end_ms % step + step - 1))
            )
            for i in range(stop - 1, -1, -1):
                candle = self._visible(series, i, now)
                bucket = candle.open_time - candle.open_time % step
                if not buckets or buckets[-1][0].open_time - buckets[-1][0].open_time % step != bucket:
                    if len(buckets) == q.limit:
                        break
                    buckets.append([])
                buckets[-1].append(candle)
            buckets = [list(reversed(b)) for b in reversed(buckets)]
        return [_merge(b, step) for b in buckets]

    # -- tickers and futures extras ---------------------------------------------------------------
    def last_day(self, symbol: str) -> list[Candle]:
        """The candles of the last 24 virtual hours (the newest may still be open)."""
        series = self.finest(SeriesKind.SPOT, symbol)
        now = self.now_ms
        visible = series.count_opened_by(now)
        start = min(series.count_opened_by(now - DAY_MS), max(visible - 1, 0))
        return [self._visible(series, i, now) for i in range(start, visible)]

    def last_price(self, kind: SeriesKind, symbol: str) -> float:
        series = self.finest(kind, symbol)
        now = self.now_ms
        visible = series.count_opened_by(now)
        return series.candle(0).open if visible == 0 else self._visible(series, visible - 1, now).close

    def funding_history(self, symbol: str) -> list[tuple[int, float]]:
        if symbol not in self.catalog.futures_symbols:
            raise invalid_symbol()
        now = self.now_ms
        return [(t, rate) for t, rate in self.catalog.funding.get(symbol, []) if t <= now]

    def premium_index(self, symbol: str) -> dict[str, object]:
        history = self.funding_history(symbol)
        now = self.now_ms
        mark = self.last_price(SeriesKind.MARK, symbol)
        return {
            "symbol": symbol,
            "markPrice": decimal_text(mark),
            "indexPrice": decimal_text(
                self.last_price(SeriesKind.SPOT, symbol) if self.catalog.series(SeriesKind.SPOT, symbol) else mark
            ),
            "estimatedSettlePrice": decimal_text(mark),
            "lastFundingRate": decimal_text(history[-1][1]) if history else "0.00000000",
            "interestRate": "0.00010000",
            "nextFundingTime": now - now % FUNDING_PERIOD_MS + FUNDING_PERIOD_MS,
            "time": now,
        }


def _merge(candles: list[Candle], step: int) -> Candle:
    first = candles[0]
    return Candle(
        first.open_time - first.open_time % step,
        first.open,
        max(c.high for c in candles),
        min(c.low for c in candles),
        candles[-1].close,
        round(sum(c.volume for c in candles), 8),
        step,
        first.symbol,
    )
