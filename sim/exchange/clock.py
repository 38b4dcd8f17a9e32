"""One virtual market clock for every served symbol (DESIGN §4).

Events (a candle opening, a candle closing, a trade) go out in (time, symbol) order. Virtual now is
the time of the last event sent. At speed ``max`` the clock moves only while a kline subscriber is
connected, as fast as the slowest one reads (``publish`` blocks on full send queues); at a
multiplier it follows wall time. In lockstep mode it also holds after each close instant until the
client acknowledges it (``lockstep``). The position is saved in ``state_dir`` so a restart continues.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import IntEnum
from pathlib import Path

from sim.exchange.catalog import Catalog
from sim.exchange.lockstep import Lockstep
from sim.exchange.series import ReplaySeries
from sim.exchange.state import ClockState, save_state
from sim.exchange.trades import TradeRecord
from trading.candle import Candle

log = logging.getLogger(__name__)


class EventKind(IntEnum):
    # At one instant a candle closes before its successor opens, and trades follow the open.
    KLINE_CLOSE = 0
    KLINE_OPEN = 1
    TRADE = 2


@dataclass(frozen=True, slots=True)
class MarketEvent:
    time_ms: int
    symbol: str
    kind: EventKind
    interval: str = ""
    candle: Candle | None = None
    trade: TradeRecord | None = None


class _KlineCursor:
    """Walks one series as open, close, open, close… events (event 2i opens candle i, 2i+1 closes it)."""

    def __init__(self, series: ReplaySeries, after_ms: int) -> None:
        self.series = series
        closed = series.count_closed_by(after_ms)
        self.event_number = 2 * closed + (1 if series.count_opened_by(after_ms) > closed else 0)
        self._candle = self._load()

    def _load(self) -> Candle | None:
        index = self.event_number // 2
        length = self.series.length
        return None if length is not None and index >= length else self.series.candle(index)

    def peek_time(self) -> int | None:
        if self._candle is None:
            return None
        return self._candle.open_time if self.event_number % 2 == 0 else self._candle.close_time

    def take(self) -> MarketEvent:
        assert self._candle is not None
        opening = self.event_number % 2 == 0
        candle = self._candle
        event = MarketEvent(
            candle.open_time if opening else candle.close_time,
            self.series.symbol,
            EventKind.KLINE_OPEN if opening else EventKind.KLINE_CLOSE,
            self.series.interval,
            candle,
        )
        self.event_number += 1
        if not opening:
            self._candle = self._load()
        return event


class _TradeCursor:
    def __init__(self, symbol: str, trades: list[TradeRecord], after_ms: int) -> None:
        self.symbol = symbol
        self.trades = trades
        self.index = next((i for i, t in enumerate(trades) if t.time_ms > after_ms), len(trades))

    def peek_time(self) -> int | None:
        return self.trades[self.index].time_ms if self.index < len(self.trades) else None

    def take(self) -> MarketEvent:
        trade = self.trades[self.index]
        self.index += 1
        return MarketEvent(trade.time_ms, self.symbol, EventKind.TRADE, trade=trade)


_RANK = {_KlineCursor: 0, _TradeCursor: 2}


def initial_virtual_now(catalog: Catalog, start_offset_candles: int) -> int:
    """The instant at which each symbol's finest streamed series has ``start_offset_candles`` closed
    candles (or all of its candles, when its file is shorter and tiling is off)."""
    finest: dict[str, ReplaySeries] = {}
    for series in catalog.streamed_series():
        if series.symbol not in finest or series.interval_ms < finest[series.symbol].interval_ms:
            finest[series.symbol] = series
    driving = list(finest.values()) or [s for _, s in catalog.all_series()]
    starts = []
    for series in driving:
        index = start_offset_candles if series.length is None else min(start_offset_candles, series.length - 1)
        starts.append(series.candle(index).open_time)
    return max(starts)


PublishFn = Callable[[MarketEvent], Awaitable[None]]


class MarketClock:
    def __init__(
        self,
        catalog: Catalog,
        state: ClockState,
        *,
        state_dir: Path,
        speed: str | float,
        start_offset_candles: int,
        publish: PublishFn,
        wait_for_subscribers: Callable[[], Awaitable[None]],
        save_interval_s: float = 0.5,
        lockstep: Lockstep | None = None,
    ) -> None:
        self.catalog = catalog
        self.origin_ms = state.origin_ms
        self.speed = speed
        self._state_dir = state_dir
        self._publish = publish
        self._wait_for_subscribers = wait_for_subscribers
        self._save_interval_s = save_interval_s
        self._lockstep = lockstep
        self._virtual_now = (
            state.virtual_now_ms
            if state.virtual_now_ms is not None
            else initial_virtual_now(catalog, start_offset_candles)
        )
        self._heap: list[tuple[int, str, int, int, _KlineCursor | _TradeCursor]] = []
        self._sequence = itertools.count()
        for series in catalog.streamed_series():
            self._push(_KlineCursor(series, self._virtual_now))
        for symbol, trades in catalog.trades.items():
            self._push(_TradeCursor(symbol, trades, self._virtual_now))
        self._last_saved_at = 0.0
        self.events_sent = 0

    @property
    def virtual_now_ms(self) -> int:
        return self._virtual_now

    def _push(self, cursor: _KlineCursor | _TradeCursor) -> None:
        when = cursor.peek_time()
        if when is not None:
            symbol = cursor.series.symbol if isinstance(cursor, _KlineCursor) else cursor.symbol
            heapq.heappush(self._heap, (when, symbol, _RANK[type(cursor)], next(self._sequence), cursor))

    def _completed_through(self) -> int:
        """The latest virtual instant whose events have all been sent."""
        if self._heap and self._heap[0][0] == self._virtual_now:
            return self._virtual_now - 1
        return self._virtual_now

    def save(self) -> None:
        save_state(self._state_dir, ClockState(self.origin_ms, self._completed_through()))
        self._last_saved_at = time.monotonic()

    async def run(self) -> None:
        anchor_virtual, anchor_wall = self._virtual_now, time.monotonic()
        try:
            while self._heap:
                event_time = self._heap[0][0]
                if self._lockstep is not None and await self._lockstep.hold_before(event_time):
                    # After a hold, wall-paced speeds continue from here rather than catching up.
                    anchor_virtual, anchor_wall = self._virtual_now, time.monotonic()
                if self.speed == "max":
                    await self._wait_for_subscribers()
                else:
                    delay = anchor_wall + (event_time - anchor_virtual) / 1000.0 / float(self.speed) - time.monotonic()
                    if delay > 0:
                        await asyncio.sleep(delay)
                if event_time > self._virtual_now and time.monotonic() - self._last_saved_at >= self._save_interval_s:
                    self.save()
                *_, cursor = heapq.heappop(self._heap)
                event = cursor.take()
                self._push(cursor)
                self._virtual_now = event.time_ms
                await self._publish(event)
                self.events_sent += 1
                if event.kind is EventKind.KLINE_CLOSE and self._lockstep is not None:
                    self._lockstep.candle_closed(event.time_ms)
                # Sending rarely blocks at speed max; yield so REST requests are still served.
                await asyncio.sleep(0)
            log.info("sim exchange: every series has ended (tiling off); the clock stops at %d", self._virtual_now)
        finally:
            self.save()
