"""Equivalence under the one fill rule: on a real data slice replayed by the sim at speed `max` in
lockstep, a backtest, a paper session and a real session on the sim make the same trades (side,
entry and exit candle, quantity, prices) and end with the same equity within fee rounding. The real
session's trades are read from the sim's own order log, the ground truth. BTCUSDT-5m trades spot
candles; XRPUSDT-5m trades its contract candles (the feed follows USDⓈ-M klines) and pays its real
funding, on the exchange as in the models."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from core.contracts import session_workflow_id, stream_key
from sim.exchange.catalog import SeriesKind
from tests.session.feedrig import backtest_for, session_outcome, wait_drained
from tests.sim.conftest import sim_state
from worker.main import start_market_feed
from workflows.trading_session import TradingSessionWorkflow

from .conftest import Trader, sim_call
from .session_rig import INTERVAL, Pacer, every_worker, feed_overrides, sim_signed, wait_until
from .test_real_session import paper_start, real_status, request_and_approve

BACKFILL = 300
SERVED = 480
ENGINE = {"taker_fee": 0.0005, "maker_fee": 0.0002, "slippage_bps": 0.0, "stop_loss_pct": 1.0,
          "take_profit_pct": 1.5, "fill_price": "next_open", "starting_balance": 100_000.0, "funding_rate": 0.0,
          "leverage": 10}
ANALYSIS = {"min_agree": 2}


@dataclass(frozen=True)
class Slice:
    symbol: str
    kind: SeriesKind  # the sim's series the feed follows (spot, or USDⓈ-M contract candles)
    engine: dict[str, Any]
    start_offset: int = BACKFILL  # candles closed when the sim starts (the feed backfills BACKFILL of them)
    served: int = SERVED

    @property
    def feed_market(self) -> str:
        return "usdm" if self.kind is SeriesKind.FUTURES else "spot"


SLICES = [
    Slice("BTCUSDT", SeriesKind.SPOT, ENGINE),
    # Futures only, paying its real funding: candles 800..1000 cross two funding times (candles 864, 960).
    Slice("XRPUSDT", SeriesKind.FUTURES, {**ENGINE, "funding_mode": "series", "funding_rate": 0.0001}, 800, 1000),
]


@pytest.fixture(params=SLICES, ids=lambda s: s.symbol)
def data_slice(request) -> Slice:
    return request.param


@pytest.fixture
async def sim(start_sim, data_slice):
    return await start_sim(symbols=(data_slice.symbol,), speed="max", lockstep=True, lockstep_timeout_s=30,
                           tiling=False, max_candles_per_series=data_slice.served,
                           start_offset_candles=data_slice.start_offset,
                           weight_limit_per_minute=100_000, order_limit_per_10s=10_000)


@pytest.fixture
def real_settings(real_settings, sim, data_slice):
    return real_settings.model_copy(update={**feed_overrides(sim, data_slice.symbol, BACKFILL),
                                            "feed_market": data_slice.feed_market,
                                            "real_reconcile_every_s": 30.0, "exchange_weight_per_minute": 100_000,
                                            # Several runs: the model, positions and cursors cross continue-as-new.
                                            "real_session_run_events": 300})


@pytest.fixture
async def real_worker(real_settings, temporal_client, mongo_client):
    db = mongo_client[real_settings.mongo_database]
    async with every_worker(temporal_client, real_settings, db, "real-equivalence"):
        yield


def real_trades(log: dict[str, Any]) -> list[dict[str, Any]]:
    """Round trips from the sim's filled orders, in order: an opening fill, then the fill that closed it.
    The times are the exchange's fill instants: a MARKET order fills at an open, a stop or take profit
    when its candle closes; the Engine stamps its fills with the same instants."""
    fills = sorted((o for o in log["orders"] if o["status"] == "FILLED"), key=lambda o: (o["updateTime"], o["orderId"]))
    trades, entry = [], None
    for fill in fills:
        closing = fill["reduceOnly"] or fill["closePosition"]
        if not closing:
            assert entry is None, f"a second entry while open: {fill}"
            entry = fill
            continue
        assert entry is not None, f"a close without a position: {fill}"
        trades.append({"side": "long" if entry["side"] == "BUY" else "short", "quantity": float(entry["executedQty"]),
                       "entry_time": entry["updateTime"], "entry_price": float(entry["avgPrice"]),
                       "exit_time": fill["updateTime"], "exit_price": float(fill["avgPrice"]),
                       "exit_quantity": float(fill["executedQty"])})
        entry = None
    return trades


def rounded(trades: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: round(v, 8) if isinstance(v, float) else v for k, v in t.items()} for t in trades]


def engine_trades(trades: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{"side": getattr(t["side"], "value", t["side"]), "quantity": t["quantity"],
             "entry_time": t["entry_time"], "entry_price": t["entry_price"], "exit_time": t["exit_time"],
             "exit_price": t["exit_price"], "exit_quantity": t["quantity"]} for t in trades]


async def test_backtest_paper_and_real_make_the_same_trades(gateway, sign_up, real_settings, sim, temporal_client,
                                                           data_slice):
    symbol, engine = data_slice.symbol, data_slice.engine
    trader: Trader = await sign_up()
    await paper_start(gateway, trader, engine, ANALYSIS, symbol)
    await request_and_approve(gateway, trader, symbol=symbol)
    await wait_until(lambda: real_status(gateway, trader), lambda s: s["status"] == "RUNNING", 30)
    paper = temporal_client.get_workflow_handle_for(TradingSessionWorkflow.run, session_workflow_id(trader.user_id))
    key = stream_key(symbol, INTERVAL)

    async def paper_done(open_time: int) -> bool:
        status = await paper.query(TradingSessionWorkflow.status)
        return status.last_open_time.get(key, -1) >= open_time and status.queued == 0

    async def real_done(open_time: int) -> bool:
        status = await real_status(gateway, trader)
        return status["last_open_time"].get(symbol, -1) >= open_time and status["queued"] == 0

    # The candles the sim replays, from the sim itself (the exchange is the truth).
    served = sim.sim.catalog.klines[data_slice.kind][symbol][INTERVAL]
    series = served.candles(0, data_slice.served)
    funding = {symbol: sim.sim.catalog.funding[symbol]} if symbol in sim.sim.catalog.funding else None
    last = series[-2].open_time
    async with Pacer(sim, [paper_done, real_done]).running():
        await start_market_feed(temporal_client, real_settings)
        await wait_until(lambda: real_done(last), bool, 600)
        paper_status = await wait_drained(paper, symbol, last, 60)
    real = await real_status(gateway, trader)
    assert real["status"] == "RUNNING" and real["report"]["ok"], real
    runs = [r async for r in temporal_client.list_workflows(f"WorkflowId = '{real['workflow_id']}'")]
    assert len(runs) >= 3, f"the real session continued as new {len(runs) - 1} times"
    assert (await sim_state(sim))["lockstep_timeouts"] == 0

    outcome = await session_outcome(gateway.db, session_workflow_id(trader.user_id))
    # The backtest runs on the paper session's settings as started: the exchange's filters included.
    paper_settings = await paper.query(TradingSessionWorkflow.settings)
    backtest, _ = backtest_for(series, paper_status, outcome, paper_settings.engine_settings,
                               paper_settings.analysis_settings, funding)
    paper_trades = engine_trades(outcome.closed_trades)
    assert paper_trades == engine_trades([t.to_dict() for t in backtest.trades])
    log = await sim_call(sim, "GET", "/sim/orders")
    assert log["duplicates"] == 0
    from_exchange = real_trades(log)
    print(f"{len(paper_trades)} trades closed; paper equity {paper_status.equity}")
    assert len(paper_trades) >= 3, "the slice must trade to prove anything"
    assert rounded(from_exchange[:len(paper_trades)]) == rounded(paper_trades), (from_exchange, paper_trades)
    # Final equity within fee rounding: the exchange's wallet is the start plus every closed trade's net
    # profit, less the fee of a position still open.
    balance = await gateway.http.get("/api/real-trading/balance", headers=trader.headers)
    assert balance.status_code == 200, balance.text
    still_open = await paper.query(TradingSessionWorkflow.open_trades)
    modelled = engine["starting_balance"] + sum(t["net_pnl"] for t in outcome.closed_trades) \
        - sum(p["entry_fee"] for p in still_open)
    assert balance.json()["total_wallet_balance"] == pytest.approx(modelled, abs=0.01), (balance.json(), modelled)
    if funding:
        # Real funding was paid, and the exchange's funding payments are the model's.
        portfolio = await paper.query(TradingSessionWorkflow.portfolio)
        paid = await sim_signed(sim, trader.api_key, trader.api_secret, "GET", "/fapi/v1/income",
                                incomeType="FUNDING_FEE", limit=1000)
        print(f"funding: paper {portfolio['funding_paid']}, exchange {[e['income'] for e in paid]}")
        assert portfolio["funding_paid"] != 0 and paid, (portfolio["funding_paid"], paid)
        assert sum(float(e["income"]) for e in paid) == pytest.approx(-portfolio["funding_paid"], abs=0.01)
