"""A session's life beyond one symbol: several symbols stepped in (open time, symbol) order behind a
barrier (equal to the portfolio backtest), a silent stream given up on after the barrier timeout,
symbol and signal-interval changes through the feed, the stopped-session order policy, and reset."""

from __future__ import annotations

import json

import pytest
from temporalio.client import WorkflowUpdateFailedError

from core.contracts import (
    ManualOrderInput,
    SignalIntervalInput,
    StartSessionInput,
    UpdateSettingsInput,
    UpdateSymbolsInput,
    session_workflow_id,
    stream_key,
)
from core.datafiles import load_candles
from trading.analysis import AnalysisSettings, compute_signal_series, warmup_candles
from trading.portfolio_backtest import run_portfolio_backtest
from trading.settings import EngineSettings
from workflows.trading_session import TradingSessionWorkflow

from .conftest import ANALYSIS, CANDLES, feed, new_user, wait_processed

ENGINE = {"slippage_bps": 1.0, "stop_loss_pct": 1.0, "take_profit_pct": 1.5}
# The alt/BTC set trades in a BTC spot account, filling signals at the next open.
BTC_ACCOUNT = {**ENGINE, "market": "spot", "account_currency": "BTC", "leverage": 1, "fill_price": "next_open"}
SYMBOLS = ("ETHBTC", "LTCBTC")
WARMUP = warmup_candles(AnalysisSettings.from_dict(ANALYSIS))


def real(symbol: str):
    return load_candles(CANDLES / f"{symbol}-5m-2018-01.csv.gz")


async def rejected(call) -> str:
    with pytest.raises(WorkflowUpdateFailedError) as info:
        await call
    return str(info.value.cause)


async def wait_both(handle, open_time: int):
    for symbol in SYMBOLS:
        status = await wait_processed(handle, symbol, "5m", open_time)
    return status


async def test_multi_symbol_session_equals_the_portfolio_backtest(rig):
    traded_count = 150
    data = {s: real(s)[: WARMUP + traded_count] for s in SYMBOLS}
    for series in data.values():
        await rig.store(series, "5m")
    user = new_user()
    async with rig.worker():
        handle, _ = await rig.start(user, StartSessionInput("test", SYMBOLS, "5m", BTC_ACCOUNT, ANALYSIS))
        # The worst order a feed could deliver: one stream whole, then the other (plus redeliveries).
        eth, ltc = (data[s][WARMUP:] for s in SYMBOLS)
        await feed(handle, eth + eth[:3], "5m")
        await feed(handle, ltc, "5m")
        status = await wait_both(handle, eth[-1].open_time)
    assert status.candles_processed == 2 * traded_count and status.duplicates_dropped == 3
    assert status.lagging == () and status.candles_rejected == 0

    signals, series = {}, {}
    for symbol in SYMBOLS:
        anchor = status.analysis_anchor[stream_key(symbol, "5m")]
        series[symbol] = [c for c in data[symbol] if c.open_time >= anchor]
        signals[symbol] = compute_signal_series(series[symbol], AnalysisSettings.from_dict(ANALYSIS)).signals()
    reference = run_portfolio_backtest(series, signals, EngineSettings.from_dict(BTC_ACCOUNT),
                                       trade_from=data["ETHBTC"][WARMUP].open_time)
    assert len(reference.trades) >= 3 and {t.symbol for t in reference.trades} == set(SYMBOLS)
    rows = await rig.db.paper_trading_trades.find(
        {"session_id": session_workflow_id(user), "status": "closed"}).sort("trade_id", 1).to_list()
    expected = sorted((t.to_dict() for t in reference.trades), key=lambda t: t["id"])
    assert json.dumps([r["trade"] for r in rows], sort_keys=True) == json.dumps(expected, sort_keys=True)
    assert status.equity == reference.equity[-1]


async def test_a_silent_stream_is_given_up_after_the_barrier_timeout_and_rejoins(rig):
    eth, ltc = real("ETHBTC"), real("LTCBTC")
    await rig.store(eth[:25], "5m")
    await rig.store(ltc[:20], "5m")  # LTCBTC falls silent after 20 candles: not even stored
    async with rig.worker():
        handle, _ = await rig.start(new_user(), StartSessionInput("test", SYMBOLS, "5m", ENGINE, ANALYSIS,
                                                                  barrier_timeout_s=2.0))
        await feed(handle, ltc[:20], "5m")
        await feed(handle, eth[:25], "5m")
        status = await wait_processed(handle, "ETHBTC", "5m", eth[24].open_time, within_s=60)
        assert status.lagging == ("LTCBTC",)
        assert status.last_open_time[stream_key("LTCBTC", "5m")] == ltc[19].open_time
        # The stream comes back: its next candles trade again and the barrier holds for it once more.
        await rig.store(ltc[20:27], "5m")
        await rig.store(eth[25:27], "5m")
        await feed(handle, ltc[25:27] + eth[25:27], "5m")
        status = await wait_both(handle, eth[26].open_time)
    assert status.lagging == ()
    # LTCBTC 20-24 were stored late and filled from market_data: 20-23 close before the market
    # clock (ETHBTC 24's close) and are refused; 24 closes with it and trades.
    assert status.gap_candles_filled == 5 and status.candles_rejected == 4


async def test_symbols_interval_stop_policy_and_reset(rig):
    eth, ltc = real("ETHBTC")[:20], real("LTCBTC")[:20]  # inside the warm-up: only manual trades
    await rig.store(eth, "5m")
    await rig.store(ltc, "5m")
    user = new_user()
    session_id = session_workflow_id(user)
    subscriptions = {"workflow_id": session_id}
    async with rig.worker():
        handle, _ = await rig.start(user, StartSessionInput("test", ("ETHBTC",), "5m", ENGINE, ANALYSIS))
        await feed(handle, eth, "5m")
        await wait_processed(handle, "ETHBTC", "5m", eth[-1].open_time)
        bought = await handle.execute_update(TradingSessionWorkflow.place_order,
                                             ManualOrderInput("ETHBTC", "long", "market", 2.0))
        resting = await handle.execute_update(TradingSessionWorkflow.place_order, ManualOrderInput(
            "ETHBTC", "long", "limit", 1.0, limit_price=eth[-1].close * 0.5))
        assert bought.fills and resting.order is not None

        # Symbols and interval: changes follow the feed; leaving a stream with a position is refused.
        reasons = [
            await rejected(handle.execute_update(TradingSessionWorkflow.update_symbols, UpdateSymbolsInput(
                ("LTCBTC",)))),
            await rejected(handle.execute_update(TradingSessionWorkflow.update_symbols, UpdateSymbolsInput(
                ("LTCBTC", "LTCBTC")))),
            await rejected(handle.execute_update(TradingSessionWorkflow.set_signal_interval,
                                                 SignalIntervalInput("7m"))),
            await rejected(handle.execute_update(TradingSessionWorkflow.set_signal_interval,
                                                 SignalIntervalInput("5m"))),
        ]
        for reason, word in zip(reasons, ["cannot stop following ['ETHBTC']", "distinct", "unknown interval",
                                          "already"], strict=True):
            assert word in reason, (word, reason)
        # Another timeframe keeps the position managed: the subscription moves, the position stays.
        hourly = await handle.execute_update(TradingSessionWorkflow.set_signal_interval, SignalIntervalInput("1h"))
        assert hourly.interval == "1h" and len(await handle.query(TradingSessionWorkflow.open_trades)) == 1
        assert [d["interval"] for d in await rig.db.feed_subscriptions.find(subscriptions).to_list()] == ["1h"]
        await handle.execute_update(TradingSessionWorkflow.set_signal_interval, SignalIntervalInput("5m"))
        both = await handle.execute_update(TradingSessionWorkflow.update_symbols, UpdateSymbolsInput(SYMBOLS))
        assert both.symbols == SYMBOLS
        assert sorted(d["symbol"] for d in await rig.db.feed_subscriptions.find(subscriptions).to_list()) == [
            "ETHBTC", "LTCBTC"]
        # Each subscription carries the analysis settings the feed computes for this session, and
        # follows a change of them (an engine-only change leaves them be).
        analysis = AnalysisSettings.from_dict(ANALYSIS).to_dict()
        assert [d["analysis_settings"] for d in await rig.db.feed_subscriptions.find(subscriptions).to_list()] == [
            analysis, analysis]
        await handle.execute_update(TradingSessionWorkflow.update_settings,
                                    UpdateSettingsInput(analysis_settings={"min_agree": 3}))
        changed = AnalysisSettings.from_dict({**ANALYSIS, "min_agree": 3}).to_dict()
        assert [d["analysis_settings"] for d in await rig.db.feed_subscriptions.find(subscriptions).to_list()] == [
            changed, changed]
        await feed(handle, ltc, "5m")
        await wait_both(handle, eth[-1].open_time)

        # Stopped: no new exposure, manual or not; reducing what is open is fine.
        await handle.execute_update(TradingSessionWorkflow.stop)
        assert "only reduce_only" in await rejected(handle.execute_update(
            TradingSessionWorkflow.place_order, ManualOrderInput("LTCBTC", "long", "market", 1.0)))
        reduced = await handle.execute_update(TradingSessionWorkflow.place_order, ManualOrderInput(
            "ETHBTC", "long", "market", 0.5, reduce_only=True))
        assert reduced.trades and reduced.trades[0]["quantity"] == 0.5

        # Reset: the resting order is cancelled first, the position closed, the feed left, a fresh account.
        before = await handle.query(TradingSessionWorkflow.status)
        reset = await handle.execute_update(TradingSessionWorkflow.reset)
        assert [o["id"] for o in reset.cancelled_orders] == [resting.order["id"]]
        assert [t["quantity"] for t in reset.closed_trades] == [1.5]
        assert reset.status.status == "new" and reset.status.generation == 1 and reset.status.symbols == ()
        assert reset.status.equity == 10_000.0 and reset.status.metrics["trades"] == 0
        assert await handle.query(TradingSessionWorkflow.open_trades) == []
        assert await handle.query(TradingSessionWorkflow.pending_orders) == []
        assert await rig.db.feed_subscriptions.count_documents(subscriptions) == 0
        account = await rig.db.paper_trading_accounts.find_one({"session_id": session_id})
        assert (account["generation"], account["cash"], account["total_trades"]) == (1, 10_000.0, 0)
        assert "not been started" in await rejected(handle.execute_update(
            TradingSessionWorkflow.set_signal_interval, SignalIntervalInput("1h")))

        # A new start (any source now) trades on; trade IDs go on from the old account's.
        restarted = await handle.execute_update(TradingSessionWorkflow.start,
                                                StartSessionInput("test", ("LTCBTC",), "5m"))
        assert restarted.status == "running" and restarted.market_time == before.market_time
        again = await handle.execute_update(TradingSessionWorkflow.place_order,
                                            ManualOrderInput("LTCBTC", "short", "market", 1.0))
        assert again.fills
        [position] = await handle.query(TradingSessionWorkflow.open_trades)
        await handle.terminate("test over")
    rows = await rig.db.paper_trading_trades.find({"session_id": session_id}).sort("trade_id", 1).to_list()
    assert [(r["trade_id"], r["generation"], r["status"]) for r in rows] == [
        (1, 0, "closed"), (position["trade_id"], 1, "open")]
    # The reduce-only part and the rest closed by the reset are both kept.
    assert [p["quantity"] for p in rows[0]["partial_closes"]] == [0.5] and rows[0]["trade"]["quantity"] == 1.5
    assert rows[0]["trade"]["net_pnl"] == reset.closed_trades[0]["net_pnl"]
    assert position["trade_id"] == 2
    # Every start, symbol, interval or settings change, stop and reset published one BotStatusUpdate, in order.
    statuses = await rig.db.events.find({"type": "BotStatusUpdate", "user_id": user}).sort("created_at", 1).to_list()
    assert [e["data"]["status"] for e in statuses] == [
        "running", "running", "running", "running", "running", "stopped", "new", "running"]
    assert [e["data"]["generation"] for e in statuses][-2:] == [1, 1]
