"""The Engine's small shared types: what a step returns and the errors it raises."""

from __future__ import annotations

import math
from dataclasses import dataclass

from trading import risk
from trading.candle import BadCandleError, Candle
from trading.errors import InvalidInput
from trading.models import Fill, Trade


class CandleRejected(BadCandleError):
    """A candle the Engine will not step: bad values, unknown symbol, or out of time order."""

    def __init__(self, candle: Candle, reason: str) -> None:
        super().__init__(0, reason, candle.open_time)
        ValueError.__init__(self, f"bad candle {candle.symbol or '?'}@{candle.open_time}: {reason}")


class OrderError(InvalidInput):
    """A manual order or close the Engine refuses, with the reason and the order field it is about."""

    def __init__(self, reason: str, field: str | None = None) -> None:
        super().__init__(field, reason)


@dataclass(frozen=True, slots=True)
class StepResult:
    fills: tuple[Fill, ...] = ()
    trades: tuple[Trade, ...] = ()  # trades closed during the step
    risk: tuple[risk.RiskCheckResult, ...] = ()  # verdicts of an attempted entry
    rejection: str | None = None  # why an entry signal did not trade


EMPTY_STEP = StepResult()


def _finite_positive(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and value > 0
