"""The five strategies: per candle a direction, a confidence in 0..1 and a reason with the numbers.

Each strategy is a vectorised function over indicator arrays (see ``trading.indicators``) and
returns a ``StrategyResult``: numpy arrays of direction codes (+1 long, -1 short, 0 neutral) and
confidences, plus ``verdict_at(i)`` which formats the reason only when someone asks for it.
Where an input is NaN (warm-up) the verdict is neutral with confidence 0.

Rules (defaults are the seed's; a "cross" happens on candle i when the sign of a difference
changes between candles i-1 and i):

- **RSI(14), 30/70** (``RsiParams``): long when RSI < oversold, short when RSI > overbought.
  Confidence grows with depth past the threshold: long 0.5 + 0.5 × (oversold - RSI) / oversold,
  short 0.5 + 0.5 × (RSI - overbought) / (100 - overbought); 0.5 at the threshold, 1 at 0/100.
- **MACD(12, 26, 9)** (``MacdParams``): long when the histogram (line - signal) crosses from
  <= 0 to > 0, short when it crosses from >= 0 to < 0. Confidence 0.9 when the MACD line is already
  on the trade's side of zero (the cross agrees with the trend), else 0.6.
- **Bollinger(20, 2)** (``BollingerParams``): mean reversion on a closing touch of a band: long
  when %b <= 0 (close at or below the lower band), short when %b >= 1 (at or above the upper
  band). Confidence 0.5 + 0.5 × min(1, distance past the band / half the band width), i.e. 1
  once the close is half a band width outside.
- **Volume, SMA(20), 1.5x** (``VolumeParams``): a spike (volume / mean of the previous 20
  candles' volume >= min_ratio) in the direction of the close-to-close move: long on a higher
  close, short on a lower close, neutral on an unchanged close. Confidence 0.5 + 0.5 ×
  min(1, (ratio - min_ratio) / min_ratio), so 1 at twice the threshold.
- **Stochastic(14, 3, 3), 20/80** (``StochasticParams``): long when %K crosses above %D with %D
  below oversold, short when %K crosses below %D with %D above overbought. Confidence 0.5 + 0.5 ×
  (oversold - %D) / oversold for longs, 0.5 + 0.5 × (%D - overbought) / (100 - overbought) for
  shorts.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

# The parameter classes live with the analysis settings (numpy-free, so workflows can hold them);
# they are re-exported here for callers that think of them as the strategies' parameters.
from trading.analysis_settings import BOLLINGER as BOLLINGER
from trading.analysis_settings import MACD as MACD
from trading.analysis_settings import PARAMS_TYPE as PARAMS_TYPE
from trading.analysis_settings import RSI as RSI
from trading.analysis_settings import STOCHASTIC as STOCHASTIC
from trading.analysis_settings import STRATEGY_NAMES as STRATEGY_NAMES
from trading.analysis_settings import VOLUME as VOLUME
from trading.analysis_settings import BollingerParams as BollingerParams
from trading.analysis_settings import MacdParams as MacdParams
from trading.analysis_settings import RsiParams as RsiParams
from trading.analysis_settings import StochasticParams as StochasticParams
from trading.analysis_settings import StrategyParams as StrategyParams
from trading.analysis_settings import VolumeParams as VolumeParams
from trading.analysis_settings import params_to_dict as params_to_dict
from trading.indicators import FloatArray
from trading.signals import Direction, StrategyVerdict

type DirectionArray = npt.NDArray[np.int8]

LONG, NEUTRAL, SHORT = 1, 0, -1
DIRECTION_OF_CODE = {LONG: Direction.LONG, NEUTRAL: Direction.NEUTRAL, SHORT: Direction.SHORT}

@dataclass(frozen=True, slots=True, eq=False)
class StrategyResult:
    """One strategy's verdicts over a whole series, as arrays; reasons are built on demand."""

    name: str
    direction: DirectionArray
    confidence: FloatArray
    explain: Callable[[int], str]

    def __len__(self) -> int:
        return len(self.direction)

    def verdict_at(self, i: int) -> StrategyVerdict:
        return StrategyVerdict(
            strategy=self.name,
            direction=DIRECTION_OF_CODE[int(self.direction[i])],
            confidence=float(self.confidence[i]),
            reason=self.explain(i),
        )


def _num(x: float) -> str:
    """Enough significant digits for both BTC/USD (30000.5) and altcoin/BTC (0.00002931) prices."""
    return f"{x:.6g}"


def _finalise(
    long: npt.NDArray[np.bool_], short: npt.NDArray[np.bool_], long_conf: FloatArray, short_conf: FloatArray
) -> tuple[DirectionArray, FloatArray]:
    direction = np.zeros(len(long), dtype=np.int8)
    direction[long] = LONG
    direction[short] = SHORT
    confidence = np.where(long, long_conf, np.where(short, short_conf, 0.0))
    return direction, np.clip(confidence, 0.0, 1.0)


def _previous(values: FloatArray) -> FloatArray:
    shifted = np.empty_like(values)
    shifted[:1] = np.nan
    shifted[1:] = values[:-1]
    return shifted


def rsi_strategy(rsi: FloatArray, params: RsiParams) -> StrategyResult:
    low, high = params.oversold, params.overbought
    with np.errstate(invalid="ignore"):
        long, short = rsi < low, rsi > high
    direction, confidence = _finalise(
        long, short, 0.5 + 0.5 * (low - rsi) / low, 0.5 + 0.5 * (rsi - high) / (100.0 - high)
    )

    def explain(i: int) -> str:
        value = rsi[i]
        if np.isnan(value):
            return f"RSI({params.length}) not available yet"
        if value < low:
            return f"RSI {value:.2f} < {low:g} oversold"
        if value > high:
            return f"RSI {value:.2f} > {high:g} overbought"
        return f"RSI {value:.2f} within {low:g}..{high:g}"

    return StrategyResult(RSI, direction, confidence, explain)


def macd_strategy(
    line: FloatArray, signal: FloatArray, histogram: FloatArray, params: MacdParams
) -> StrategyResult:
    before = _previous(histogram)
    with np.errstate(invalid="ignore"):
        long = (before <= 0) & (histogram > 0)
        short = (before >= 0) & (histogram < 0)
        long_conf = np.where(line > 0, 0.9, 0.6)
        short_conf = np.where(line < 0, 0.9, 0.6)
    direction, confidence = _finalise(long, short, long_conf, short_conf)

    def explain(i: int) -> str:
        if np.isnan(histogram[i]) or np.isnan(before[i]):
            return f"MACD({params.fast},{params.slow},{params.signal}) not available yet"
        lines = f"line {_num(line[i])}, signal {_num(signal[i])}"
        numbers = f"histogram {_num(before[i])} -> {_num(histogram[i])}; {lines}"
        if direction[i] == LONG:
            trend = "above zero, with the trend" if line[i] > 0 else "below zero, against the trend"
            return f"MACD crossed above its signal ({numbers}); line {trend}"
        if direction[i] == SHORT:
            trend = "below zero, with the trend" if line[i] < 0 else "above zero, against the trend"
            return f"MACD crossed below its signal ({numbers}); line {trend}"
        return f"MACD no cross ({numbers})"

    return StrategyResult(MACD, direction, confidence, explain)


def bollinger_strategy(
    close: FloatArray, lower: FloatArray, upper: FloatArray, percent_b: FloatArray, params: BollingerParams
) -> StrategyResult:
    with np.errstate(invalid="ignore"):
        long = percent_b <= 0
        short = percent_b >= 1
        # Past the band by half the band width (|%b| = 0.5 beyond it) is full confidence.
        long_conf = 0.5 + np.minimum(1.0, -percent_b / 0.5) * 0.5
        short_conf = 0.5 + np.minimum(1.0, (percent_b - 1.0) / 0.5) * 0.5
    direction, confidence = _finalise(long, short, long_conf, short_conf)

    def explain(i: int) -> str:
        if np.isnan(percent_b[i]):
            return f"Bollinger({params.length},{params.std:g}) not available yet"
        where = f"(%b {percent_b[i]:.2f})"
        if direction[i] == LONG:
            return f"close {_num(close[i])} <= lower band {_num(lower[i])} {where}"
        if direction[i] == SHORT:
            return f"close {_num(close[i])} >= upper band {_num(upper[i])} {where}"
        return f"close {_num(close[i])} inside bands {_num(lower[i])}..{_num(upper[i])} {where}"

    return StrategyResult(BOLLINGER, direction, confidence, explain)


def volume_strategy(close: FloatArray, ratio: FloatArray, params: VolumeParams) -> StrategyResult:
    before = _previous(close)
    threshold = params.min_ratio
    with np.errstate(invalid="ignore"):
        spike = ratio >= threshold
        long = spike & (close > before)
        short = spike & (close < before)
    strength = 0.5 + 0.5 * np.minimum(1.0, (ratio - threshold) / threshold)
    direction, confidence = _finalise(long, short, strength, strength)

    def explain(i: int) -> str:
        if np.isnan(ratio[i]) or np.isnan(before[i]):
            if i < params.length:
                return f"volume ratio vs SMA({params.length}) not available yet"
            return f"no volume in the previous {params.length} candles to compare with"
        volume = f"volume {ratio[i]:.2f}x its {params.length}-candle average"
        if ratio[i] < threshold:
            return f"{volume} < {threshold:g}, no spike"
        move = f"close {_num(before[i])} -> {_num(close[i])}"
        if direction[i] == LONG:
            return f"{volume} >= {threshold:g} on a rising {move}"
        if direction[i] == SHORT:
            return f"{volume} >= {threshold:g} on a falling {move}"
        return f"{volume} >= {threshold:g} but {move} unchanged"

    return StrategyResult(VOLUME, direction, confidence, explain)


def stochastic_strategy(k: FloatArray, d: FloatArray, params: StochasticParams) -> StrategyResult:
    low, high = params.oversold, params.overbought
    spread = k - d
    before = _previous(spread)
    with np.errstate(invalid="ignore"):
        long = (before <= 0) & (spread > 0) & (d < low)
        short = (before >= 0) & (spread < 0) & (d > high)
    direction, confidence = _finalise(
        long, short, 0.5 + 0.5 * (low - d) / low, 0.5 + 0.5 * (d - high) / (100.0 - high)
    )

    def explain(i: int) -> str:
        if np.isnan(spread[i]) or np.isnan(before[i]):
            return f"Stochastic({params.k},{params.d},{params.smooth_k}) not available yet"
        values = f"%K {k[i]:.2f}, %D {d[i]:.2f}"
        if direction[i] == LONG:
            return f"Stochastic %K crossed above %D below {low:g} ({values})"
        if direction[i] == SHORT:
            return f"Stochastic %K crossed below %D above {high:g} ({values})"
        crossed = (before[i] <= 0 < spread[i]) or (before[i] >= 0 > spread[i])
        if crossed:
            return f"Stochastic cross outside {low:g}/{high:g} zones ({values})"
        return f"Stochastic no cross ({values})"

    return StrategyResult(STOCHASTIC, direction, confidence, explain)
