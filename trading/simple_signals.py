"""Two textbook signal generators, for peer cross-checks, benches and the CLI.

* ``sma_cross``: long on the candle where the fast SMA closes above the slow one after being
  below it, short on the reverse cross (backtesting.py's ``crossover``: strictly below, then
  strictly above). Neutral otherwise.
* ``rsi_threshold``: Wilder RSI; long when it crosses up through ``lower``, short when it crosses
  down through ``upper``.

Both return a ``SimpleSignalSeries``: one entry per candle, None while warming up, like
``trading.analysis.compute_signals``, with Signal objects built lazily.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

from trading.candle import Candle
from trading.signals import Direction, Signal, StrategyVerdict

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt


def sma(values: Sequence[float], length: int) -> list[float | None]:
    """Simple moving average; None until ``length`` values exist. A running sum, re-summed exactly
    every ``length`` values so that rounding error cannot accumulate over long series."""
    if length < 1:
        raise ValueError(f"SMA length must be >= 1, got {length}")
    n = len(values)
    if n < length:
        return [None] * n
    total = 0.0
    for v in values[:length]:
        total += v
    if (length - 1) % length == 0:  # length 1: the periodic re-sum lands on the first value
        total = sum(values[:length])
    out: list[float | None] = [None] * (length - 1)
    out.append(total / length)
    for i in range(length, n):
        total = total + values[i] - values[i - length]
        if i % length == 0:
            total = sum(values[i - length + 1 : i + 1])
        out.append(total / length)
    return out


def _running_totals(values: list[float], array: npt.NDArray[np.float64], length: int) -> npt.NDArray[np.float64]:
    """The running sums of ``sma`` at every index from ``length - 1`` on (earlier entries are
    undefined), bit-identical to its loop without running it value by value.

    ``sma`` re-sums with ``sum`` at every multiple of ``length``, and between two re-sums computes
    ``(total + values[i]) - values[i - length]`` one index after the other. So the chains between
    re-sums are independent: with the series laid out as a grid of one column per chain, each of the
    ``length - 1`` steps is one numpy operation over all chains at once, with the same float
    operations in the same order. The re-sums are ``_python_sums`` of the same windows."""
    import numpy as np

    n = len(values)
    out = np.empty(n)
    total = 0.0
    for v in values[:length]:
        total += v
    if length == 1:  # sma's periodic re-sum lands on the first value
        total = sum(values[:1])
    out[length - 1] = total
    chains = -(-n // length)
    if chains > 1:
        padded = np.zeros(chains * length)
        padded[:n] = array
        ahead = padded.reshape(chains, length).T  # ahead[j, b]: values[b * length + j]
        shifted = np.zeros(chains * length)
        shifted[length:] = padded[:-length]
        behind = shifted.reshape(chains, length).T  # behind[j, b]: values[b * length + j - length]
        totals = np.empty((length, chains))
        # Chain b >= 1 starts at index b * length with sum(values[(b - 1) * length + 1 : b * length + 1]).
        totals[0, 1:] = _python_sums(values, array[1 : (chains - 1) * length + 1].reshape(chains - 1, length))
        for j in range(1, length):
            totals[j, 1:] = (totals[j - 1, 1:] + ahead[j, 1:]) - behind[j, 1:]
        out[length:] = totals.T.reshape(-1)[length:n]
    return out


def _neumaier_rows(windows: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """CPython's ``sum`` of each row, all rows at once: ``0 + x0``, then Neumaier's compensated
    summation of the rest, the compensation added at the end when it is nonzero and finite
    (Python/bltinmodule.c, 3.12 and later)."""
    import numpy as np

    with np.errstate(all="ignore"):  # Python's sum overflows to inf (and inf - inf to nan) silently
        total = windows[:, 0] + 0.0
        compensation = np.zeros(len(windows))
        for k in range(1, windows.shape[1]):
            x = windows[:, k]
            t = total + x
            compensation += np.where(np.abs(total) >= np.abs(x), (total - t) + x, (x - t) + total)
            total = t
        sums: npt.NDArray[np.float64] = np.where(
            (compensation != 0) & np.isfinite(compensation), total + compensation, total
        )
    return sums


_NEUMAIER_IS_PYTHON_SUM: list[bool] = []  # decided once per process by _neumaier_is_python_sum


def _neumaier_is_python_sum() -> bool:
    """Whether ``_neumaier_rows`` gives this interpreter's ``sum`` bit for bit, on windows made to
    need the compensation (huge and tiny values that cancel, ties, signed zeros); a Python whose
    ``sum`` changed makes ``_python_sums`` fall back to calling it."""
    if not _NEUMAIER_IS_PYTHON_SUM:
        import numpy as np

        pool = [1e16, -1e16, 1.0, 3.0, 0.1, -0.0, 1e-300, 2.5e-7, 7123.45, -7123.45, 1e308, -1e308]
        rows = [[pool[(7 * r + 5 * k * k + r * k) % len(pool)] for k in range(2 + r % 9)] for r in range(600)]
        same = True
        for length in sorted({len(row) for row in rows}):
            block = [row for row in rows if len(row) == length]
            got = _neumaier_rows(np.array(block))
            want = np.array([sum(row) for row in block])
            same = same and bool(np.array_equal(got.view(np.int64), want.view(np.int64)))
        _NEUMAIER_IS_PYTHON_SUM.append(same)
    return _NEUMAIER_IS_PYTHON_SUM[0]


def _python_sums(values: list[float], windows: npt.NDArray[np.float64]) -> list[float] | npt.NDArray[np.float64]:
    """``sum`` of each row of ``windows`` (consecutive values starting at index 1), exactly as
    Python computes it: in numpy when it provably agrees, else by calling ``sum``."""
    if _neumaier_is_python_sum():
        return _neumaier_rows(windows)
    length = windows.shape[1]
    columns = (values[1 + k :: length] for k in range(length))
    sums: list[float] = list(map(sum, zip(*columns, strict=False)))[: len(windows)]  # type: ignore[arg-type, assignment]
    return sums


def _cross_codes(values: list[float], fast: int, slow: int) -> tuple[list[int], npt.NDArray[np.float64]]:
    """The cross codes of ``sma_cross`` for indices slow .. n-1 (needs n > slow), from the two
    averages as ``sma`` computes them (``_running_totals`` / length), compared with numpy; and the
    values as an array.

    numpy is imported here, not with the module: the Engine's modules (this one included) must
    import in the workflow sandbox, which has no numpy (tests/trading/test_engine_state.py)."""
    import numpy as np

    array = np.fromiter(values, dtype=np.float64, count=len(values))
    f = _running_totals(values, array, fast)[slow - 1 :] / fast
    s = _running_totals(values, array, slow)[slow - 1 :] / slow
    f0, s0, f1, s1 = f[:-1], s[:-1], f[1:], s[1:]
    up = (f0 < s0) & (f1 > s1)
    down = (f0 > s0) & (f1 < s1)
    codes: list[int] = (up.astype(np.int8) - down.astype(np.int8)).tolist()
    return codes, array


def rsi(values: Sequence[float], length: int = 14) -> list[float | None]:
    """Wilder's RSI seeded with the simple average of the first ``length`` changes."""
    if length < 1:
        raise ValueError(f"RSI length must be >= 1, got {length}")
    out: list[float | None] = [None] * len(values)
    if len(values) <= length:
        return out
    gains = losses = 0.0
    for i in range(1, length + 1):
        change = values[i] - values[i - 1]
        gains += max(change, 0.0)
        losses += max(-change, 0.0)
    avg_gain, avg_loss = gains / length, losses / length
    out[length] = _rsi_value(avg_gain, avg_loss)
    for i in range(length + 1, len(values)):
        change = values[i] - values[i - 1]
        avg_gain = (avg_gain * (length - 1) + max(change, 0.0)) / length
        avg_loss = (avg_loss * (length - 1) + max(-change, 0.0)) / length
        out[i] = _rsi_value(avg_gain, avg_loss)
    return out


def _rsi_value(avg_gain: float, avg_loss: float) -> float:
    if avg_loss == 0:
        return 100.0 if avg_gain > 0 else 50.0
    return 100 - 100 / (1 + avg_gain / avg_loss)


class SimpleSignalSeries:
    """Signals of a simple generator: ``direction`` per candle (+1 long, -1 short, 0 neutral,
    None warming up) with the ``Signal`` objects built only when asked (``signal_at``, indexing,
    ``signals()``), so a million-candle series costs a list of small ints."""

    __slots__ = ("_candles", "_reasons", "close_array", "closes", "direction", "strategy")

    def __init__(
        self,
        candles: Sequence[Candle],
        direction: list[int | None],
        strategy: str,
        reasons: dict[int, str],
        closes: list[float] | None = None,
        close_array: npt.NDArray[np.float64] | None = None,
    ) -> None:
        self._candles = candles
        self.direction = direction
        self.strategy = strategy
        self._reasons = reasons  # direction code → reason
        # The candles' closes (list, and array if one was built), when the generator read them: the
        # backtester reuses them.
        self.closes = closes
        self.close_array = close_array

    def __len__(self) -> int:
        return len(self.direction)

    def __getitem__(self, i: int) -> Signal | None:
        return self.signal_at(i)

    def __iter__(self) -> Iterator[Signal | None]:
        return (self.signal_at(i) for i in range(len(self.direction)))

    @property
    def candles(self) -> Sequence[Candle]:
        """The candles the signals were computed from."""
        return self._candles

    @property
    def symbol(self) -> str:
        return self._candles[0].symbol if self._candles else ""

    @property
    def open_time(self) -> list[int]:
        return [c.open_time for c in self._candles]

    @property
    def confidence(self) -> list[float]:
        return [0.0 if not d else 1.0 for d in self.direction]

    def signal_at(self, i: int) -> Signal | None:
        code = self.direction[i]
        if code is None:
            return None
        candle = self._candles[i]
        direction = _DIRECTIONS[code]
        confidence = 0.0 if direction is Direction.NEUTRAL else 1.0
        reason = self._reasons[code]
        verdict = StrategyVerdict(self.strategy, direction, confidence, reason)
        return Signal(candle.symbol, candle.open_time, direction, confidence, reason, (verdict,))

    def signals(self) -> list[Signal | None]:
        return list(self)


_DIRECTIONS = {1: Direction.LONG, -1: Direction.SHORT, 0: Direction.NEUTRAL}


def sma_cross(candles: Sequence[Candle], fast: int = 10, slow: int = 30) -> SimpleSignalSeries:
    if not 1 <= fast < slow:
        raise ValueError(f"need 1 <= fast < slow, got fast={fast} slow={slow}")
    closes = [c.close for c in candles]
    n = len(candles)
    direction: list[int | None] = [None] * min(slow, n)
    close_array = None
    if n > slow:
        codes, close_array = _cross_codes(closes, fast, slow)
        direction.extend(codes)
    reasons = {
        1: f"SMA{fast} crossed above SMA{slow}",
        -1: f"SMA{fast} crossed below SMA{slow}",
        0: "no cross",
    }
    return SimpleSignalSeries(candles, direction, "sma_cross", reasons, closes, close_array)


def rsi_threshold(
    candles: Sequence[Candle], length: int = 14, lower: float = 30.0, upper: float = 70.0
) -> SimpleSignalSeries:
    if not 0 < lower < upper < 100:
        raise ValueError(f"need 0 < lower < upper < 100, got lower={lower} upper={upper}")
    closes = [c.close for c in candles]
    values = rsi(closes, length)
    n = len(candles)
    direction: list[int | None] = [None] * min(length + 1, n)
    for i in range(length + 1, n):
        previous, current = values[i - 1], values[i]
        if previous <= lower < current:  # type: ignore[operator]
            direction.append(1)
        elif previous >= upper > current:  # type: ignore[operator]
            direction.append(-1)
        else:
            direction.append(0)
    reasons = {
        1: f"RSI crossed up through {lower}",
        -1: f"RSI crossed down through {upper}",
        0: "RSI between thresholds",
    }
    return SimpleSignalSeries(candles, direction, "rsi_threshold", reasons, closes)
