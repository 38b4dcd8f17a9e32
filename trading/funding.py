"""Perpetual funding on the 8-hour UTC grid (00:00, 08:00, 16:00).

A funding event at grid time ``b`` is charged to a position held over a candle whose span
``(open_time, close_time]`` contains ``b``. The payment is ``rate * quantity * mark`` where mark is
the candle's close; longs pay a positive rate, shorts receive it (and the reverse for a negative
rate). Rates come from a series (exchange timestamps such as 1637193600017 are rounded down to the
grid) or, when a symbol has no series, from a constant rate.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

FUNDING_INTERVAL_MS = 8 * 3_600_000


def grid_floor(time_ms: int) -> int:
    return time_ms - time_ms % FUNDING_INTERVAL_MS


def boundaries_in(open_time: int, close_time: int) -> range:
    """Grid instants b with open_time < b <= close_time."""
    first = grid_floor(open_time) + FUNDING_INTERVAL_MS
    return range(first, close_time + 1, FUNDING_INTERVAL_MS)


class FundingSchedule:
    """Funding rates per grid instant for one symbol, with a constant fallback."""

    __slots__ = ("_rates", "constant_rate")

    def __init__(self, series: Iterable[tuple[int, float]] | None = None, constant_rate: float = 0.0) -> None:
        if not math.isfinite(constant_rate):
            raise ValueError(f"constant funding rate must be finite, got {constant_rate}")
        self.constant_rate = constant_rate
        self._rates: dict[int, float] = {}
        for row, (time_ms, rate) in enumerate(series or (), start=1):
            if not math.isfinite(rate):
                raise ValueError(f"funding series row {row} (time {time_ms}): rate is {rate}")
            instant = grid_floor(int(time_ms))
            if instant in self._rates:
                raise ValueError(f"funding series row {row} (time {time_ms}): a second rate for grid time {instant}")
            self._rates[instant] = float(rate)

    @property
    def has_series(self) -> bool:
        return bool(self._rates)

    def rate_at(self, instant: int) -> float:
        """The series rate at a grid instant; the constant rate when the series has no value there
        (before it starts, after it ends, or when there is no series)."""
        return self._rates.get(instant, self.constant_rate)
