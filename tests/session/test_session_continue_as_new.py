"""Continue-as-new carries a session's Engine and bookkeeping, and instead of the candles it received
but did not trade yet, a cursor (the next run reads them back from market_data): on a server that
suggests it every 200 history events, a session still trades exactly as the backtest."""

from __future__ import annotations

import json

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.worker import Replayer

from core.contracts import SessionState, StartSessionInput, session_workflow_id
from trading.engine import Engine
from workflows.trading_session import TradingSessionWorkflow

from .conftest import ANALYSIS, SessionRig, feed, new_user, session_backtest, wait_processed

TRADED = 300
ENGINE = {"slippage_bps": 1.0, "take_profit_pct": 1.5, "stop_loss_pct": 1.0, "fill_price": "next_open"}


async def carried_states(rig: SessionRig, workflow_id: str, first_run_id: str) -> list[SessionState]:
    """The state each run handed to the next, following the continue-as-new chain; every run's
    history replays without a non-determinism error."""
    states: list[SessionState] = []
    run_id: str | None = first_run_id
    replayer = Replayer(workflows=[TradingSessionWorkflow])
    while run_id:
        history = await rig.client.get_workflow_handle(workflow_id, run_id=run_id).fetch_history()
        await replayer.replay_workflow(history)
        last = history.events[-1]
        run_id = None
        if last.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW:
            attributes = last.workflow_execution_continued_as_new_event_attributes
            [state] = await rig.client.data_converter.decode(attributes.input.payloads, [SessionState])
            states.append(state)
            run_id = attributes.new_execution_run_id
    return states


async def test_continue_as_new_carries_state_and_a_cursor_of_the_backlog(eager_can_client, mongo_client, db_name):
    from activities.db import ensure_schema

    db = mongo_client[db_name]
    await ensure_schema(db)
    rig = SessionRig(eager_can_client, db, f"can-{db_name}-")
    data, traded = await rig.store_warm_slice("ETHBTC-5m-2018-01.csv.gz", TRADED)
    user = new_user()
    async with rig.worker():
        handle, _ = await rig.start(user, StartSessionInput("test", ("ETHBTC",), "5m", ENGINE, ANALYSIS))
        first_run = (await handle.describe()).run_id
        latest = rig.client.get_workflow_handle(session_workflow_id(user))  # whichever run is current
        await feed(latest, traded, "5m")  # all at once: a backlog waits across runs
        status = await wait_processed(latest, "ETHBTC", "5m", traded[-1].open_time)
        portfolio = await latest.query(TradingSessionWorkflow.portfolio)

    states = await carried_states(rig, session_workflow_id(user), first_run)
    assert len(states) >= 2, f"only {len(states)} continue-as-new"
    assert not any(s.queue for s in states), "a run handed candles on instead of a cursor"
    backlogs = [s for s in states if any(through > (s.last_open_time or {}).get(key, 0)
                                         for key, through in (s.received_through or {}).items())]
    assert backlogs, "no run handed a backlog on"
    assert all(s.status == "running" and s.engine is not None for s in states)
    assert status.candles_processed == TRADED and status.duplicates_dropped == 0

    backtest = session_backtest(data, status.analysis_anchor["ETHBTC@5m"], traded[0].open_time, ENGINE, ANALYSIS)
    reasons = {t.close_reason.value for t in backtest.trades}
    assert {"stop_loss", "take_profit"} <= reasons, reasons
    rows = await db.paper_trading_trades.find({"session_id": session_workflow_id(user)}).sort("trade_id", 1).to_list()
    session_trades = [r["trade"] for r in rows if r["status"] == "closed"]
    assert json.dumps(session_trades, sort_keys=True) == json.dumps([t.to_dict() for t in backtest.trades],
                                                                    sort_keys=True)
    assert status.equity == backtest.equity[-1]
    metrics = status.metrics
    assert status.generation == 0 and metrics is not None
    assert portfolio == Engine.from_state(backtest.final_state).account().to_dict()
    # Running metrics carried across every continue-as-new equal the backtest's, computed whole.
    for key in ("final_equity", "total_return", "trades", "win_rate", "profit_factor", "sharpe", "sortino",
                "max_drawdown", "exposure", "average_trade", "days"):
        assert metrics[key] == pytest.approx(backtest.metrics[key], rel=1e-9, abs=1e-12), key
    # One performance_metrics row per finished UTC day of market time (the last day is still open).
    days = await db.performance_metrics.find({"session_id": session_workflow_id(user)}).sort("date", 1).to_list()
    assert len(days) == metrics["days"] - 1 >= 1
    assert all(a["end_equity"] == b["start_equity"] for a, b in zip(days, days[1:], strict=False))
    assert sum(d["trades"] for d in days) <= len(backtest.trades)
    account = await db.paper_trading_accounts.find_one({"session_id": session_workflow_id(user)})
    assert account["metrics"] == metrics and account["win_rate"] == metrics["win_rate"]
    assert account["total_trades"] == len(backtest.trades) and account["time"] == status.market_time
