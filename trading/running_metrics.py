"""Performance metrics kept up to date one step at a time, in O(1) state.

A paper session lives for months and carries its state across continue-as-new, so it cannot keep
every equity point to hand to ``trading.metrics.compute_metrics``. ``RunningMetrics`` gives the same
figures from running sums (Welford for the variance of daily returns), with the same definitions:
daily returns from the equity at the last step of each UTC day (market time), Sharpe and Sortino
annualised with sqrt(365), max drawdown over the per-step equity, exposure as the share of steps
with a position open. Crossing 00:00 UTC closes a day and returns its ``DayClosed`` record (the
daily ``performance_metrics`` row).

Pure Python, no I/O: safe inside workflow code.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from trading.candle import DAY_MS

_SQRT_365 = math.sqrt(365)


def market_day(time_ms: int) -> int:
    """The UTC day a step at ``time_ms`` (a close time) belongs to; a close at exactly midnight
    ends the day before, as in ``trading.metrics.daily_returns``."""
    return (time_ms - 1) // DAY_MS


def day_label(day: int) -> str:
    return datetime.fromtimestamp(day * DAY_MS / 1000, UTC).strftime("%Y-%m-%d")


@dataclass(frozen=True)
class DayClosed:
    """One finished UTC day of a session, as stored in ``performance_metrics``."""

    date: str  # YYYY-MM-DD (UTC, market time)
    start_equity: float
    end_equity: float
    daily_return: float
    net_pnl: float  # realised net PnL of trades closed that day
    trades: int
    wins: int
    steps: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class RunningMetrics:
    def __init__(self, starting_balance: float) -> None:
        self.starting_balance = starting_balance
        self.trades = 0
        self.wins = 0
        self.gross_profit = 0.0
        self.gross_loss = 0.0
        self.net_pnl = 0.0
        self.steps = 0
        self.steps_in_position = 0
        self.equity = starting_balance
        self.peak = starting_balance
        self.max_drawdown = 0.0
        # Closed days' returns: count, mean, sum of squared deviations, sum of squared losses.
        self.days = 0
        self.mean = 0.0
        self.m2 = 0.0
        self.downside = 0.0
        self.day: int | None = None
        self.day_start_equity = starting_balance
        self.day_trades = 0
        self.day_wins = 0
        self.day_net_pnl = 0.0
        self.day_steps = 0

    # ------------------------------------------------------------------ updates
    def record_trade(self, net_pnl: float) -> None:
        self.trades += 1
        self.day_trades += 1
        self.net_pnl += net_pnl
        self.day_net_pnl += net_pnl
        if net_pnl > 0:
            self.wins += 1
            self.day_wins += 1
            self.gross_profit += net_pnl
        elif net_pnl < 0:
            self.gross_loss -= net_pnl

    def record_step(self, close_time: int, equity: float, in_position: bool) -> DayClosed | None:
        """One marked step; returns the previous day's record when this step starts a new day."""
        closed = None
        day = market_day(close_time)
        if self.day is not None and day != self.day:
            closed = self._close_day()
        if self.day != day:
            self.day = day
        self.steps += 1
        self.day_steps += 1
        if in_position:
            self.steps_in_position += 1
        self.equity = equity
        if equity > self.peak:
            self.peak = equity
        elif self.peak > 0:
            self.max_drawdown = max(self.max_drawdown, (self.peak - equity) / self.peak)
        return closed

    def _close_day(self) -> DayClosed:
        assert self.day is not None
        r = self._day_return()
        self.days += 1
        delta = r - self.mean
        self.mean += delta / self.days
        self.m2 += delta * (r - self.mean)
        self.downside += min(r, 0.0) ** 2
        record = DayClosed(day_label(self.day), self.day_start_equity, self.equity, r, self.day_net_pnl,
                           self.day_trades, self.day_wins, self.day_steps)
        self.day_start_equity = self.equity
        self.day_trades = self.day_wins = self.day_steps = 0
        self.day_net_pnl = 0.0
        return record

    def _day_return(self) -> float:
        return self.equity / self.day_start_equity - 1 if self.day_start_equity > 0 else 0.0

    # ------------------------------------------------------------------ figures
    def snapshot(self) -> dict[str, float | int | None]:
        """The figures of ``compute_metrics`` so far (the current day counts as a day, as there)."""
        n, mean, m2, downside = self.days, self.mean, self.m2, self.downside
        if self.day is not None:
            r = self._day_return()
            n += 1
            delta = r - mean
            mean += delta / n
            m2 += delta * (r - mean)
            downside += min(r, 0.0) ** 2
        sd = math.sqrt(m2 / (n - 1)) if n > 1 else 0.0
        down = math.sqrt(downside / n) if n else 0.0
        return {
            "starting_balance": self.starting_balance,
            "final_equity": self.equity,
            "total_return": self.equity / self.starting_balance - 1,
            "trades": self.trades,
            "wins": self.wins,
            "win_rate": self.wins / self.trades if self.trades else None,
            "profit_factor": self.gross_profit / self.gross_loss if self.gross_loss > 0 else None,
            "sharpe": mean / sd * _SQRT_365 if sd > 0 else None,
            "sortino": mean / down * _SQRT_365 if down > 0 else None,
            "max_drawdown": self.max_drawdown,
            "exposure": self.steps_in_position / self.steps if self.steps else 0.0,
            "average_trade": self.net_pnl / self.trades if self.trades else None,
            "days": n,
        }

    # ------------------------------------------------------------------ state
    def to_state(self) -> dict[str, Any]:
        return dict(vars(self))

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> RunningMetrics:
        metrics = cls(state["starting_balance"])
        unknown = set(state) - set(vars(metrics))
        if unknown:
            raise ValueError(f"unknown running-metrics fields {sorted(unknown)}")
        vars(metrics).update(state)
        return metrics
