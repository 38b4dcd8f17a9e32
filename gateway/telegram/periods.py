"""Profit per day, week or month (freqtrade's /daily, /weekly, /monthly) from the session's equity
history: each period's profit is the equity at its end less the equity at the end of the one before
(the starting balance before the first point), so fees, funding and open positions count as they did.
Closed trades are counted by exit time. Periods run on market time, in UTC."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

Period = Literal["day", "week", "month"]


@dataclass(frozen=True)
class PeriodProfit:
    start: datetime
    profit: float
    profit_pct: float | None  # of the equity it started with
    trades: int
    end_equity: float


def period_start(moment: datetime, period: Period) -> datetime:
    day = moment.replace(hour=0, minute=0, second=0, microsecond=0)
    if period == "day":
        return day
    if period == "week":
        return day - timedelta(days=day.weekday())  # Monday, as freqtrade's /weekly
    return day.replace(day=1)


def previous_start(start: datetime, period: Period) -> datetime:
    if period == "day":
        return start - timedelta(days=1)
    if period == "week":
        return start - timedelta(days=7)
    return (start - timedelta(days=1)).replace(day=1)


def label(start: datetime, period: Period) -> str:
    return start.strftime("%Y-%m") if period == "month" else start.strftime("%Y-%m-%d")


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def profits(points: Sequence[dict[str, Any]], exit_times: Sequence[int], starting_balance: float, now_ms: int,
            period: Period, count: int) -> list[PeriodProfit]:
    """The last ``count`` periods up to the one holding ``now_ms``, newest first. ``points``: equity
    history (``time``, ``equity``), oldest first."""
    ordered = sorted(points, key=lambda p: p["time"])
    starts = [period_start(datetime.fromtimestamp(now_ms / 1000, UTC), period)]
    while len(starts) < count:
        starts.append(previous_start(starts[-1], period))
    found: list[PeriodProfit] = []
    for start in starts:
        begin = _ms(start)
        end = _ms(_next_start(start, period))
        opening = _equity_before(ordered, begin, starting_balance)
        closing = _equity_before(ordered, end, starting_balance)
        profit = closing - opening
        found.append(PeriodProfit(start=start, profit=profit, profit_pct=profit / opening * 100 if opening else None,
                                  trades=sum(1 for t in exit_times if begin <= t < end), end_equity=closing))
    return found


def _next_start(start: datetime, period: Period) -> datetime:
    if period == "day":
        return start + timedelta(days=1)
    if period == "week":
        return start + timedelta(days=7)
    return (start + timedelta(days=32)).replace(day=1)


def _equity_before(points: Sequence[dict[str, Any]], moment_ms: int, starting_balance: float) -> float:
    """The equity of the last point before ``moment_ms`` (the starting balance before any)."""
    equity = starting_balance
    for point in points:
        if point["time"] >= moment_ms:
            break
        equity = float(point["equity"])
    return equity
