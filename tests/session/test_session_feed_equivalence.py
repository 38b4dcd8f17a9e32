"""Through the real feed: a paper session subscribed before the sim's replay starts, fed every
closed candle of a real slice by the market feed at speed `max`, trades exactly as the backtest
warming up from its analysis anchor and trading from its first candle: byte-identical trade JSON
and equal final equity, on two real data sets."""

from __future__ import annotations

import pytest

from activities.events import TRADE_EXECUTED
from activities.market_store import read_candles
from core.contracts import StartSessionInput, session_workflow_id
from sim.exchange.series import series_checksum
from tests.conftest import running_all
from worker.main import build_workers

from .conftest import ANALYSIS, new_user
from .feedrig import (
    INTERVAL,
    FeedSlice,
    analysis_calls,
    backtest_for,
    canonical,
    drain_and_stop_feed,
    expected_series,
    feed_settings,
    session_outcome,
    start_feed,
)

ENGINE = {"slippage_bps": 1.0, "take_profit_pct": 1.5, "stop_loss_pct": 1.0, "fill_price": "next_open"}
# Each symbol trades in an account of its quote currency: ETHBTC in a BTC spot account.
ACCOUNTS = {"BTCUSDT": ENGINE, "ETHBTC": {**ENGINE, "market": "spot", "account_currency": "BTC", "leverage": 1}}
SLICES = [
    FeedSlice("BTCUSDT-5m-2023-01.csv.gz", served=1000, closed_at_start=200),
    FeedSlice("ETHBTC-5m-2018-01.csv.gz", served=1000, closed_at_start=200),
]


@pytest.mark.parametrize("feed_slice", SLICES, ids=lambda s: s.symbol)
async def test_session_fed_by_the_sim_equals_the_backtest(feed_slice, rig, start_sim, settings):
    sim = await start_sim(**feed_slice.sim_options())
    series = await expected_series(sim, feed_slice)
    s = feed_settings(settings.model_copy(update={"mongo_database": rig.db.name}), sim, feed_slice, rig.queue_prefix)
    user = new_user()
    workers = build_workers(rig.client, s, rig.db, identity=f"feed-eq-{rig.queue_prefix}")
    async with running_all(workers):
        handle, status = await rig.start(user, StartSessionInput(
            s.market_source, (feed_slice.symbol,), INTERVAL, ACCOUNTS[feed_slice.symbol], ANALYSIS))
        assert status.status == "running"
        # Subscribed first, so the session sees the feed's very first delivery.
        feed = await start_feed(rig.client, s)
        status = await drain_and_stop_feed(handle, feed, series, within_s=400)

    # The candles compared below are the sim's series computed from the file; the feed stored exactly those.
    stored = (await read_candles(rig.db, feed_slice.symbol, INTERVAL, limit=10_000, newest=False))[:len(series) - 1]
    assert series_checksum(stored) == series_checksum(series[:-1])

    outcome = await session_outcome(rig.db, session_workflow_id(user))
    backtest, traded = backtest_for(series, status, outcome, ACCOUNTS[feed_slice.symbol], ANALYSIS)
    # The feed delivers from the newest candle of its backfill: the session trades the replay.
    assert traded[0].open_time >= series[feed_slice.closed_at_start - 1].open_time
    assert status.candles_processed == len(traded) == len(outcome.history_times)
    assert status.gap_candles_filled == 0 and status.candles_rejected == 0
    print(f"{feed_slice.symbol}: {len(traded)} candles traded, {len(backtest.trades)} trades closed")
    assert len(backtest.trades) >= 3, "the slice must trade to prove anything"
    assert canonical(outcome.closed_trades) == canonical([t.to_dict() for t in backtest.trades])
    assert outcome.open_trade_ids == [p["trade_id"] for p in backtest.final_state["positions"]]
    assert status.equity == backtest.equity[-1]
    events = await rig.db.events.count_documents({"type": TRADE_EXECUTED, "user_id": user})
    assert events == len(outcome.rows) + len(outcome.closed_trades)
    # The feed computed each candle's analysis and sent it along. The session asks for one itself
    # only for a candle it received but had not traded at a continue-as-new: the next run reads those
    # back from market_data, without the analysis (a few per handover, when any).
    asked, sent = await analysis_calls(rig.client, session_workflow_id(user))
    assert sent == len(traded) and asked <= len(traded) // 50, (asked, sent)
