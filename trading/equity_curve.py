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
    """Spans ``[previous end, end)`` of constant cash / position in candle order, recorded through
    ``record((end, cash, quantity, entry, sign))`` (sign +1 long, -1 short, 0 flat with quantity and
    entry 0.0). The five numbers are flattened into one list of floats and ints: the tuple is freed
    at once, so a run keeps no tracked object per span (each kept one would count toward the
    garbage collector's next young collection, ~150 of them per million-candle run)."""

    __slots__ = ("_flat", "_start", "record")

    def __init__(self, start: int) -> None:
        self._start = start
        self._flat: list[float] = []
        self.record = self._flat.extend

    def curve(self, closes: Sequence[float] | FloatArray) -> FloatArray:
        """The equity after each candle of ``[start, last end)``; ``closes`` is the whole series'
        (a list, or an array of the same values)."""
        if not self._flat:
            return np.empty(0)
        # Ends and signs are small ints: exact in float64.
        spans = np.fromiter(self._flat, dtype=np.float64, count=len(self._flat)).reshape(-1, 5)
        ends = spans[:, 0].astype(np.int64)
        lengths = np.diff(ends, prepend=self._start)
        cash_at, quantity_at, entry_at, sign_at = (np.repeat(spans[:, k], lengths) for k in range(1, 5))
        stop = int(ends[-1])
        if isinstance(closes, np.ndarray):
            close = closes[self._start : stop]
        else:
            close = np.fromiter(closes[self._start : stop], dtype=np.float64, count=stop - self._start)
        # A short's q * (entry - close) is exactly -(q * (close - entry)): IEEE rounding is symmetric,
        # so negating an operand negates the result; and cash + (-u) is cash - u by definition.
        unrealised = quantity_at * (close - entry_at) * sign_at
        curve: FloatArray = np.where(sign_at != 0, cash_at + unrealised, cash_at)
        return curve


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
