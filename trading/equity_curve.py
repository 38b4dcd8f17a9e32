"""The backtester's equity curve, kept as spans and drawn in numpy at the end of the run.

Between two events the equity of a one-symbol account is ``cash`` (flat) or
``cash + q * (close - entry)`` (long) / ``cash + q * (entry - close)`` (short) with cash, q and
entry fixed: ``Position.unrealised``'s arithmetic. So the run records one span per stretch (its end,
cash, quantity, entry and side) and ``EquitySpans.curve`` evaluates every candle at once with the
same float operations, each rounded as Python rounds it: the curve is bit-identical to marking
candle by candle. ``daily_returns`` and ``max_drawdown`` are ``trading.metrics``' definitions
over numpy arrays, bit-identical to them (proved by the tests on every file in ``data/``).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from trading.candle import DAY_MS

FloatArray = npt.NDArray[np.float64]


class EquitySpans:
    """Spans ``[previous end, end)`` of constant cash / position, appended in candle order."""

    __slots__ = ("_cash", "_ends", "_entry", "_quantity", "_sign", "_start")

    def __init__(self, start: int) -> None:
        self._start = start
        self._ends: list[int] = []
        self._cash: list[float] = []
        self._quantity: list[float] = []
        self._entry: list[float] = []
        self._sign: list[int] = []  # +1 long, -1 short, 0 flat

    def flat(self, end: int, cash: float) -> None:
        self._ends.append(end)
        self._cash.append(cash)
        self._quantity.append(0.0)
        self._entry.append(0.0)
        self._sign.append(0)

    def holding(self, end: int, cash: float, quantity: float, entry: float, sign: int) -> None:
        self._ends.append(end)
        self._cash.append(cash)
        self._quantity.append(quantity)
        self._entry.append(entry)
        self._sign.append(sign)

    def curve(self, closes: Sequence[float]) -> FloatArray:
        """The equity after each candle of ``[start, last end)``; ``closes`` is the whole series'."""
        if not self._ends:
            return np.empty(0)
        ends = np.fromiter(self._ends, dtype=np.int64, count=len(self._ends))
        lengths = np.diff(ends, prepend=self._start)
        cash = np.repeat(np.fromiter(self._cash, dtype=np.float64, count=len(self._cash)), lengths)
        quantity = np.repeat(np.fromiter(self._quantity, dtype=np.float64, count=len(self._quantity)), lengths)
        entry = np.repeat(np.fromiter(self._entry, dtype=np.float64, count=len(self._entry)), lengths)
        sign = np.repeat(np.fromiter(self._sign, dtype=np.int8, count=len(self._sign)), lengths)
        stop = self._ends[-1]
        close = np.fromiter(closes[self._start : stop], dtype=np.float64, count=stop - self._start)
        long = cash + quantity * (close - entry)
        short = cash + quantity * (entry - close)
        return np.where(sign > 0, long, np.where(sign < 0, short, cash))


def daily_returns(close_times: npt.NDArray[np.int64], equity: FloatArray, starting_balance: float) -> list[float]:
    """``trading.metrics.daily_returns`` over arrays: the equity at the last candle of each UTC day
    (a close at midnight ends the day before) against the previous day's."""
    if len(close_times) != len(equity):
        raise ValueError(f"{len(close_times)} close times for {len(equity)} equity values")
    if not len(equity):
        return []
    day = (close_times - 1) // DAY_MS
    last_of_day = np.flatnonzero(np.append(day[1:] != day[:-1], True))
    day_end = equity[last_of_day]
    previous = np.concatenate(([starting_balance], day_end[:-1]))
    out = np.zeros(len(day_end))
    positive = previous > 0
    out[positive] = day_end[positive] / previous[positive] - 1
    result: list[float] = out.tolist()
    return result


def max_drawdown(equity: FloatArray, starting_balance: float) -> float:
    """``trading.metrics.max_drawdown`` over an array: the deepest fall below the running peak
    (which starts at the starting balance), as a fraction of that peak."""
    if not len(equity):
        return 0.0
    peak = np.maximum.accumulate(np.concatenate(([starting_balance], equity[:-1])))
    # The loop's peak before candle i; a new high sets no drawdown, a non-positive peak neither.
    below = (equity <= peak) & (peak > 0)
    if not below.any():
        return 0.0
    return max(0.0, float(((peak[below] - equity[below]) / peak[below]).max()))
