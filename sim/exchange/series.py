"""Real candle files rebased onto the sim's virtual clock (DESIGN §4).

A series is shifted by whole days so that its symbol's first file day lands on the sim's origin
midnight; with tiling on, the file repeats forever: copy ``k`` continues the timestamps of copy
``k-1`` and its prices are scaled so it opens at the previous copy's last close. Everything here is
pure and index-addressed, so tests compute the exact series the server serves without a server.
"""

from __future__ import annotations

import hashlib
from bisect import bisect_right
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from trading.candle import DAY_MS, INTERVAL_MS, Candle

# Scaled prices are rounded to this many significant digits so tiled copies read like exchange
# prices instead of 17-digit binary noise; rounding is monotonic, so low <= open/close <= high holds.
_SCALED_SIGNIFICANT_DIGITS = 10


def day_floor(time_ms: int) -> int:
    return time_ms - time_ms % DAY_MS


def whole_day_shift(first_time_ms: int, origin_ms: int) -> int:
    """Milliseconds (a whole number of days) that move ``first_time_ms``'s day onto ``origin_ms``."""
    if origin_ms % DAY_MS:
        raise ValueError(f"origin {origin_ms} is not a UTC midnight")
    return origin_ms - day_floor(first_time_ms)


def _scale(price: float, factor: float) -> float:
    return float(f"{price * factor:.{_SCALED_SIGNIFICANT_DIGITS}g}")


@dataclass(frozen=True)
class ReplaySeries:
    """One candle file on the virtual clock. Index ``i`` is the i-th candle the sim ever serves."""

    symbol: str
    interval: str
    source: Sequence[Candle]
    shift_ms: int
    tiling: bool
    _offsets: list[int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.source:
            raise ValueError(f"{self.symbol} {self.interval}: a replay series needs at least one candle")
        if self.shift_ms % DAY_MS:
            raise ValueError(f"shift {self.shift_ms} ms is not a whole number of days")
        first = self.source[0].open_time
        object.__setattr__(self, "_offsets", [c.open_time - first for c in self.source])

    @property
    def interval_ms(self) -> int:
        return self.source[0].interval_ms

    @property
    def file_length(self) -> int:
        return len(self.source)

    @property
    def length(self) -> int | None:
        """Number of candles, or None when tiling makes the series endless."""
        return None if self.tiling else len(self.source)

    @property
    def copy_span_ms(self) -> int:
        """How far each tiled copy's timestamps move on: the file's span plus one interval."""
        return self._offsets[-1] + self.interval_ms

    @property
    def first_open_time(self) -> int:
        return self.source[0].open_time + self.shift_ms

    @property
    def copy_price_factor(self) -> float:
        return self.source[-1].close / self.source[0].open

    def candle(self, index: int) -> Candle:
        if index < 0 or (not self.tiling and index >= len(self.source)):
            raise IndexError(f"{self.symbol} {self.interval}: no candle {index}")
        copy, position = divmod(index, len(self.source))
        base = self.source[position]
        open_time = base.open_time + self.shift_ms + copy * self.copy_span_ms
        if copy == 0:
            return Candle(
                open_time,
                base.open,
                base.high,
                base.low,
                base.close,
                base.volume,
                base.interval_ms,
                self.symbol,
            )
        factor = self.copy_price_factor**copy
        return Candle(
            open_time,
            _scale(base.open, factor),
            _scale(base.high, factor),
            _scale(base.low, factor),
            _scale(base.close, factor),
            base.volume,
            base.interval_ms,
            self.symbol,
        )

    def candles(self, start: int, stop: int) -> list[Candle]:
        return [self.candle(i) for i in range(start, stop)]

    def count_opened_by(self, time_ms: int) -> int:
        """How many candles have ``open_time <= time_ms``."""
        relative = time_ms - self.first_open_time
        if relative < 0:
            return 0
        copy, rest = divmod(relative, self.copy_span_ms)
        if not self.tiling and copy >= 1:
            return len(self.source)
        return copy * len(self.source) + bisect_right(self._offsets, rest)

    def count_closed_by(self, time_ms: int) -> int:
        """How many candles have ``close_time <= time_ms`` (closed at virtual time ``time_ms``)."""
        return self.count_opened_by(time_ms - self.interval_ms)


def replay_series(
    candles: Sequence[Candle],
    origin_ms: int,
    *,
    tiling: bool,
    cap: int | None = None,
    group_first_time_ms: int | None = None,
) -> ReplaySeries:
    """The series the sim serves for one file.

    ``group_first_time_ms`` is the earliest time across all files of the same symbol: the whole
    group moves by one shift so a symbol's spot, futures, mark and trade files stay aligned.
    """
    if not candles:
        raise ValueError("cannot replay an empty candle list")
    if cap is not None:
        if cap < 1:
            raise ValueError(f"cap must be at least 1, got {cap}")
        candles = candles[:cap]
    first = candles[0].open_time if group_first_time_ms is None else group_first_time_ms
    return ReplaySeries(
        candles[0].symbol,
        _interval_name(candles[0].interval_ms),
        tuple(candles),
        whole_day_shift(first, origin_ms),
        tiling,
    )


def _interval_name(step_ms: int) -> str:
    for name, ms in INTERVAL_MS.items():
        if ms == step_ms:
            return name
    raise ValueError(f"no interval name for {step_ms} ms")


def series_checksum(candles: Iterable[Candle]) -> str:
    """SHA-256 over (open_time, o, h, l, c, v) with exact float reprs: equal only for equal series."""
    digest = hashlib.sha256()
    for c in candles:
        digest.update(f"{c.open_time},{c.open!r},{c.high!r},{c.low!r},{c.close!r},{c.volume!r}\n".encode())
    return digest.hexdigest()
