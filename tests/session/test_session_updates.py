"""Updates of a trading session: validators reject bad input with a reason and change nothing;
manual orders, cancels and closes act on the Engine and are committed; stop blocks entries but
keeps the subscription; search attributes follow the state."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest
from temporalio.client import WorkflowUpdateFailedError
from temporalio.worker import Replayer

from core.contracts import (
    SA_STATE,
    SA_SYMBOLS,
    SA_USER,
    SIGNAL_CANDLE_CLOSED,
    CancelOrderInput,
    CloseTradeInput,
    ManualOrderInput,
    StartSessionInput,
    UpdateSettingsInput,
    session_workflow_id,
)
from core.datafiles import load_candles
from trading.analysis import AnalysisSettings, warmup_candles
from workflows.trading_session import TradingSessionWorkflow

from .conftest import ANALYSIS, CANDLES, closed, feed, new_user, wait_processed

# No signal can trade before the warm-up: the session's positions here are the test's own.
ENGINE = {"slippage_bps": 1.0}


async def rejected(call) -> str:
    with pytest.raises(WorkflowUpdateFailedError) as info:
        await call
    return str(info.value.cause)


async def test_validators_reject_bad_input_and_manual_trading_commits(rig):
    candles = load_candles(CANDLES / "ETHBTC-5m-2018-01.csv.gz")
    fed = candles[:20]  # well inside the warm-up: no signal trades
    assert len(fed) < warmup_candles(AnalysisSettings.from_dict(ANALYSIS))
    await rig.store(fed, "5m")
    user = new_user()
    async with rig.worker():
        handle, _ = await rig.start(user, StartSessionInput("test", ("ETHBTC",), "5m", ENGINE, ANALYSIS))
        await feed(handle, fed, "5m")
        await wait_processed(handle, "ETHBTC", "5m", fed[-1].open_time)
        before = await handle.query(TradingSessionWorkflow.snapshot)

        def order(**changes) -> ManualOrderInput:
            base = {"symbol": "ETHBTC", "side": "long", "order_type": "market", "quantity": 1.0}
            return ManualOrderInput(**{**base, **changes})

        too_much = 200_000 / fed[-1].close  # 20,000 margin at 10x against a 10,000 balance
        reasons = [
            await rejected(handle.execute_update(TradingSessionWorkflow.update_settings,
                                                 UpdateSettingsInput(engine_settings={"leverage": 0}))),
            await rejected(handle.execute_update(TradingSessionWorkflow.update_settings,
                                                 UpdateSettingsInput(analysis_settings={"min_agree": 9}))),
            await rejected(handle.execute_update(TradingSessionWorkflow.update_settings,
                                                 UpdateSettingsInput(engine_settings={"taker_fee": math.nan}))),
            await rejected(handle.execute_update(TradingSessionWorkflow.close_trade, CloseTradeInput(999))),
            await rejected(handle.execute_update(TradingSessionWorkflow.cancel_order, CancelOrderInput(7))),
            await rejected(handle.execute_update(TradingSessionWorkflow.place_order, order(quantity=0.0))),
            await rejected(handle.execute_update(TradingSessionWorkflow.place_order, order(quantity=-1.0))),
            await rejected(handle.execute_update(TradingSessionWorkflow.place_order, order(quantity=math.nan))),
            await rejected(handle.execute_update(TradingSessionWorkflow.place_order, order(quantity=too_much))),
            await rejected(handle.execute_update(TradingSessionWorkflow.place_order, order(symbol="BTCUSDT"))),
            await rejected(handle.execute_update(TradingSessionWorkflow.place_order,
                                                 order(order_type="limit", limit_price=math.inf))),
            await rejected(handle.execute_update(TradingSessionWorkflow.start,
                                                 StartSessionInput("test", ("ETHBTC",), "5m"))),
        ]
        expected = ["Leverage", "Strategies that must agree", "Taker fee", "no open trade 999", "no pending order 7",
                    "quantity", "quantity", "quantity", "insufficient", "not one of this session's symbols",
                    "limit_price", "running already"]
        for reason, word in zip(reasons, expected, strict=True):
            assert word in reason, (word, reason)
        assert await handle.query(TradingSessionWorkflow.snapshot) == before, "a rejected update changed state"

        # A resting limit order, then its cancel.
        price = fed[-1].close
        placed = await handle.execute_update(TradingSessionWorkflow.place_order,
                                             order(order_type="limit", limit_price=price * 0.5, quantity=2.0))
        assert placed.order is not None and not placed.fills
        assert len(await handle.query(TradingSessionWorkflow.pending_orders)) == 1
        cancelled = await handle.execute_update(TradingSessionWorkflow.cancel_order,
                                                CancelOrderInput(placed.order["id"]))
        assert cancelled["id"] == placed.order["id"]
        assert await handle.query(TradingSessionWorkflow.pending_orders) == []

        # A market order fills at the latest price ± slippage; closing it is a second fill.
        filled = await handle.execute_update(TradingSessionWorkflow.place_order, order(quantity=3.0))
        assert filled.order is None and len(filled.fills) == 1
        assert filled.fills[0]["price"] == pytest.approx(price * 1.0001)
        trades = await handle.query(TradingSessionWorkflow.open_trades)
        assert [t["quantity"] for t in trades] == [3.0]
        trade_id = trades[0]["trade_id"]
        exited = await handle.execute_update(TradingSessionWorkflow.close_trade, CloseTradeInput(trade_id))
        assert exited["close_reason"] == "manual" and exited["exit_price"] == pytest.approx(price * 0.9999)
        assert "no open trade" in await rejected(
            handle.execute_update(TradingSessionWorkflow.close_trade, CloseTradeInput(trade_id)))
        rows = await rig.db.paper_trading_trades.find({"session_id": session_workflow_id(user)}).to_list()
        assert [(r["trade_id"], r["status"], r["trade"]["net_pnl"]) for r in rows] == [
            (trade_id, "closed", exited["net_pnl"])]

        # Stop blocks entries but keeps the subscription (exits still need candles).
        stopped = await handle.execute_update(TradingSessionWorkflow.stop)
        assert stopped.status == "stopped" and not stopped.entries_enabled
        assert "not running" in await rejected(handle.execute_update(TradingSessionWorkflow.stop))
        subs = await rig.db.feed_subscriptions.count_documents({"workflow_id": session_workflow_id(user)})
        assert subs == 1
        # Settings change while stopped; the account stays.
        updated = await handle.execute_update(TradingSessionWorkflow.update_settings,
                                              UpdateSettingsInput(engine_settings={"leverage": 5}))
        assert updated.status.equity == stopped.equity
        after = await handle.query(TradingSessionWorkflow.snapshot)
        assert after.engine["settings"]["leverage"] == 5 and not after.engine["entries_enabled"]
        record = await rig.db.paper_trading_settings.find_one({"session_id": session_workflow_id(user)})
        assert record["status"] == "stopped" and record["engine_settings"]["leverage"] == 5
        assert record["symbols"] == ["ETHBTC"] and record["analysis_settings"]["min_agree"] == 2

        # Analysis on demand never trades; during the warm-up it has no signal.
        analysed = await handle.execute_update(TradingSessionWorkflow.analyze_now)
        assert list(analysed) == ["ETHBTC@5m"] and analysed["ETHBTC@5m"].signal is None
        assert await handle.query(TradingSessionWorkflow.snapshot) == after

        # Bad market data is refused and never traded on; a stream not followed is ignored.
        bad = closed(candles[20], "5m")
        await handle.signal(SIGNAL_CANDLE_CLOSED, replace(bad, close=math.nan))
        await handle.signal(SIGNAL_CANDLE_CLOSED, replace(bad, symbol="BTCUSDT"))
        await rig.store(candles[20:22], "5m")
        await handle.signal(SIGNAL_CANDLE_CLOSED, closed(candles[21], "5m"))
        status = await wait_processed(handle, "ETHBTC", "5m", candles[21].open_time)
        assert (status.candles_rejected, status.candles_ignored, status.gap_candles_filled) == (1, 1, 1)
        described = await handle.describe()
        attributes = described.typed_search_attributes
        assert attributes.get(SA_USER) == user
        assert attributes.get(SA_STATE) == "stopped"
        assert attributes.get(SA_SYMBOLS) == ["ETHBTC"]
        await handle.terminate("test over")
    # Every decision replays deterministically (updates, a manual order, a cancel, a close).
    await Replayer(workflows=[TradingSessionWorkflow]).replay_workflow(await handle.fetch_history())
