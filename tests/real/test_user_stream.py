"""A real session books from the exchange's REST records; the user-data stream only says when to look.
While the stream is up, a fill is booked on its hint (no periodic pass runs in this test). While it is
down (the sim closes it and refuses reconnects), nothing is learnt; the gap-fill after the reconnect
books what happened meanwhile, a fill and a funding payment, and the ledger equals the exchange's."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from activities.binance.key_vault import ApiCredentials
from activities.binance.signed import SignedBinanceClient
from activities.binance.user_stream import AccountChanged, UserDataStream, UserStreamConnected
from worker.main import start_market_feed

from .conftest import SYMBOL, Trader, sim_call
from .session_rig import Pacer, every_worker, feed_overrides, sim_signed, wait_until
from .test_real_session import BACKFILL, done_with, real_status, request_and_approve

# Served with its real funding history; held behind the session's back, so funding is paid on it.
FUNDED = "XRPUSDT"


@pytest.fixture
async def sim(start_sim):
    # Started 10 candles before the first funding time of FUNDED's funding file (its 8h marks start later
    # than its 5m candles).
    return await start_sim(symbols=(SYMBOL, FUNDED), speed="max", lockstep=True, lockstep_timeout_s=20,
                           tiling=False, max_candles_per_series=900, start_offset_candles=653,
                           weight_limit_per_minute=100_000)


@pytest.fixture
def real_settings(real_settings, sim):
    # No periodic pass within the test: whatever is booked, the stream's hints booked.
    return real_settings.model_copy(update={**feed_overrides(sim, SYMBOL, BACKFILL),
                                            "real_reconcile_every_s": 3600.0, "tuning_red_cooldown_s": 1.0,
                                            "exchange_weight_per_minute": 100_000})


@pytest.fixture
async def real_worker(real_settings, temporal_client, mongo_client):
    db = mongo_client[real_settings.mongo_database]
    async with every_worker(temporal_client, real_settings, db, "user-stream-test"):
        yield


async def ledger_ids(gateway: Any, trader: Trader) -> set[str]:
    reply = await gateway.http.get("/api/real-trading/ledger", headers=trader.headers, params={"limit": 500})
    assert reply.status_code == 200, reply.text
    return {e["entry_id"] for e in reply.json()}


async def exchange_ids(sim: Any, trader: Trader) -> set[str]:
    """The exchange's records as the ledger names them: every fill of both symbols (FUNDED is not the
    session's, its fills are booked all the same), all income."""
    trades = [t for symbol in (SYMBOL, FUNDED) for t in await sim_signed(
        sim, trader.api_key, trader.api_secret, "GET", "/fapi/v1/userTrades", symbol=symbol)]
    income = await sim_signed(sim, trader.api_key, trader.api_secret, "GET", "/fapi/v1/income", limit=1000)
    return {f"fill:{t['symbol']}:{t['id']}" for t in trades} | {f"income:{e['tranId']}" for e in income}


async def market(sim: Any, trader: Trader, symbol: str, side: str, quantity: str) -> None:
    await sim_signed(sim, trader.api_key, trader.api_secret, "POST", "/fapi/v1/order", symbol=symbol, side=side,
                     type="MARKET", quantity=quantity)


async def stream_down(sim: Any, down: bool) -> None:
    async with httpx.AsyncClient(base_url=sim.rest_url, timeout=10) as http:
        reply = await http.post("/sim/faults", json={"user_stream_down": down})
        assert reply.status_code == 200 and reply.json()["user_stream_down"] is down, reply.text


async def test_a_dropped_stream_loses_nothing_the_reconnect_fills_the_gap(gateway, sign_up, real_settings, sim,
                                                                        temporal_client, real_worker):
    trader = await sign_up()
    await request_and_approve(gateway, trader)
    await wait_until(lambda: real_status(gateway, trader),
                     lambda s: s["status"] == "RUNNING" and s["stream_connections"] >= 1, 30)
    # The session sends nothing of its own (an order of its own books fills on its own path).
    stopped = await gateway.http.post("/api/real-trading/entries", headers=trader.headers, json={"enabled": False})
    assert stopped.status_code == 200, stopped.text
    # Up (the market held still: the clock moves once the feed and the pacer run): fills made behind the
    # session's back are booked on the stream's hints, fees included.
    await market(sim, trader, SYMBOL, "BUY", "0.01")
    await market(sim, trader, FUNDED, "BUY", "100")
    booked = await exchange_ids(sim, trader)
    await wait_until(lambda: ledger_ids(gateway, trader), lambda ids: ids == booked, 20)
    await asyncio.sleep(1)  # hints still on their way are booked before the stream goes down
    # Down: a fill, then a funding payment while the market moves, and the session hears nothing.
    await stream_down(sim, True)
    connections = (await real_status(gateway, trader))["stream_connections"]
    await market(sim, trader, SYMBOL, "SELL", "0.01")
    pacer = Pacer(sim, [done_with(gateway, trader)])
    async with pacer.running():
        await start_market_feed(temporal_client, real_settings)
        funded = await wait_until(
            lambda: sim_signed(sim, trader.api_key, trader.api_secret, "GET", "/fapi/v1/income",
                               incomeType="FUNDING_FEE"), bool, 120)
        await asyncio.sleep(2)  # a hint (there is none) would have been booked by now
        missing = await exchange_ids(sim, trader) - await ledger_ids(gateway, trader)
        assert f"income:{funded[0]['tranId']}" in missing, missing
        assert any(i.startswith(f"fill:{SYMBOL}:") for i in missing), missing
        # Up again: the reconnect's gap-fill books all of it.
        await stream_down(sim, False)
        await wait_until(lambda: real_status(gateway, trader), lambda s: s["stream_connections"] > connections, 30)
        expected = await exchange_ids(sim, trader)
        await wait_until(lambda: ledger_ids(gateway, trader), lambda ids: ids == expected, 20)
    stopped = await gateway.http.post("/api/real-trading/stop", headers=trader.headers, json={})
    assert stopped.status_code == 200 and stopped.json()["status"] == "STOPPED", stopped.text


async def test_the_stream_client_keeps_its_key_alive_and_reconnects_after_a_lapsed_key_or_a_drop(sim):
    key = await sim_call(sim, "POST", "/sim/keys", json={"enable_futures": True, "balances": {"USDT": "1000"}})
    trader = Trader("u", "", None, key["api_key"], key["api_secret"])
    signed = SignedBinanceClient(sim.rest_url, ApiCredentials(key["api_key"], key["api_secret"]))
    stream = UserDataStream(signed, sim.ws_url, keepalive_s=0.3, backoff_initial_s=0.05, backoff_max_s=0.2)
    events = stream.events()

    async def following() -> Any:
        return await asyncio.wait_for(anext(events), 10)

    try:
        assert await following() == UserStreamConnected(1, "initial")
        await market(sim, trader, SYMBOL, "BUY", "0.01")
        fill, balance = await following(), await following()
        assert isinstance(fill, AccountChanged) and (fill.kind, fill.symbol, fill.reason) == ("fill", SYMBOL, "TRADE")
        assert isinstance(balance, AccountChanged) and (balance.kind, balance.reason) == ("balance", "ORDER")
        # The key lapses behind the client's back: its next keepalive learns it (-1125) and it starts over.
        async with httpx.AsyncClient(base_url=sim.rest_url, timeout=10) as http:
            closed = await http.delete("/fapi/v1/listenKey", headers={"X-MBX-APIKEY": key["api_key"]})
            assert closed.status_code == 200, closed.text
            assert await following() == UserStreamConnected(2, "reconnect")
            log = (await http.get("/sim/requests")).json()
        assert any(r["method"] == "PUT" and r["path"] == "/fapi/v1/listenKey" for r in log), log
        # Dropped, and refused while down: it comes back once the exchange takes it again.
        await stream_down(sim, True)
        await asyncio.sleep(0.5)
        await stream_down(sim, False)
        assert await following() == UserStreamConnected(3, "reconnect")
        assert stream.failures >= 2
        await market(sim, trader, SYMBOL, "SELL", "0.01")
        assert (await following()).kind == "fill"
    finally:
        await events.aclose()
        await signed.aclose()
