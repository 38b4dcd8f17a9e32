"""RunningMetrics (O(1) state, one step at a time) gives the figures of compute_metrics on a whole run."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from core.datafiles import load_candles
from trading.backtest import BacktestResult, run_backtest
from trading.metrics import daily_returns
from trading.running_metrics import DayClosed, RunningMetrics, day_label, market_day
from trading.settings import EngineSettings
from trading.simple_signals import sma_cross

REPO = Path(__file__).resolve().parents[2]
FILES = ["BTCUSDT-5m-2023-01.csv.gz", "BTCUSD-1h-2017-2019-coinbase.csv.gz"]


def replay(result: BacktestResult) -> tuple[RunningMetrics, list[DayClosed]]:
    """Feed a finished run step by step, trades at the step they closed in."""
    metrics = RunningMetrics(result.settings.starting_balance)
    by_exit: dict[int, list[float]] = {}
    for trade in result.trades:
        by_exit.setdefault(trade.exit_time, []).append(trade.net_pnl)
    days: list[DayClosed] = []
    in_position = position_steps(result)
    for time, equity, holding in zip(result.close_times, result.equity, in_position, strict=True):
        closed = metrics.record_step(time, equity, holding)
        for pnl in by_exit.pop(time, ()):
            metrics.record_trade(pnl)
        if closed:
            days.append(closed)
    assert not by_exit, "a trade closed at a time that is not a step"
    return metrics, days


def position_steps(result: BacktestResult) -> list[bool]:
    """Whether a position was open at each step's close, from the trades' entry/exit times."""
    spans = [(t.entry_time, t.exit_time) for t in result.trades]
    open_at_end = bool(result.final_state["positions"])
    held = []
    for time in result.close_times:
        holding = any(entry <= time < exit_ for entry, exit_ in spans)
        held.append(holding)
    if open_at_end:
        last_entry = max(p["entry_time"] for p in result.final_state["positions"])
        held = [h or t >= last_entry for h, t in zip(held, result.close_times, strict=True)]
    return held


@pytest.mark.parametrize("name", FILES)
def test_running_metrics_equal_compute_metrics(name: str) -> None:
    candles = load_candles(REPO / "data" / "candles" / name)
    result = run_backtest(candles, sma_cross(candles), EngineSettings(stop_loss_pct=2.0, take_profit_pct=4.0))
    assert len(result.trades) >= 20
    metrics, days = replay(result)
    got, want = metrics.snapshot(), result.metrics
    for key in ("final_equity", "total_return", "trades", "win_rate", "profit_factor", "sharpe", "sortino",
                "max_drawdown", "average_trade", "days"):
        assert got[key] == pytest.approx(want[key], rel=1e-9, abs=1e-12), key
    assert got["wins"] == sum(1 for t in result.trades if t.net_pnl > 0)
    # The closed days are every day but the last, with the same returns as daily_returns.
    expected = daily_returns(result.close_times, result.equity, result.settings.starting_balance)
    assert [d.daily_return for d in days] == pytest.approx(expected[:-1], rel=1e-12, abs=1e-15)
    assert sum(d.trades for d in days) + metrics.day_trades == len(result.trades)
    assert days[0].date == day_label(market_day(result.close_times[0]))
    assert all(a.end_equity == b.start_equity for a, b in zip(days, days[1:], strict=False))


def test_running_metrics_state_round_trip_and_exposure() -> None:
    m = RunningMetrics(1000.0)
    assert m.snapshot()["win_rate"] is None and m.snapshot()["sharpe"] is None
    day = 86_400_000
    assert m.record_step(day, 1010.0, True) is None  # a close at midnight ends the day before
    m.record_trade(10.0)
    closed = m.record_step(day + 300_000, 990.0, False)
    assert closed is not None and closed.daily_return == pytest.approx(0.01)
    assert closed == DayClosed("1970-01-01", 1000.0, 1010.0, closed.daily_return, 10.0, 1, 1, 1)
    m.record_trade(-20.0)
    copy = RunningMetrics.from_state(m.to_state())
    assert copy.snapshot() == m.snapshot()
    snap = m.snapshot()
    assert snap["exposure"] == 0.5 and snap["win_rate"] == 0.5 and snap["profit_factor"] == 0.5
    assert snap["max_drawdown"] == pytest.approx(20 / 1010)
    assert not math.isnan(snap["total_return"])
    with pytest.raises(ValueError, match="unknown running-metrics fields"):
        RunningMetrics.from_state({**m.to_state(), "bogus": 1})
