"""Candles and the market-data rules every other module relies on.

Prices and volumes are floats (see trading/README.md for the number rules). Times are integer
milliseconds since the Unix epoch, UTC. ``close_time`` is the instant the candle closes
(``open_time + interval``); Binance's ``closeTime`` field is that minus one millisecond.
Market time, the clock of every trading rule, is the close time of the last closed candle.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

INTERVAL_MS: dict[str, int] = {
    "1m": 60_000,
    "3m": 180_000,
    "5m": 300_000,
    "15m": 900_000,
    "30m": 1_800_000,
    "1h": 3_600_000,
    "2h": 7_200_000,
    "4h": 14_400_000,
    "6h": 21_600_000,
    "8h": 28_800_000,
    "12h": 43_200_000,
    "1d": 86_400_000,
}

DAY_MS = 86_400_000


def interval_ms(interval: str) -> int:
    try:
        return INTERVAL_MS[interval]
    except KeyError:
        raise ValueError(f"unknown interval {interval!r}; known: {', '.join(INTERVAL_MS)}") from None


@dataclass(frozen=True, slots=True)
class Candle:
    open_time: int
    open: float
    high: float
    low: float
    close: float
    volume: float
    interval_ms: int
    symbol: str = ""

    @property
    def close_time(self) -> int:
        return self.open_time + self.interval_ms


@dataclass(frozen=True, slots=True, eq=False)
class CandleLists:
    """The columns of a candle sequence as lists, read once, kept with the very sequence they were
    read from (``source``): the analysis builds its arrays from them and the backtester reuses them
    for the same sequence instead of reading a million candles again."""

    source: Sequence[Candle]
    open_time: list[int]
    open: list[float]
    high: list[float]
    low: list[float]
    close: list[float]
    volume: list[float]

    @classmethod
    def of(cls, candles: Sequence[Candle]) -> CandleLists:
        # Comprehensions: CPython 3.12 runs them faster than map(attrgetter(...)).
        return cls(
            candles,
            [c.open_time for c in candles],
            [c.open for c in candles],
            [c.high for c in candles],
            [c.low for c in candles],
            [c.close for c in candles],
            [c.volume for c in candles],
        )


class BadCandleError(ValueError):
    """A candle that must never be traded on. ``row`` is the 1-based data row (header excluded)
    when the candle came from a file, else its position in the sequence."""

    def __init__(self, row: int, reason: str, open_time: int | None = None) -> None:
        self.row = row
        self.reason = reason
        self.open_time = open_time
        where = f"row {row}" + (f" (open_time {open_time})" if open_time is not None else "")
        super().__init__(f"bad candle at {where}: {reason}")


def candle_problem(c: Candle) -> str | None:
    """Why this single candle is unusable, or None when it is fine."""
    for name in ("open", "high", "low", "close", "volume"):
        v = getattr(c, name)
        if not isinstance(v, (int, float)) or isinstance(v, bool):
            return f"{name} is not a number ({v!r})"
        if math.isnan(v) or math.isinf(v):
            return f"{name} is {v}"
    for name in ("open", "high", "low", "close"):
        if getattr(c, name) <= 0:
            return f"{name} must be positive, got {getattr(c, name)}"
    if c.volume < 0:
        return f"volume must not be negative, got {c.volume}"
    if c.high < c.low:
        return f"high {c.high} is below low {c.low}"
    if not (c.low <= c.open <= c.high and c.low <= c.close <= c.high):
        return f"open {c.open} / close {c.close} outside low {c.low} .. high {c.high}"
    return None


def validate_candles(candles: Iterable[Candle], first_row: int = 1) -> None:
    """Raise BadCandleError naming the first bad row: bad values, out-of-order or duplicate times."""
    previous: int | None = None
    for i, c in enumerate(candles, start=first_row):
        problem = candle_problem(c)
        if problem:
            raise BadCandleError(i, problem, c.open_time)
        if previous is not None:
            if c.open_time == previous:
                raise BadCandleError(i, f"duplicate open_time {c.open_time}", c.open_time)
            if c.open_time < previous:
                raise BadCandleError(i, f"open_time {c.open_time} is before the previous {previous}", c.open_time)
        previous = c.open_time
