"""A paper session fed real candles trades exactly as the backtest warming up from the same anchor
and trading from the session's first candle: byte-identical trade JSON, equal final equity and
account, whatever duplicates, late and missing signals the feed's at-least-once delivery brings.
"""

from __future__ import annotations

import json

import pytest

from activities.events import TRADE_EXECUTED
from core.contracts import StartSessionInput, session_workflow_id
from trading.analysis import AnalysisSettings, compute_indicator_frame, compute_signal_series
from trading.engine import Engine
from workflows.trading_session import TradingSessionWorkflow

from .conftest import ANALYSIS, feed, new_user, session_backtest, wait_processed

TRADED = 360
ENGINE = {"slippage_bps": 2.0, "fill_price": "next_open"}


def backtest_signals(data, anchor: int):
    series = [c for c in data if c.open_time >= anchor]
    return compute_signal_series(series, AnalysisSettings.from_dict(ANALYSIS)).signals()


def canonical(trades: list[dict]) -> str:
    return json.dumps(trades, sort_keys=True, separators=(",", ":"), allow_nan=False)


async def test_session_equals_backtest_through_duplicates_gaps_and_late_candles(rig):
    data, traded = await rig.store_warm_slice("BTCUSDT-5m-2023-01.csv.gz", TRADED)
    user = new_user()
    async with rig.worker():
        handle, status = await rig.start(user, StartSessionInput("test", ("BTCUSDT",), "5m", ENGINE, ANALYSIS))
        assert status.status == "running" and status.entries_enabled
        # At-least-once delivery: a redelivered candle, one missing (filled from market_data once
        # the next one is taken) that then arrives late, and a stale replay of the start.
        missing = traded[40]
        first = [c for c in traded[:40]] + [traded[20], traded[39]] + traded[41:200]
        await feed(handle, first, "5m")
        await wait_processed(handle, "BTCUSDT", "5m", traded[199].open_time)
        late = [missing] + traded[:5] + traded[200:]
        await feed(handle, late, "5m")
        deliveries = first + late
        status = await wait_processed(handle, "BTCUSDT", "5m", traded[-1].open_time)
        portfolio = await handle.query(TradingSessionWorkflow.portfolio)

    assert status.candles_processed == TRADED
    assert status.gap_candles_filled == 1
    assert status.duplicates_dropped == len(deliveries) - (TRADED - 1)
    anchor = status.analysis_anchor["BTCUSDT@5m"]
    assert anchor == data[0].open_time, "a new anchor lies one warm-up before the first candle"

    backtest = session_backtest(data, anchor, traded[0].open_time, ENGINE, ANALYSIS)
    assert len(backtest.trades) >= 5, "the slice must trade to prove anything"
    session_id = session_workflow_id(user)
    rows = await rig.db.paper_trading_trades.find({"session_id": session_id}).sort("trade_id", 1).to_list()
    closed_rows = [r["trade"] for r in rows if r["status"] == "closed"]
    assert canonical(closed_rows) == canonical([t.to_dict() for t in backtest.trades])
    still_open = [r["trade_id"] for r in rows if r["status"] == "open"]
    assert still_open == [p["trade_id"] for p in backtest.final_state["positions"]]
    assert status.equity == backtest.equity[-1]
    assert portfolio == Engine.from_state(backtest.final_state).account().to_dict()
    # A decision of the last candle waits for the next open in both.
    waiting = {symbol: side for symbol, (side, _) in backtest.final_state["pending_signals"].items()}
    assert (status.waiting_entries or {}) == waiting

    # Every trade keeps the analysis at entry and exit; analyses are stored once per candle.
    assert all(r["entry_analysis_key"] for r in rows)
    assert all(r["exit_analysis_key"] for r in rows if r["status"] == "closed")
    # The indicator state kept with them is the indicator frame of the series from the anchor.
    frame = compute_indicator_frame([c for c in data if c.open_time >= anchor], AnalysisSettings.from_dict(ANALYSIS))
    for row in rows:
        entry = row["entry_analysis"]
        assert entry["analysis_key"] == row["entry_analysis_key"] and entry["open_time"] < row["entry_time"]
        assert entry["direction"] in ("long", "short") and entry["verdicts"], entry
        snapshots = [entry]
        if row["status"] == "closed":
            assert row["exit_analysis"]["analysis_key"] == row["exit_analysis_key"]
            snapshots.append(row["exit_analysis"])
        for snap in snapshots:
            expected = frame.loc[snap["open_time"]]
            assert set(snap["indicators"]) == set(frame.columns) and snap["indicators"]["rsi"] is not None
            assert all(snap["indicators"][k] == pytest.approx(expected[k], rel=1e-12) for k in frame.columns), snap
    assert await rig.db.ai_analysis_results.count_documents({"symbol": "BTCUSDT"}) == TRADED
    events = await rig.db.events.count_documents({"type": TRADE_EXECUTED, "user_id": user})
    assert events == len(rows) + len(closed_rows)
    # Each long/short consensus the session traded on is published once as AISignalReceived.
    signals = await rig.db.events.find({"type": "AISignalReceived", "user_id": user}).to_list()
    directional = [s for s in backtest_signals(data, anchor) if s is not None and s.direction.value != "neutral"
                   and s.open_time >= traded[0].open_time]
    assert sorted(e["data"]["open_time"] for e in signals) == [s.open_time for s in directional]
    history = await rig.db.portfolio_history.count_documents({"session_id": session_id})
    assert history == TRADED
    account = await rig.db.paper_trading_accounts.find_one({"session_id": session_id})
    assert account["time"] == traded[-1].close_time and account["equity"] == backtest.equity[-1]


async def test_sessions_with_the_same_settings_share_one_analysis_per_candle(rig):
    data, traded = await rig.store_warm_slice("LTCBTC-5m-2018-01.csv.gz", 30)
    async with rig.worker():
        first, _ = await rig.start(new_user(), StartSessionInput("test", ("LTCBTC",), "5m", ENGINE, ANALYSIS))
        await feed(first, traded[:10], "5m")
        await wait_processed(first, "LTCBTC", "5m", traded[9].open_time)
        # A later session on the same settings joins the shared analysis at its anchor.
        second, _ = await rig.start(new_user(), StartSessionInput("test", ("LTCBTC",), "5m", ENGINE, ANALYSIS))
        await feed(second, traded[5:], "5m")
        await feed(first, traded[10:], "5m")
        one = await wait_processed(first, "LTCBTC", "5m", traded[-1].open_time)
        two = await wait_processed(second, "LTCBTC", "5m", traded[-1].open_time)
    assert one.analysis_anchor == two.analysis_anchor == {"LTCBTC@5m": data[0].open_time}
    assert await rig.db.ai_analysis_results.count_documents({"symbol": "LTCBTC"}) == len(traded)
