"""The candles a session has received but not yet traded, released in (open time, symbol) order.

A multi-symbol session must step its Engine exactly as a backtest over the merged series would:
every symbol's candle of one close time before any candle of the next. The feed delivers each
stream on its own, so a candle is released only when every other followed stream has either been
traded up to that time or has a later candle waiting (the barrier). A stream that falls silent
holds the others back until the session fills it from ``market_data`` or gives up on it after a
timeout (``force``).

Pure and deterministic: the workflow owns one and carries ``pending()`` across continue-as-new.
"""

from __future__ import annotations

from collections.abc import Iterable

from workflows.contracts import CandleClosed, stream_key

QUEUED, DUPLICATE, IGNORED = "queued", "duplicate", "ignored"


class CandleQueue:
    def __init__(self, symbols: Iterable[str], interval: str, last_open: dict[str, int],
                 read_through: dict[str, int]) -> None:
        self.symbols = tuple(symbols)
        self.interval = interval
        # stream key -> the open time of its last traded candle, and of the newest candle already
        # read from market_data to fill a gap (both the workflow's own dicts, shared).
        self.last_open = last_open
        self.read_through = read_through
        self._pending: dict[str, dict[int, CandleClosed]] = {s: {} for s in self.symbols}
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
        return QUEUED

    def __len__(self) -> int:
        return sum(len(w) for w in self._pending.values())

    def pending(self) -> tuple[CandleClosed, ...]:
        """Everything waiting, in release order (what continue-as-new carries)."""
        every = [c for waiting in self._pending.values() for c in waiting.values()]
        return tuple(sorted(every, key=lambda c: (c.open_time, c.symbol)))

    def gaps(self, step_ms: int) -> list[tuple[str, int, int]]:
        """(symbol, first missing open time, last missing open time) for each stream whose oldest
        waiting candle does not follow its last traded one."""
        out = []
        for symbol, waiting in self._pending.items():
            last = self.last(symbol)
            if waiting and last is not None:
                # A gap read once (even if market_data had nothing) is not read again.
                base = max(last, self.read_through.get(stream_key(symbol, self.interval), last))
                first = min(waiting)
                if first > base + step_ms:
                    out.append((symbol, base + step_ms, first - step_ms))
        return out

    def filled(self, symbol: str, through: int) -> None:
        """Record that market_data was read for ``symbol`` up to open time ``through``."""
        self.read_through[stream_key(symbol, self.interval)] = through

    def head(self) -> CandleClosed | None:
        """The next candle in (open time, symbol) order, ready or not."""
        heads = [waiting[min(waiting)] for waiting in self._pending.values() if waiting]
        return min(heads, key=lambda c: (c.open_time, c.symbol)) if heads else None

    def blocking(self, candle: CandleClosed) -> list[str]:
        """The other streams ``candle`` still waits for: not traded up to its time, nothing queued."""
        blocking = []
        for s in self.symbols:
            if s == candle.symbol or s in self.lagging or self._pending[s]:
                continue
            last = self.last(s)
            if last is None or last < candle.open_time:
                blocking.append(s)
        return blocking

    def pop(self, candle: CandleClosed) -> None:
        del self._pending[candle.symbol][candle.open_time]

    def traded(self, candle: CandleClosed) -> None:
        """A stream that trades again rejoins the barrier."""
        self.lagging.discard(candle.symbol)
