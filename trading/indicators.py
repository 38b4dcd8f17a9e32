"""Technical indicators: thin, typed wrappers over pandas-ta with TA-Lib underneath.

Every function takes price/volume columns (numpy arrays, pandas Series or lists of floats) and
returns float64 numpy arrays of the same length, aligned to the input: element ``i`` is the value
on candle ``i``, NaN while the indicator has too little history (and all NaN when the input is
shorter than the indicator needs, where pandas-ta would return ``None``).

All are causal and deterministic: the value on candle ``i`` depends only on candles ``0..i`` of
the series passed in. That is what makes indicator values a pure function of the series from an
anchor candle; the recursive ones (EMA, Wilder) still remember their seed, so a series must start
at the same anchor to reproduce them exactly.

Exact calls and conventions (pandas-ta 0.4.71b0, ``talib=True`` uses TA-Lib's C functions):

- ``rsi``: ``ta.rsi(close, length, talib=True)`` → ``talib.RSI``. Wilder smoothing
  (alpha = 1/length) seeded with the simple mean of the first ``length`` gains/losses; first
  value on candle ``length``. TA-Lib returns 0 when nothing has moved yet (0/0); we return 50,
  neither side, so a flat start never reads as "oversold".
- ``macd``: ``ta.macd(close, fast, slow, signal, talib=True)`` → ``talib.MACD``. Both EMAs are
  seeded with an SMA and start together on candle ``slow - 1`` (so the fast EMA's seed is the
  mean of closes ``slow-fast .. slow-1``, not a standalone EMA(fast)); the signal line is an
  EMA(signal) of the MACD line seeded with the mean of its first ``signal`` values; first
  values on candle ``slow + signal - 2``. ``histogram = line - signal``.
- ``bollinger``: ``ta.bbands(close, length, std, std, mamode="sma", talib=True)`` →
  ``talib.BBANDS``: mid = SMA(length), bands = mid ± std × population standard deviation
  (ddof = 0, Bollinger's definition; pandas-ta's ``ddof`` is ignored on the TA-Lib path).
  ``bandwidth = 100 × (upper - lower) / mid`` (percent), ``percent_b = (close - lower) /
  (upper - lower)``. First values on candle ``length - 1``.
- ``stochastic``: ``ta.stoch(high, low, close, k, d, smooth_k, mamode="sma")``. Fast %K =
  100 × (close - lowest low) / (highest high - lowest low) over ``k`` candles (0 when the range
  is empty); %K = SMA(smooth_k) of it; %D = SMA(d) of %K. pandas-ta passes ``d`` where TA-Lib
  wants ``smooth_k``, so its TA-Lib path is only taken when ``smooth_k == d`` (and
  ``smooth_k > 2``, pandas-ta's own condition); otherwise pandas-ta's rolling-window path runs,
  which agrees with TA-Lib to ~1e-12. ``d`` must be >= 2 (pandas-ta fails on an SMA of length 1).
- ``volume_sma``: ``ta.sma(volume, length, talib=True)`` → ``talib.SMA`` (includes candle i).
- ``volume_ratio``: volume on candle ``i`` over the mean volume of the ``length`` candles
  *before* it, so a spike is measured against a baseline it has not inflated. NaN when that
  baseline is zero (nothing traded) or missing.
- ``ema``: ``ta.ema(close, length, talib=True)`` → ``talib.EMA``, alpha = 2/(length+1),
  seeded with SMA(length); first value on candle ``length - 1``.
- ``atr``: ``ta.atr(high, low, close, length, talib=True)`` → ``talib.ATR``. True range =
  max(high - low, |high - prev close|, |low - prev close|); ATR is its Wilder average seeded
  with the mean of true ranges 1..length; first value on candle ``length``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd
import pandas_ta as ta

type FloatArray = npt.NDArray[np.float64]
type Column = FloatArray | pd.Series | Sequence[float]


@dataclass(frozen=True, slots=True)
class Macd:
    line: FloatArray
    signal: FloatArray
    histogram: FloatArray


@dataclass(frozen=True, slots=True)
class Bollinger:
    lower: FloatArray
    mid: FloatArray
    upper: FloatArray
    bandwidth: FloatArray  # percent of mid
    percent_b: FloatArray  # 0 at the lower band, 1 at the upper band


@dataclass(frozen=True, slots=True)
class Stochastic:
    k: FloatArray  # slow %K, 0..100
    d: FloatArray  # %D, 0..100


def _series(values: Column, name: str) -> pd.Series:
    array = np.asarray(values, dtype=np.float64)
    if array.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {array.shape}")
    return pd.Series(array, copy=False)


def _same_length(**columns: pd.Series) -> int:
    lengths = {name: len(s) for name, s in columns.items()}
    if len(set(lengths.values())) > 1:
        raise ValueError(f"columns differ in length: {lengths}")
    return next(iter(lengths.values()))


def _period(value: int, name: str, minimum: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")


def _array(result: pd.Series | None, n: int) -> FloatArray:
    """pandas-ta returns None when the series is shorter than the indicator needs."""
    if result is None:
        return np.full(n, np.nan)
    return result.to_numpy(dtype=np.float64, copy=True)


def rsi(close: Column, length: int = 14) -> FloatArray:
    _period(length, "rsi length", 2)
    s = _series(close, "close")
    values = _array(ta.rsi(s, length=length, talib=True), len(s))
    # 0/0 (no move since the series began) is "no information", not "fully oversold".
    prices = s.to_numpy()
    moved = np.logical_or.accumulate(np.diff(prices, prepend=prices[:1]) != 0)
    values[(values == 0.0) & ~moved] = 50.0
    return values


def macd(close: Column, fast: int = 12, slow: int = 26, signal: int = 9) -> Macd:
    _period(fast, "macd fast", 2)
    _period(signal, "macd signal", 2)
    _period(slow, "macd slow", fast + 1)
    s = _series(close, "close")
    frame = ta.macd(s, fast=fast, slow=slow, signal=signal, talib=True)
    if frame is None:
        empty = np.full(len(s), np.nan)
        return Macd(empty, empty.copy(), empty.copy())
    suffix = f"_{fast}_{slow}_{signal}"
    return Macd(
        line=_array(frame[f"MACD{suffix}"], len(s)),
        signal=_array(frame[f"MACDs{suffix}"], len(s)),
        histogram=_array(frame[f"MACDh{suffix}"], len(s)),
    )


def bollinger(close: Column, length: int = 20, std: float = 2.0) -> Bollinger:
    _period(length, "bollinger length", 2)
    if not (isinstance(std, (int, float)) and not isinstance(std, bool) and 0 < std < float("inf")):
        raise ValueError(f"bollinger std must be a positive number, got {std!r}")
    s = _series(close, "close")
    std = float(std)
    frame = ta.bbands(s, length=length, lower_std=std, upper_std=std, mamode="sma", talib=True)
    if frame is None:
        empty = np.full(len(s), np.nan)
        return Bollinger(empty, empty.copy(), empty.copy(), empty.copy(), empty.copy())
    lower, mid, upper, bandwidth, percent_b = (_array(frame.iloc[:, j], len(s)) for j in range(5))
    return Bollinger(lower, mid, upper, bandwidth, percent_b)


def stochastic(
    high: Column, low: Column, close: Column, k: int = 14, d: int = 3, smooth_k: int = 3
) -> Stochastic:
    _period(k, "stochastic k", 1)
    _period(d, "stochastic d", 2)
    _period(smooth_k, "stochastic smooth_k", 1)
    h, lo, c = _series(high, "high"), _series(low, "low"), _series(close, "close")
    n = _same_length(high=h, low=lo, close=c)
    use_talib = smooth_k == d
    frame = ta.stoch(h, lo, c, k=k, d=d, smooth_k=smooth_k, mamode="sma", talib=use_talib)
    if frame is None:
        empty = np.full(n, np.nan)
        return Stochastic(empty, empty.copy())
    suffix = f"_{k}_{d}_{smooth_k}"
    return Stochastic(k=_array(frame[f"STOCHk{suffix}"], n), d=_array(frame[f"STOCHd{suffix}"], n))


def volume_sma(volume: Column, length: int = 20) -> FloatArray:
    _period(length, "volume length", 1)
    s = _series(volume, "volume")
    if length == 1:
        return s.to_numpy(dtype=np.float64, copy=True)
    return _array(ta.sma(s, length=length, talib=True), len(s))


def volume_ratio(volume: Column, length: int = 20) -> FloatArray:
    _period(length, "volume length", 1)
    v = _series(volume, "volume").to_numpy()
    baseline = np.full(len(v), np.nan)
    baseline[1:] = volume_sma(v[:-1], length)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = v / baseline
    ratio[~(baseline > 0)] = np.nan
    return ratio


def ema(close: Column, length: int) -> FloatArray:
    _period(length, "ema length", 2)
    s = _series(close, "close")
    return _array(ta.ema(s, length=length, talib=True), len(s))


def atr(high: Column, low: Column, close: Column, length: int = 14) -> FloatArray:
    _period(length, "atr length", 1)
    h, lo, c = _series(high, "high"), _series(low, "low"), _series(close, "close")
    n = _same_length(high=h, low=lo, close=c)
    return _array(ta.atr(h, lo, c, length=length, talib=True), n)
