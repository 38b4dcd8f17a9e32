"""Performance metrics of a run, in pure Python.

* Returns for Sharpe and Sortino are daily: the equity at the last candle of each UTC day (market
  time) against the previous day's; annualised with sqrt(365) since crypto trades every day.
  Risk-free rate 0. Sortino's downside deviation is sqrt(mean(min(r, 0)^2)) over all days.
* Max drawdown is over the per-candle (close-marked) equity curve, as a fraction of the peak.
* Exposure is the share of candles at whose close a position was open.
* Profit factor is gross profit / gross loss of net trade PnL; None when there is no loss.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence

from trading.candle import DAY_MS
from trading.models import Trade


def daily_returns(close_times: Sequence[int], equity: Sequence[float], starting_balance: float) -> list[float]:
    if len(close_times) != len(equity):
        raise ValueError(f"{len(close_times)} close times for {len(equity)} equity values")
    day_end: list[float] = []
    i, n = 0, len(close_times)
    while i < n:
        # A candle closing exactly at midnight belongs to the day it ends: (t - 1) // DAY_MS.
        next_midnight = ((close_times[i] - 1) // DAY_MS + 1) * DAY_MS
        i = bisect.bisect_right(close_times, next_midnight, i)
        day_end.append(equity[i - 1])
    out: list[float] = []
    previous = starting_balance
    for e in day_end:
        out.append(e / previous - 1 if previous > 0 else 0.0)
        previous = e
    return out


def max_drawdown(equity: Sequence[float], starting_balance: float) -> float:
    peak = starting_balance
    worst = 0.0
    for e in equity:
        if e > peak:
            peak = e
        elif peak > 0:
            drawdown = (peak - e) / peak
            if drawdown > worst:
                worst = drawdown
    return worst


def compute_metrics(
    trades: Sequence[Trade],
    close_times: Sequence[int],
    equity: Sequence[float],
    starting_balance: float,
    candles_in_position: int,
    fees_paid: float,
    funding_paid: float,
    *,
    days: list[float] | None = None,
    drawdown: float | None = None,
) -> dict[str, float | int | None]:
    """``days`` and ``drawdown``, when given, are ``daily_returns`` and ``max_drawdown`` of these
    close times and equity, computed by the caller (the backtester does it in numpy)."""
    final = equity[-1] if equity else starting_balance
    wins = [t.net_pnl for t in trades if t.net_pnl > 0]
    losses = [t.net_pnl for t in trades if t.net_pnl < 0]
    gross_profit, gross_loss = math.fsum(wins), -math.fsum(losses)
    if days is None:
        days = daily_returns(close_times, equity, starting_balance)
    mean = math.fsum(days) / len(days) if days else 0.0
    sd = math.sqrt(math.fsum((r - mean) ** 2 for r in days) / (len(days) - 1)) if len(days) > 1 else 0.0
    downside = math.sqrt(math.fsum(min(r, 0.0) ** 2 for r in days) / len(days)) if days else 0.0
    return {
        "starting_balance": starting_balance,
        "final_equity": final,
        "total_return": final / starting_balance - 1,
        "trades": len(trades),
        "win_rate": len(wins) / len(trades) if trades else None,
        "profit_factor": gross_profit / gross_loss if gross_loss > 0 else None,
        "sharpe": mean / sd * math.sqrt(365) if sd > 0 else None,
        "sortino": mean / downside * math.sqrt(365) if downside > 0 else None,
        "max_drawdown": max_drawdown(equity, starting_balance) if drawdown is None else drawdown,
        "exposure": candles_in_position / len(equity) if equity else 0.0,
        "average_trade": math.fsum(t.net_pnl for t in trades) / len(trades) if trades else None,
        "fees_paid": fees_paid,
        "funding_paid": funding_paid,
        "days": len(days),
    }
