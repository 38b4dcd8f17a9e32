"""What analysis hands to the Engine: each strategy's verdict and their consensus.

Analysis (indicators, strategies, consensus) runs outside the Engine, vectorised with
pandas-ta in backtests and in an activity for sessions; the Engine only sees these plain
objects, so it stays free of numpy/pandas and can run inside a Temporal workflow.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class Direction(StrEnum):
    LONG = "long"
    SHORT = "short"
    NEUTRAL = "neutral"


@dataclass(frozen=True, slots=True)
class StrategyVerdict:
    strategy: str  # "rsi" | "macd" | "bollinger" | "volume" | "stochastic" | any custom name
    direction: Direction
    confidence: float  # 0..1
    reason: str


@dataclass(frozen=True, slots=True)
class Signal:
    """The consensus for one symbol on one closed candle (identified by its open time)."""

    symbol: str
    open_time: int
    direction: Direction
    confidence: float  # 0..1
    reason: str
    verdicts: tuple[StrategyVerdict, ...] = field(default_factory=tuple)
