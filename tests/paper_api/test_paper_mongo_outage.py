"""MongoDB away for 30 s in the middle of a candle: a close and a stop sent through REST with a token
issued before the outage are accepted at once (the price comes from the exchange, the session's own
records wait in its outbox), they are written exactly once when MongoDB returns, and the session
resumes the candle by itself."""

from __future__ import annotations

import asyncio
import time
import uuid

import httpx
import pytest

from activities.market_store import store_candles
from core.contracts import SIGNAL_CANDLE_CLOSED, CandleClosed
from core.datafiles import load_candles
from trading.settings import EngineSettings
from workflows.trading_session import TradingSessionWorkflow

from ..conftest import trading_worker_running
from .conftest import CANDLES, PASSWORD

P = "/api/paper-trading"
SYMBOL = "BTCUSDT"
OUTAGE_S = 30.0
FED = 20
pytestmark = pytest.mark.timeout(300)


def as_signal(c) -> CandleClosed:
    return CandleClosed("sim", c.symbol, "5m", c.open_time, c.close_time, c.open, c.high, c.low, c.close, c.volume)


async def wait_for(check, within_s: float, what: str):
    deadline = time.monotonic() + within_s
    while True:
        found = await check()
        if found:
            return found
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.3)


async def test_close_and_stop_go_through_a_mongodb_outage_and_land_once(
        paper_settings, spawn_mongo, start_sim, temporal_client, run_gateway):
    mongo = spawn_mongo()
    sim = await start_sim(symbols=(SYMBOL,))
    settings = paper_settings.model_copy(update={
        "mongo_uri": mongo.uri, "exchange_rest_url": sim.rest_url, "exchange_futures_url": sim.rest_url,
        "exchange_ws_url": sim.ws_url, "sim_exchange_port": sim.port, "connect_timeout_s": 5})
    assert settings.market_source == "sim"
    candles = load_candles(CANDLES / f"{SYMBOL}-5m-2023-01.csv.gz")[:FED + 1]
    async with run_gateway(settings) as gateway, \
            trading_worker_running(temporal_client, settings, gateway.db, "mongo-outage-test"):
        http, db = gateway.http, gateway.db
        email = f"u{uuid.uuid4().hex[:10]}@example.com"
        user_id = (await http.post("/api/auth/register", json={"email": email, "password": PASSWORD})).json()["user_id"]
        token = (await http.post("/api/auth/login", json={"email": email, "password": PASSWORD})).json()["access_token"]
        h = {"Authorization": f"Bearer {token}"}
        session_id = f"session:{user_id}:paper"
        handle = temporal_client.get_workflow_handle(session_id)
        started = await http.post(P + "/start", headers=h, json={"symbols": [SYMBOL], "interval": "5m"})
        assert started.status_code == 200, started.text
        await store_candles(db, candles, "5m", "sim")
        for c in candles[:FED]:
            await handle.signal(SIGNAL_CANDLE_CLOSED, as_signal(c))

        async def fed() -> bool:
            status = await handle.query(TradingSessionWorkflow.status)
            return status.last_open_time.get(f"{SYMBOL}@5m") == candles[FED - 1].open_time

        await wait_for(fed, 60, "the first candles")
        # The fill uses the exchange's book ticker (the sim's price now), not the last stored close.
        async with httpx.AsyncClient() as exchange:
            book = (await exchange.get(f"{sim.rest_url}/fapi/v1/ticker/bookTicker", params={"symbol": SYMBOL})).json()
        placed = await http.post(P + "/orders", headers={**h, "Idempotency-Key": "outage-order-1"},
                                 json={"symbol": SYMBOL, "side": "long", "order_type": "market", "quantity": 0.01})
        assert placed.status_code == 200, placed.text
        fill = placed.json()["fills"][0]
        slippage = EngineSettings().slippage_bps / 10_000
        assert fill["price"] == pytest.approx(float(book["askPrice"]) * (1 + slippage), rel=1e-9)
        assert fill["price"] != pytest.approx(candles[FED - 1].close, rel=1e-3)
        (position,) = (await http.get(P + "/trades/open", headers=h)).json()
        assert (await http.get(P + "/status", headers=h)).status_code == 200  # the token's session is confirmed

        mongo.stop()
        down_at = time.monotonic()
        await handle.signal(SIGNAL_CANDLE_CLOSED, as_signal(candles[FED]))  # stored, but unreadable now
        closed = await http.post(f"{P}/trades/{position['trade_id']}/close",
                                 headers={**h, "Idempotency-Key": "outage-close-1"})
        assert closed.status_code == 200, closed.text
        assert closed.json()["close_reason"] == "manual" and closed.json()["id"] == position["trade_id"]
        # A retry of the close (same key) answers the same, and changes nothing.
        again = await http.post(f"{P}/trades/{position['trade_id']}/close",
                                headers={**h, "Idempotency-Key": "outage-close-1"})
        assert (again.status_code, again.json()) == (200, closed.json())
        stopped = await http.post(P + "/stop", headers={**h, "Idempotency-Key": "outage-stop-1"})
        assert stopped.status_code == 200 and stopped.json()["status"] == "stopped", stopped.text
        # Anything else needs the database: 503, nothing written.
        assert (await http.put(P + "/basic-settings", headers=h, json={"leverage": 3})).status_code == 503

        async def degraded() -> bool:
            status = await handle.query(TradingSessionWorkflow.status)
            return bool(status.degraded) and status.pending_writes > 0

        await wait_for(degraded, 30, "the session to say it is degraded")
        status = await handle.query(TradingSessionWorkflow.status)
        assert set(status.degraded) & {"analysis", "commits"}, status.degraded
        assert status.last_open_time[f"{SYMBOL}@5m"] == candles[FED - 1].open_time  # the candle waits
        await asyncio.sleep(max(0.0, OUTAGE_S - (time.monotonic() - down_at)))
        mongo.start()

        async def resumed() -> bool:
            status = await handle.query(TradingSessionWorkflow.status)
            return (status.pending_writes == 0 and not status.degraded
                    and status.last_open_time.get(f"{SYMBOL}@5m") == candles[FED].open_time)

        await wait_for(resumed, 90, "the session to resume by itself")

        async def written_once() -> bool:
            rows = await db.paper_trading_trades.find({"session_id": session_id}).to_list()
            events = await db.events.count_documents({"type": "TradeExecuted", "user_id": user_id,
                                                      "data.action": "close"})
            return len(rows) == 1 and rows[0]["status"] == "closed" and events == 1

        await wait_for(written_once, 30, "the close to be written once")
        row = await db.paper_trading_trades.find_one({"session_id": session_id})
        assert row["trade"] == closed.json()
        record = await db.paper_trading_settings.find_one({"session_id": session_id})
        assert record["status"] == "stopped"
        journal = await db.session_journal.find({"session_id": session_id}).sort("seq", 1).to_list()
        assert [e["kind"] for e in journal] == ["start", "place_order", "close_trade", "stop"]
        assert (await http.get(P + "/status", headers=h)).json()["status"] == "stopped"
