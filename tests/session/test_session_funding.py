"""A futures session pays the exchange's real funding, 8 hours at a time, exactly as the backtest
given the same funding series: XRPUSDT perpetual candles and funding rates replayed by the sim
exchange, traded with fills at the next open."""

from __future__ import annotations

import json

from activities.binance.rest import BinanceRestClient
from core.contracts import StartSessionInput, session_workflow_id
from trading.analysis import AnalysisSettings, compute_signal_series, warmup_candles
from trading.backtest import run_backtest
from trading.funding import FUNDING_INTERVAL_MS
from trading.settings import EngineSettings
from workflows.trading_session import TradingSessionWorkflow

from .conftest import ANALYSIS, feed, new_user, wait_processed

SYMBOL = "XRPUSDT"
ENGINE = {"fill_price": "next_open", "funding_mode": "series", "funding_rate": 0.0001, "leverage": 5,
          "slippage_bps": 1.0, "stop_loss_pct": 1.5, "take_profit_pct": 3.0}
TRADED = 600  # the last ~2 days of the file, inside the funding series


async def test_a_futures_session_pays_the_exchanges_funding_like_the_backtest(rig, start_sim):
    # Every 5m candle closed at the start: the sim publishes funding rates up to its market time.
    sim = await start_sim(symbols=(SYMBOL,), max_candles_per_series=None, start_offset_candles=1998)
    async with BinanceRestClient(sim.rest_url, futures_base_url=sim.rest_url) as exchange:
        candles = await exchange.klines(SYMBOL, "5m", start_ms=0, market="usdm")
        funding = [(r.funding_time, r.rate) for r in await exchange.funding_rates(SYMBOL, start_ms=0)]
    warm = warmup_candles(AnalysisSettings.from_dict(ANALYSIS))
    data = candles[-(warm + TRADED):]
    traded = data[warm:]
    # Every funding instant the traded candles cross has its published rate (the sim publishes up to now).
    assert len(funding) > 5 and funding[0][0] < traded[0].open_time < traded[-1].open_time \
        < funding[-1][0] + FUNDING_INTERVAL_MS
    await rig.store(data, "5m")
    user = new_user()
    async with rig.worker(exchange_url=sim.rest_url):
        handle, _ = await rig.start(user, StartSessionInput("test", (SYMBOL,), "5m", ENGINE, ANALYSIS))
        await feed(handle, traded, "5m")
        status = await wait_processed(handle, SYMBOL, "5m", traded[-1].open_time)
        portfolio = await handle.query(TradingSessionWorkflow.portfolio)
    assert status.degraded is None, status.degraded

    anchor = status.analysis_anchor[f"{SYMBOL}@5m"]
    series = [c for c in data if c.open_time >= anchor]
    signals = compute_signal_series(series, AnalysisSettings.from_dict(ANALYSIS))
    settings = EngineSettings.from_dict(ENGINE)
    backtest = run_backtest(series, signals, settings, trade_from=traded[0].open_time,
                            funding_series={SYMBOL: funding})
    rows = await rig.db.paper_trading_trades.find(
        {"session_id": session_workflow_id(user), "status": "closed"}).sort("trade_id", 1).to_list()
    assert len(backtest.trades) >= 3, "the slice must trade to prove anything"
    assert json.dumps([r["trade"] for r in rows], sort_keys=True) == json.dumps(
        [t.to_dict() for t in backtest.trades], sort_keys=True)
    assert status.equity == backtest.equity[-1]
    assert portfolio["funding_paid"] == backtest.final_state["funding_paid"] != 0.0
    # The series was used, not the constant rate: with the constant, funding comes out differently.
    constant = run_backtest(series, signals, settings, trade_from=traded[0].open_time)
    assert constant.final_state["funding_paid"] != backtest.final_state["funding_paid"]
