"""A backtest over several symbols sharing one account: the Engine steps every symbol's candle of
one close time before any candle of the next, in (open time, symbol) order, as a multi-symbol
paper session does. The reference path (every candle through ``Engine.step``), not the fast one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from trading.candle import Candle
from trading.engine import Engine
from trading.models import Trade
from trading.settings import EngineSettings
from trading.signals import Signal


@dataclass(frozen=True)
class PortfolioBacktestResult:
    trades: tuple[Trade, ...]
    close_times: tuple[int, ...]  # one per step
    equity: tuple[float, ...]  # after each step
    final_state: dict[str, Any]


def run_portfolio_backtest(
    candles: Mapping[str, Sequence[Candle]],
    signals: Mapping[str, Sequence[Signal | None]],
    settings: EngineSettings,
    *,
    trade_from: int | None = None,
) -> PortfolioBacktestResult:
    """``signals[symbol][i]`` is the signal of ``candles[symbol][i]``; candles with open time
    before ``trade_from`` only warm the analysis and are not traded."""
    steps: list[tuple[int, str, int]] = []
    for symbol, series in candles.items():
        if len(signals[symbol]) != len(series):
            raise ValueError(f"{symbol}: {len(signals[symbol])} signals for {len(series)} candles")
        steps += [(c.open_time, symbol, i) for i, c in enumerate(series)
                  if trade_from is None or c.open_time >= trade_from]
    if not steps:
        raise ValueError("no candle to trade")
    steps.sort()
    engine = Engine(settings)
    trades: list[Trade] = []
    close_times: list[int] = []
    equity: list[float] = []
    for _, symbol, i in steps:
        result = engine.step(candles[symbol][i], signals[symbol][i])
        trades.extend(result.trades)
        close_times.append(engine.now)
        equity.append(engine.equity())
    return PortfolioBacktestResult(tuple(trades), tuple(close_times), tuple(equity), engine.to_state())
