"""The backtester's fast paths: moving an engine over candles on which nothing can act, with exactly
the effect of stepping each (proved byte-identical by the tests on every file in ``data/``)."""

from __future__ import annotations

import bisect
from collections import deque
from collections.abc import Sequence

from trading.candle import DAY_MS, Candle
from trading.funding import FUNDING_INTERVAL_MS
from trading.ledger import Ledger
from trading.models import Position, Side

CandleColumns = tuple[list[float], list[float], list[float]]  # highs, lows, closes


def _first_funding_candle(close_times: Sequence[int], interval: int, start: int, stop: int) -> int:
    """The first index in [start, stop) whose candle spans an 8-hour funding instant (``stop`` if
    none), for candles of one interval: the per-candle test ``close // grid != open // grid`` of
    ``step``, found by bisection on the close times (gaps in the series are allowed)."""
    grid = FUNDING_INTERVAL_MS
    k = start
    while k < stop:
        instant = ((close_times[k] - interval) // grid + 1) * grid  # the first instant after candle k opens
        k = bisect.bisect_left(close_times, instant, k, stop)  # the first candle closing at or after it
        if k == stop or close_times[k] - interval < instant:
            return k
        # A gap: candle k opens after that instant; look again from it.
    return stop



class FastPaths(Ledger):
    def advance_idle(
        self, candles: Sequence[Candle], start: int = 0, end: int | None = None, closes: Sequence[float] | None = None
    ) -> None:
        """Move an idle engine over ``candles[start:end]`` (one symbol) whose signals cannot act, with
        exactly the effect of stepping each: clocks, day start, last close and the correlation window.
        ``closes`` (the closes of the whole series) only saves work."""
        if end is None:
            end = len(candles)
        if end <= start:
            return
        if not self.is_idle():
            raise RuntimeError("advance_idle needs an engine with no position and no order")
        last = candles[end - 1]
        close_time = last.open_time + last.interval_ms
        day = close_time // DAY_MS
        if day != self.day:
            self.day_start_equity = self.cash  # flat: equity is cash at every candle of the run
            self.day = day
        self.now = close_time
        symbol = last.symbol
        self.last_close[symbol] = last.close
        self.last_open_time[symbol] = last.open_time
        window = self.closes.get(symbol)
        if window is None:
            window = self.closes[symbol] = deque(maxlen=self.settings.risk.correlation_window)
        # Only the last maxlen closes survive in the window.
        first = max(start, end - (window.maxlen or 0))
        if closes is None:
            window.extend([c.close for c in candles[first:end]])
        else:
            window.extend(closes[first:end])

    def advance_holding(
        self,
        candles: Sequence[Candle],
        start: int,
        end: int,
        columns: CandleColumns | None = None,
        close_times: Sequence[int] | None = None,
    ) -> None:
        """Move over ``candles[start:end]`` of the one open position's symbol on which, as the caller
        checked (``holding_span_end``), no exit level, funding instant, order or signal acts, with
        exactly the effect of stepping each: MFE/MAE, trailing extreme, day start, clocks and marks.
        ``columns`` (highs, lows, closes of the whole series) and ``close_times`` (of the whole
        series) only save work."""
        if end <= start:
            return
        p = self._only_position("advance_holding")
        if columns is None:
            span = candles[start:end]
            columns = ([c.high for c in span], [c.low for c in span], [c.close for c in span])
            start, end = 0, len(span)
            candles = span
            close_times = None
        highs, lows, closes = columns
        self._advance_position(p, candles, start, end, max(highs[start:end]), min(lows[start:end]), closes, close_times)

    def hold_through(
        self, candles: Sequence[Candle], start: int, stop: int, columns: CandleColumns, close_times: list[int]
    ) -> int:
        """``holding_span_end`` and ``advance_holding`` in one, for the backtester: move the one
        open position over the candles of ``[start, stop)`` before the first one on which an exit
        level or a funding instant may act, and return that candle's index (``stop`` if none).
        ``candles`` is one symbol at one interval; ``columns`` and ``close_times`` are its highs,
        lows, closes and close times."""
        if stop <= start:
            return start
        p = self._only_position("hold_through")
        if self._funding_on:
            stop = _first_funding_candle(close_times, candles[start].interval_ms, start, stop)
            if stop == start:
                return start
        highs, lows, closes = columns
        if p.trailing_pct is not None:  # the trailing level moves candle by candle
            end = self.holding_span_end(candles, start, stop)
            if end > start:
                self._advance_position(
                    p, candles, start, end, max(highs[start:end]), min(lows[start:end]), closes, close_times
                )
            return end
        # Fixed levels. For a long, broker.exit_on_candle's "no exit" test
        # ``low > liq and low > stop and high < take`` fails exactly when low <= max(liq, stop) or
        # high >= take (prices are finite); for a short, when high >= min(liq if liq > 0, stop) or
        # low <= take. The span's extremes answer for the whole span at once.
        stop_level, take, liq = p.stop_loss, p.take_profit, p.liquidation_price
        low_at: float | None
        high_at: float | None
        if p.side is Side.LONG:
            low_at = liq if stop_level is None else max(liq, stop_level)
            high_at = take
        else:
            low_at = take
            high_at = stop_level if liq <= 0 else (liq if stop_level is None else min(liq, stop_level))
        high = max(highs[start:stop])
        low = min(lows[start:stop])
        end = stop
        if (low_at is not None and low <= low_at) or (high_at is not None and high >= high_at):
            end = start
            while (low_at is None or lows[end] > low_at) and (high_at is None or highs[end] < high_at):
                end += 1  # stops inside the span: its extremes showed a touch
            if end == start:
                return start
            high = max(highs[start:end])
            low = min(lows[start:end])
        self._advance_position(p, candles, start, end, high, low, closes, close_times)
        return end

    def _only_position(self, caller: str) -> Position:
        if len(self.positions) != 1 or self.orders:
            raise RuntimeError(f"{caller} needs exactly one position and no order")
        return next(iter(self.positions.values()))

    def _advance_position(
        self,
        p: Position,
        candles: Sequence[Candle],
        start: int,
        end: int,
        high: float,
        low: float,
        closes: Sequence[float],
        close_times: Sequence[int] | None,
    ) -> None:
        """The effect of stepping ``candles[start:end]`` (highest high ``high``, lowest low ``low``)
        on which nothing acts on the position ``p``."""
        q, entry = p.quantity, p.entry_price
        # q * (x - entry) is monotone in x in floating point, so the extreme of the per-candle
        # excursions is the excursion at the extreme price: identical to stepping.
        if p.side is Side.LONG:
            favorable, adverse = q * (high - entry), q * (low - entry)
            if p.trailing_pct is not None and high > p.trail_extreme:
                p.trail_extreme = high
        else:
            favorable, adverse = q * (entry - low), q * (entry - high)
            if p.trailing_pct is not None and low < p.trail_extreme:
                p.trail_extreme = low
        if favorable > p.max_favorable:
            p.max_favorable = favorable
        if adverse < p.max_adverse:
            p.max_adverse = adverse
        symbol = p.symbol
        last = candles[end - 1]
        close_time = last.open_time + last.interval_ms
        day = close_time // DAY_MS
        if day != self.day:
            # m: the span's first candle closing on the new day; the day starts at the equity
            # marked by the candle before it.
            if close_times is not None:
                m = bisect.bisect_left(close_times, day * DAY_MS, start, end)
            else:
                m = end - 1
                while m > start and (candles[m - 1].open_time + candles[m - 1].interval_ms) // DAY_MS == day:
                    m -= 1
            previous_close = closes[m - 1] if m > start else self.last_close[symbol]
            self.day_start_equity = self.cash + p.unrealised(previous_close)
            self.day = day
        self.now = close_time
        self.last_close[symbol] = last.close
        self.last_open_time[symbol] = last.open_time
        window = self.closes[symbol]
        window.extend(closes[max(start, end - (window.maxlen or 0)) : end])

    def holding_span_end(self, candles: Sequence[Candle], start: int, stop: int) -> int:
        """The first index in [start, stop) whose candle may trigger an exit or funding for the one
        open position (``stop`` if none): candles before it can go to ``advance_holding``."""
        p = next(iter(self.positions.values()))
        fixed_stop = p.stop_loss
        take = p.take_profit
        liq = p.liquidation_price
        trailing = p.trailing_pct
        extreme = p.trail_extreme
        funding = self._funding_on
        grid = FUNDING_INTERVAL_MS
        long = p.side is Side.LONG
        for k in range(start, stop):
            c = candles[k]
            if funding and (c.open_time + c.interval_ms) // grid != c.open_time // grid:
                return k
            # The same float expressions as broker.exit_on_candle, so the verdicts agree exactly.
            level = fixed_stop
            if long:
                if trailing is not None:
                    trail = extreme * (1 - trailing / 100)
                    if level is None or trail > level:
                        level = trail
                if not (c.low > liq and (level is None or c.low > level) and (take is None or c.high < take)):
                    return k
                if trailing is not None and c.high > extreme:
                    extreme = c.high
            else:
                if trailing is not None:
                    trail = extreme * (1 + trailing / 100)
                    if level is None or trail < level:
                        level = trail
                if not (
                    (liq <= 0 or c.high < liq) and (level is None or c.high < level) and (take is None or c.low > take)
                ):
                    return k
                if trailing is not None and c.low < extreme:
                    extreme = c.low
        return stop

