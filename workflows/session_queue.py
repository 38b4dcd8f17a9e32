"""The candles a session has received but not yet traded, released in (open time, symbol) order.

A multi-symbol session must step its Engine exactly as a backtest over the merged series would:
every symbol's candle of one close time before any candle of the next. The feed delivers each
stream on its own, so a candle is released only when every other followed stream has either been
traded up to that time or has a later candle waiting (the barrier). A stream that falls silent
holds the others back until the session fills it from ``market_data`` or gives up on it after a
timeout (``force``).

Across continue-as-new a run hands on, per stream, the newest open time it received
(``received_through``) instead of the candles themselves; the next run's queue sees the candles
between its last traded one and that cursor as a gap and reads them back from ``market_data``, a
chunk at a time. (Runs before the outbox handed on ``pending()`` itself.)

Pure and deterministic: the workflow owns one.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable

from core.contracts import CandleClosed, stream_key
from trading.candle import INTERVAL_MS

QUEUED, DUPLICATE, IGNORED = "queued", "duplicate", "ignored"


class CandleQueue:
    def __init__(self, symbols: Iterable[str], interval: str, last_open: dict[str, int],
                 read_through: dict[str, int], received: dict[str, int] | None = None,
                 chunk: int | None = None) -> None:
        self.symbols = tuple(symbols)
        self.interval = interval
        # stream key -> the open time of its last traded candle, and of the newest candle already
        # read from market_data to fill a gap (both the workflow's own dicts, shared).
        self.last_open = last_open
        self.read_through = read_through
        # stream key -> the newest open time a previous run received but did not hand on (shared).
        self.received = received if received is not None else {}
        # At most this many candles per gap read (None: the reader's own cap).
        self.chunk = chunk
        self._pending: dict[str, dict[int, CandleClosed]] = {s: {} for s in self.symbols}
        # Per stream, the waiting open times as a min-heap (entries of popped candles go lazily): the
        # oldest waiting candle in O(log n), since a backlog can hold thousands.
        self._heaps: dict[str, list[int]] = {s: [] for s in self.symbols}
        # Streams that missed a barrier timeout: the others stop waiting for them until they trade again.
        self.lagging: set[str] = set()

    def last(self, symbol: str) -> int | None:
        return self.last_open.get(stream_key(symbol, self.interval))

    def add(self, candle: CandleClosed) -> str:
        """Queue a candle of a followed stream that is newer than its last traded one."""
        if candle.symbol not in self._pending or candle.interval != self.interval:
            return IGNORED
        last = self.last(candle.symbol)
        waiting = self._pending[candle.symbol]
        if (last is not None and candle.open_time <= last) or candle.open_time in waiting:
            return DUPLICATE
        waiting[candle.open_time] = candle
        heapq.heappush(self._heaps[candle.symbol], candle.open_time)
        return QUEUED

    def _first(self, symbol: str) -> int | None:
        """The oldest waiting open time of a stream."""
        heap, waiting = self._heaps[symbol], self._pending[symbol]
        while heap and heap[0] not in waiting:
            heapq.heappop(heap)
        return heap[0] if heap else None

    def __len__(self) -> int:
        return sum(len(w) for w in self._pending.values())

    def pending(self) -> tuple[CandleClosed, ...]:
        """Everything waiting, in release order (what continue-as-new carries)."""
        every = [c for waiting in self._pending.values() for c in waiting.values()]
        return tuple(sorted(every, key=lambda c: (c.open_time, c.symbol)))

    def gaps(self, step_ms: int) -> list[tuple[str, int, int]]:
        """(symbol, first missing open time, last missing open time) for each stream whose oldest
        waiting candle does not follow its last traded one, or whose received candles a previous
        run left in market_data."""
        out = []
        for symbol, waiting in self._pending.items():
            key = stream_key(symbol, self.interval)
            last = self.last(symbol)
            if last is None:
                continue
            # A gap read once (even if market_data had nothing) is not read again.
            base = max(last, self.read_through.get(key, last))
            if waiting:
                first = self._first(symbol)
                assert first is not None
                if first <= base + step_ms:
                    continue
                end = first - step_ms
            elif self.received.get(key, base) > base:
                end = self.received[key]
            else:
                continue
            if self.chunk is not None:
                end = min(end, base + self.chunk * step_ms)
            out.append((symbol, base + step_ms, end))
        return out

    def received_through(self) -> dict[str, int]:
        """Per followed stream, the newest open time received (queued, or left by a previous run) when
        it is past the last traded one: what the next run must read back, since continue-as-new
        carries no candle (those read back already included)."""
        out = {}
        for symbol, waiting in self._pending.items():
            key = stream_key(symbol, self.interval)
            newest = max([*waiting, self.received.get(key, -1)])
            if newest > (self.last(symbol) or -1):
                out[key] = newest
        return out

    def unread(self) -> int:
        """Candles known to exist that are not in memory (gaps, and what a previous run received),
        still to be read back from market_data. For the status: O(n)."""
        total = 0
        step = INTERVAL_MS.get(self.interval)  # none before the first start
        for symbol, waiting in self._pending.items():
            key = stream_key(symbol, self.interval)
            base = max(self.last(symbol) or -1, self.read_through.get(key, -1))
            newest = max(self.received.get(key, -1), max(waiting, default=-1))
            if step and newest > base >= 0:
                # Candles already read back (at or before ``base``) are counted as in memory, not here.
                total += max(0, (newest - base) // step - sum(1 for t in waiting if t > base))
        return total

    def filled(self, symbol: str, through: int) -> None:
        """Record that market_data was read for ``symbol`` up to open time ``through``."""
        self.read_through[stream_key(symbol, self.interval)] = through

    def head(self) -> CandleClosed | None:
        """The next candle in (open time, symbol) order, ready or not."""
        heads = [waiting[first] for symbol, waiting in self._pending.items()
                 if (first := self._first(symbol)) is not None]
        return min(heads, key=lambda c: (c.open_time, c.symbol)) if heads else None

    def blocking(self, candle: CandleClosed) -> list[str]:
        """The other streams ``candle`` still waits for: not traded up to its time, nothing queued."""
        blocking = []
        for s in self.symbols:
            if s == candle.symbol or s in self.lagging or self._pending[s]:
                continue
            if self.received.get(stream_key(s, self.interval), -1) >= candle.open_time:
                continue  # it has candles up to there, still to be read back
            last = self.last(s)
            if last is None or last < candle.open_time:
                blocking.append(s)
        return blocking

    def pop(self, candle: CandleClosed) -> None:
        del self._pending[candle.symbol][candle.open_time]

    def traded(self, candle: CandleClosed) -> None:
        """A stream that trades again rejoins the barrier."""
        self.lagging.discard(candle.symbol)
