"""Analysis entry points: candles in, consensus signals out, vectorised over the whole series.

The analysis for a (symbol, interval, settings) key starts at an anchor candle and moves forward.
Every value on candle ``i`` is a pure function of candles ``anchor..i`` and the settings, so a
backtest reproduces a session exactly by starting from the same anchor, and computing over a
longer series never changes the values already computed (the anchor property).

The warm-up gate: ``warmup_candles(settings)`` candles from the anchor carry no signal (None).
It covers each enabled strategy's indicator lookback plus, for the recursive smoothers (Wilder
RSI, the MACD EMAs), enough candles for the seed's weight to fall below 1%
(``SEED_WEIGHT_TOLERANCE``), so early signals do not lean on how the series happened to start.

Speed: indicators, strategies and consensus are numpy over the whole series; ``SignalSeries``
keeps the result as arrays and builds ``Signal`` objects (with their reason strings) only when
asked, via ``signal_at(i)``. ``compute_signals`` is the simple list API on top of it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from trading import indicators
from trading.analysis_settings import ANALYSIS_VERSION as ANALYSIS_VERSION
from trading.analysis_settings import AnalysisSettings as AnalysisSettings
from trading.analysis_settings import strategy_warmup as strategy_warmup
from trading.analysis_settings import warmup_candles as warmup_candles
from trading.candle import BadCandleError, Candle, CandleLists
from trading.consensus import Consensus, combine
from trading.indicators import FloatArray
from trading.signals import Signal
from trading.strategies import (
    BOLLINGER,
    DIRECTION_OF_CODE,
    MACD,
    RSI,
    STOCHASTIC,
    VOLUME,
    StrategyResult,
    bollinger_strategy,
    macd_strategy,
    rsi_strategy,
    stochastic_strategy,
    volume_strategy,
)


@dataclass(frozen=True, slots=True, eq=False)
class CandleArrays:
    """One symbol's candle columns, checked: positive finite prices, non-negative volume, times rising."""

    symbol: str
    open_time: npt.NDArray[np.int64]
    open: FloatArray
    high: FloatArray
    low: FloatArray
    close: FloatArray
    volume: FloatArray
    lists: CandleLists | None = None  # the columns as read from a candle sequence, if built from one

    def __post_init__(self) -> None:
        for name in ("open", "high", "low", "close", "volume"):
            object.__setattr__(self, name, np.ascontiguousarray(getattr(self, name), dtype=np.float64))
        object.__setattr__(self, "open_time", np.ascontiguousarray(self.open_time, dtype=np.int64))
        n = len(self.open_time)
        for name in ("open", "high", "low", "close", "volume"):
            if getattr(self, name).shape != (n,):
                raise ValueError(f"CandleArrays.{name} has shape {getattr(self, name).shape}, want ({n},)")
        self._check()

    def _check(self) -> None:
        prices = np.stack([self.open, self.high, self.low, self.close])
        problems = [
            (
                ~np.isfinite(prices).all(axis=0) | ~np.isfinite(self.volume),
                "a price or the volume is not finite",
            ),
            ((prices <= 0).any(axis=0), "prices must be positive"),
            (self.volume < 0, "volume must not be negative"),
            (
                (self.low > np.minimum(self.open, self.close))
                | (self.high < np.maximum(self.open, self.close)),
                "open/close outside low..high",
            ),
        ]
        steps = np.diff(self.open_time)
        problems.append(
            (np.concatenate(([False], steps <= 0)), "open_time is not after the previous candle's")
        )
        for bad, reason in problems:
            if bad.any():
                i = int(np.argmax(bad))
                raise BadCandleError(i + 1, reason, int(self.open_time[i]))

    @classmethod
    def from_candles(cls, candles: Sequence[Candle]) -> CandleArrays:
        symbols = {c.symbol for c in candles}
        if len(symbols) > 1:
            raise ValueError(f"analysis runs on one symbol at a time, got {sorted(symbols)}")

        lists = CandleLists.of(candles)
        n = len(candles)

        def column(values: list[Any], dtype: type) -> npt.NDArray[Any]:
            return np.fromiter(values, dtype=dtype, count=n)

        return cls(
            symbol=symbols.pop() if symbols else "",
            open_time=column(lists.open_time, np.int64),
            open=column(lists.open, np.float64),
            high=column(lists.high, np.float64),
            low=column(lists.low, np.float64),
            close=column(lists.close, np.float64),
            volume=column(lists.volume, np.float64),
            lists=lists,
        )

    def __len__(self) -> int:
        return len(self.open_time)


def _arrays(candles: Sequence[Candle] | CandleArrays) -> CandleArrays:
    return candles if isinstance(candles, CandleArrays) else CandleArrays.from_candles(candles)


def _strategy_results(data: CandleArrays, settings: AnalysisSettings) -> tuple[StrategyResult, ...]:
    results = []
    for name in settings.enabled:
        if name == RSI:
            results.append(rsi_strategy(indicators.rsi(data.close, settings.rsi.length), settings.rsi))
        elif name == MACD:
            m = indicators.macd(data.close, settings.macd.fast, settings.macd.slow, settings.macd.signal)
            results.append(macd_strategy(m.line, m.signal, m.histogram, settings.macd))
        elif name == BOLLINGER:
            b = indicators.bollinger(data.close, settings.bollinger.length, settings.bollinger.std)
            results.append(bollinger_strategy(data.close, b.lower, b.upper, b.percent_b, settings.bollinger))
        elif name == VOLUME:
            ratio = indicators.volume_ratio(data.volume, settings.volume.length)
            results.append(volume_strategy(data.close, ratio, settings.volume))
        elif name == STOCHASTIC:
            s = settings.stochastic
            st = indicators.stochastic(data.high, data.low, data.close, s.k, s.d, s.smooth_k)
            results.append(stochastic_strategy(st.k, st.d, s))
    return tuple(results)


@dataclass(frozen=True, slots=True, eq=False)
class SignalSeries:
    """Signals for every candle of a series as arrays; ``signal_at`` builds one ``Signal`` lazily.

    ``direction`` (+1 long, -1 short, 0 neutral) and ``confidence`` are 0 during warm-up.
    """

    symbol: str
    open_time: npt.NDArray[np.int64]
    direction: npt.NDArray[np.int8]
    confidence: FloatArray
    warmup: int
    consensus: Consensus
    # The arrays (and the lists read for them) of the candle sequence it was computed from, if any:
    # the backtester reuses them for that sequence.
    candle_data: CandleArrays | None = None

    def __len__(self) -> int:
        return len(self.open_time)

    def signal_at(self, i: int) -> Signal | None:
        n = len(self)
        if not -n <= i < n:
            raise IndexError(f"candle index {i} out of range for {n} candles")
        i %= n
        if i < self.warmup:
            return None
        return Signal(
            symbol=self.symbol,
            open_time=int(self.open_time[i]),
            direction=DIRECTION_OF_CODE[int(self.direction[i])],
            confidence=float(self.confidence[i]),
            reason=self.consensus.reason_at(i),
            verdicts=tuple(r.verdict_at(i) for r in self.consensus.results),
        )

    def signals(self) -> list[Signal | None]:
        return [self.signal_at(i) for i in range(len(self))]


def compute_signal_series(
    candles: Sequence[Candle] | CandleArrays, settings: AnalysisSettings
) -> SignalSeries:
    """The vectorised path: one consensus per candle, from the first candle (the anchor) on."""
    data = _arrays(candles)
    consensus = combine(
        _strategy_results(data, settings),
        min_agree=settings.min_agree,
        weights=None if settings.weights is None else settings.enabled_weights(),
        min_vote_weight=settings.min_vote_weight,
    )
    warmup = min(warmup_candles(settings), len(data))
    direction = consensus.direction.copy()
    confidence = consensus.confidence.copy()
    direction[:warmup] = 0
    confidence[:warmup] = 0.0
    from_sequence = data if data.lists is not None else None
    return SignalSeries(data.symbol, data.open_time, direction, confidence, warmup, consensus, from_sequence)


def compute_signals(
    candles: Sequence[Candle] | CandleArrays, settings: AnalysisSettings
) -> list[Signal | None]:
    """One entry per candle: the consensus ``Signal``, or None during warm-up."""
    return compute_signal_series(candles, settings).signals()


def analyze_latest(candles: Sequence[Candle] | CandleArrays, settings: AnalysisSettings) -> Signal | None:
    """The signal on the last candle of a series that starts at the anchor (None if still warming up)."""
    series = compute_signal_series(candles, settings)
    return series.signal_at(-1) if len(series) else None


def compute_indicator_frame(
    candles: Sequence[Candle] | CandleArrays, settings: AnalysisSettings
) -> pd.DataFrame:
    """Every indicator the strategies use (enabled or not) plus ATR, one row per candle, by open_time."""
    data = _arrays(candles)
    m = indicators.macd(data.close, settings.macd.fast, settings.macd.slow, settings.macd.signal)
    b = indicators.bollinger(data.close, settings.bollinger.length, settings.bollinger.std)
    s = settings.stochastic
    st = indicators.stochastic(data.high, data.low, data.close, s.k, s.d, s.smooth_k)
    columns: dict[str, FloatArray] = {
        "close": data.close,
        "volume": data.volume,
        "rsi": indicators.rsi(data.close, settings.rsi.length),
        "macd": m.line,
        "macd_signal": m.signal,
        "macd_histogram": m.histogram,
        "bb_lower": b.lower,
        "bb_mid": b.mid,
        "bb_upper": b.upper,
        "bb_bandwidth": b.bandwidth,
        "bb_percent_b": b.percent_b,
        "stoch_k": st.k,
        "stoch_d": st.d,
        "volume_sma": indicators.volume_sma(data.volume, settings.volume.length),
        "volume_ratio": indicators.volume_ratio(data.volume, settings.volume.length),
        "atr": indicators.atr(data.high, data.low, data.close, settings.atr_length),
    }
    return pd.DataFrame(columns, index=pd.Index(data.open_time, name="open_time"))


def latest_indicators(candles: Sequence[Candle] | CandleArrays, settings: AnalysisSettings) -> dict[str, float | None]:
    """Every indicator's value on the last candle of a series from the anchor (None while undefined),
    as the record of what the strategies saw."""
    frame = compute_indicator_frame(candles, settings)
    if not len(frame):
        return {}
    last = frame.iloc[-1]
    return {name: (float(v) if np.isfinite(v) else None) for name, v in last.items()}
