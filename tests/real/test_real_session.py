"""The real session ``session:{user}:real`` on the sim exchange, fed by the market feed in lockstep:
started only through a RED approval with a step-up, it trades the paper session's decisions through
order workflows, protects each position with exchange-side stop and take profit, halts its entries
when the exchange shows something it did not do, and stops and flattens whatever state it is in."""

from __future__ import annotations

from typing import Any

import pytest

from services.errors import Forbidden
from services.principal import Principal
from services.real_session import RealStartRequest
from worker.main import start_market_feed

from .conftest import SYMBOL, Trader, sim_call
from .session_rig import INTERVAL, Pacer, every_worker, feed_overrides, place_foreign_order, sim_signed, wait_until

BACKFILL = 300
ENGINE = {"taker_fee": 0.0005, "slippage_bps": 0.0, "stop_loss_pct": 1.0, "take_profit_pct": 1.5,
          "fill_price": "next_open", "starting_balance": 100_000.0}


@pytest.fixture
async def sim(start_sim):
    return await start_sim(symbols=(SYMBOL,), speed="max", lockstep=True, lockstep_timeout_s=20, tiling=False,
                           max_candles_per_series=900, start_offset_candles=BACKFILL,
                           weight_limit_per_minute=100_000)


@pytest.fixture
def real_settings(real_settings, sim):
    return real_settings.model_copy(update={**feed_overrides(sim, SYMBOL, BACKFILL),
                                            "real_protection_confirm_s": 5.0, "real_reconcile_every_s": 2.0,
                                            "tuning_red_cooldown_s": 1.0,
                                            "exchange_weight_per_minute": 100_000})


@pytest.fixture
async def real_worker(real_settings, temporal_client, mongo_client):
    db = mongo_client[real_settings.mongo_database]
    async with every_worker(temporal_client, real_settings, db, "real-session-test"):
        yield


async def real_status(gateway: Any, trader: Trader) -> dict[str, Any]:
    reply = await gateway.http.get("/api/real-trading/status", headers=trader.headers)
    assert reply.status_code == 200, reply.text
    return reply.json()


async def paper_start(gateway: Any, trader: Trader, engine: dict[str, Any] = ENGINE,
                      strategy: dict[str, Any] | None = None, symbol: str = SYMBOL) -> None:
    reply = await gateway.http.post("/api/paper-trading/start", headers=trader.headers, json={
        "symbols": [symbol], "interval": INTERVAL, "basic": engine, "strategy": strategy or {"min_agree": 2}})
    assert reply.status_code == 200, reply.text


async def request_and_approve(gateway: Any, trader: Trader, key: str = "real-start-1",
                              symbol: str = SYMBOL) -> dict[str, Any]:
    started = await gateway.http.post("/api/real-trading/start", headers={**trader.headers, "Idempotency-Key": key},
                                      json={"symbols": [symbol], "interval": INTERVAL})
    assert started.status_code == 201, started.text
    proposal = started.json()["proposal"]["proposal"]
    assert proposal["tier"] == "RED" and proposal["status"] == "AWAITING"
    assert started.json()["session"]["status"] == "NEW"
    wrong = await gateway.http.post(f"/api/tuning/proposals/{proposal['number']}/approve-text",
                                    headers=trader.headers, json={"text": "I approve"})
    assert wrong.status_code == 422, wrong.text
    approved = await gateway.http.post(f"/api/tuning/proposals/{proposal['number']}/approve-text",
                                       headers=trader.headers, json={"text": proposal["approval_text"]})
    assert approved.status_code == 200, approved.text
    assert approved.json()["status"] == "APPLIED", approved.json()
    return proposal


def done_with(gateway: Any, trader: Trader):
    async def done(open_time: int) -> bool:
        status = await real_status(gateway, trader)
        return status["status"] not in ("RUNNING", "HALTED") or (
            status["last_open_time"].get(SYMBOL, -1) >= open_time and status["queued"] == 0)
    return done


async def test_starting_needs_a_red_approval_a_step_up_and_a_person(gateway, sign_up, real_settings):
    without_2fa = await sign_up(two_factor=False, with_key=False)
    refused = await gateway.http.post("/api/real-trading/start",
                                      headers={**without_2fa.headers, "Idempotency-Key": "start-no-2fa"},
                                      json={"symbols": [SYMBOL], "interval": INTERVAL})
    assert refused.status_code == 403, refused.text
    assert "two-factor" in refused.text.lower()
    trader = await sign_up()
    # An agent below the critical tier cannot even request it (a critical one only proposes: tests/mcp).
    agent = Principal(trader.user_id, "mcp", human=False, tier="sensitive")
    with pytest.raises(Forbidden):
        await gateway.app.state.services.real_sessions.request_start(agent, RealStartRequest((SYMBOL,), INTERVAL),
                                                                     "agent-start-1")
    no_key = await gateway.bare.post("/api/real-trading/start", headers=trader.headers,
                                     json={"symbols": [SYMBOL], "interval": INTERVAL})
    assert no_key.status_code == 400 and "Idempotency-Key" in no_key.text, no_key.text
    # Nothing started: the session does not exist, or waits configured.
    assert (await real_status(gateway, trader))["status"] == "NEW"
    await request_and_approve(gateway, trader)
    status = await wait_until(lambda: real_status(gateway, trader), lambda s: s["status"] == "RUNNING", 30)
    assert status["approval_id"] and status["report"]["ok"], status
    # The exchange trades the symbol as the model does: isolated margin at the settings' leverage.
    assert status["leverage"] == {SYMBOL: 10} and status["margin_types"] == {SYMBOL: "ISOLATED"}, status
    # A second start while it trades is refused, and stopping is always possible.
    again = await gateway.http.post("/api/real-trading/start", headers={**trader.headers, "Idempotency-Key": "again-1"},
                                    json={"symbols": [SYMBOL], "interval": INTERVAL})
    assert again.status_code == 422, again.text
    stopped = await gateway.http.post("/api/real-trading/stop", headers=trader.headers, json={"flatten": True})
    assert stopped.status_code == 200 and stopped.json()["status"] == "STOPPED", stopped.text


async def test_trades_protects_halts_on_a_foreign_order_and_flattens(gateway, sign_up, real_settings, sim,
                                                                    temporal_client):
    trader = await sign_up()
    await paper_start(gateway, trader)
    await request_and_approve(gateway, trader)
    await wait_until(lambda: real_status(gateway, trader), lambda s: s["status"] == "RUNNING", 30)
    pacer = Pacer(sim, [done_with(gateway, trader)])
    async with pacer.running():
        await start_market_feed(temporal_client, real_settings)
        # A position, and a reconciliation after its protective orders were confirmed.
        status = await wait_until(lambda: real_status(gateway, trader), lambda s: bool(s["positions"]) and (
            s["report"]["checked_at_ms"] > s["positions"][0]["opened_at_ms"]), 240)
        [position] = status["positions"]
        assert status["report"]["ok"] and status["status"] == "RUNNING", status
        assert position["stop_order"] and position["take_order"], position
        assert position["stop_loss"] < position["entry_price"] < position["take_profit"] if position["side"] == "LONG" \
            else position["take_profit"] < position["entry_price"] < position["stop_loss"]
        # The exchange holds the position and both close-position orders; each order was sent once.
        log = await sim_call(sim, "GET", "/sim/orders")
        assert log["duplicates"] == 0, log
        algo = {a["clientAlgoId"]: a for a in log["algo_orders"]}
        for order_id, kind in ((position["stop_order"], "STOP_MARKET"), (position["take_order"], "TAKE_PROFIT_MARKET")):
            assert algo[order_id]["algoStatus"] == "NEW" and algo[order_id]["orderType"] == kind, algo
            assert algo[order_id]["closePosition"] is True, algo[order_id]
        held = {p["symbol"]: float(p["positionAmt"]) for p in await sim_call(sim, "GET", "/sim/positions")}
        signed = position["quantity"] if position["side"] == "LONG" else -position["quantity"]
        assert held.get(SYMBOL) == pytest.approx(signed), held
        # An order placed behind the session's back halts its entries within a candle.
        await place_foreign_order(sim, trader.api_key, trader.api_secret, SYMBOL)
        status = await wait_until(lambda: real_status(gateway, trader), lambda s: s["status"] == "HALTED", 60)
        kinds = {d["kind"] for d in status["report"]["differences"]}
        assert "unknown_order" in kinds, status["report"]
        assert status["alerts"] and status["alerts"][-1]["kind"] == "reconciliation"
        resumed = await gateway.http.post("/api/real-trading/entries", headers=trader.headers,
                                          json={"enabled": True})
        assert resumed.status_code == 422, resumed.text
        stopped = await gateway.http.post("/api/real-trading/stop", headers=trader.headers, json={"flatten": True})
        assert stopped.status_code == 200, stopped.text
        assert stopped.json()["status"] == "STOPPED" and not stopped.json()["positions"]
    # Flat on the exchange, no protective order of the session left, nothing sent twice.
    held = {p["symbol"]: float(p["positionAmt"]) for p in await sim_call(sim, "GET", "/sim/positions")}
    assert not held.get(SYMBOL), held
    log = await sim_call(sim, "GET", "/sim/orders")
    assert log["duplicates"] == 0
    assert all(a["algoStatus"] != "NEW" for a in log["algo_orders"]), log["algo_orders"]
    # The ledger booked the exchange's fills (by trade ID): the entry and the close at least.
    ledger = await gateway.http.get("/api/real-trading/ledger", headers=trader.headers)
    fills = [e for e in ledger.json() if e["kind"] == "fill"]
    assert len(fills) >= 2 and len({e["entry_id"] for e in fills}) == len(fills), ledger.json()


async def test_a_position_left_without_its_stop_is_closed_and_entries_halt(gateway, sign_up, real_settings, sim,
                                                                           temporal_client):
    trader = await sign_up()
    await paper_start(gateway, trader)
    await request_and_approve(gateway, trader)
    await wait_until(lambda: real_status(gateway, trader), lambda s: s["status"] == "RUNNING", 30)
    # The exchange refuses the first protective order (a stop that "would immediately trigger").
    await sim_call(sim, "POST", "/sim/order_faults", json={"kind": "refuse_protective", "count": 1, "symbol": SYMBOL})
    async with Pacer(sim, [done_with(gateway, trader)]).running():
        await start_market_feed(temporal_client, real_settings)
        status = await wait_until(lambda: real_status(gateway, trader), lambda s: s["status"] == "HALTED", 240)
    alert = status["alerts"][-1]
    assert alert["kind"] == "unprotected_position" and "closed" in alert["message"], status["alerts"]
    assert not status["positions"] and not status["entries_enabled"], status
    # On the exchange: flat again, and the take profit that was placed is cancelled.
    held = {p["symbol"]: float(p["positionAmt"]) for p in await sim_call(sim, "GET", "/sim/positions")}
    assert not held.get(SYMBOL), held
    log = await sim_call(sim, "GET", "/sim/orders")
    assert [a["algoStatus"] for a in log["algo_orders"]] == ["CANCELED"], log["algo_orders"]
    fills = [o for o in log["orders"] if o["status"] == "FILLED"]
    assert [(o["side"] == "SELL") == (fills[0]["side"] == "SELL") for o in fills] == [True, False], fills
    assert fills[1]["reduceOnly"] and fills[1]["executedQty"] == fills[0]["executedQty"], fills


async def test_a_position_made_behind_its_back_halts_it_at_start_until_adopted_then_an_order_within_a_period(
        gateway, sign_up, real_settings, sim):
    trader = await sign_up()
    await paper_start(gateway, trader)
    await sim_signed(sim, trader.api_key, trader.api_secret, "POST", "/fapi/v1/order", symbol=SYMBOL, side="BUY",
                     type="MARKET", quantity="0.010", newClientOrderId="by-hand-1")
    await request_and_approve(gateway, trader)
    status = await wait_until(lambda: real_status(gateway, trader), lambda s: s["status"] == "HALTED", 30)
    # The account holds what neither the session nor its model did.
    assert {(d["kind"], d["symbol"]) for d in status["report"]["differences"]} == {
        ("unknown_position", SYMBOL), ("model_mismatch", SYMBOL)}, status["report"]
    refused = await gateway.http.post("/api/real-trading/entries", headers=trader.headers, json={"enabled": True})
    assert refused.status_code == 422 and "adopt" in refused.text, refused.text
    # An agent may not adopt; the owner does, and the position gets the model's stop and take profit.
    agent = Principal(trader.user_id, "mcp", human=False, tier="critical")
    with pytest.raises(Forbidden):
        await gateway.app.state.services.real_sessions.adopt(agent)
    adopted = await gateway.http.post("/api/real-trading/adopt", headers=trader.headers)
    assert adopted.status_code == 200, adopted.text
    [position] = adopted.json()["positions"]
    assert position["adopted"] and position["quantity"] == 0.01 and position["stop_order"] and position["take_order"]
    assert adopted.json()["report"]["ok"], adopted.json()["report"]
    resumed = await gateway.http.post("/api/real-trading/entries", headers=trader.headers, json={"enabled": True})
    assert resumed.status_code == 200 and resumed.json()["status"] == "RUNNING", resumed.text
    # No candle comes (no feed): the periodic reconciliation alone finds a foreign order within its period.
    await place_foreign_order(sim, trader.api_key, trader.api_secret, SYMBOL)
    status = await wait_until(lambda: real_status(gateway, trader), lambda s: s["status"] == "HALTED", 15)
    assert {d["kind"] for d in status["report"]["differences"]} == {"unknown_order"}, status["report"]
    flattened = await gateway.http.post("/api/real-trading/stop", headers=trader.headers, json={"flatten": True})
    assert flattened.status_code == 200 and not flattened.json()["positions"], flattened.text
    held = {p["symbol"]: float(p["positionAmt"]) for p in await sim_call(sim, "GET", "/sim/positions")}
    assert not held.get(SYMBOL), held
    assert all(a["algoStatus"] != "NEW" for a in (await sim_call(sim, "GET", "/sim/orders"))["algo_orders"])


async def test_hedge_mode_is_refused_with_its_reason(gateway, sign_up, real_settings, sim):
    trader = await sign_up()
    await sim_signed(sim, trader.api_key, trader.api_secret, "POST", "/fapi/v1/positionSide/dual",
                     dualSidePosition="true")
    await request_and_approve(gateway, trader)
    status = await wait_until(lambda: real_status(gateway, trader), lambda s: bool(s["alerts"]), 30)
    assert status["status"] == "NEW" and status["alerts"][-1]["kind"] == "hedge_mode", status
    assert "switch the account to one-way mode" in status["alerts"][-1]["message"]
    assert (await sim_call(sim, "GET", "/sim/orders"))["orders"] == []


async def test_a_leverage_or_margin_type_changed_behind_its_back_halts_entries_within_a_period(
        gateway, sign_up, real_settings, sim):
    trader = await sign_up()
    await request_and_approve(gateway, trader)
    await wait_until(lambda: real_status(gateway, trader), lambda s: s["status"] == "RUNNING", 30)
    await sim_signed(sim, trader.api_key, trader.api_secret, "POST", "/fapi/v1/leverage", symbol=SYMBOL, leverage="20")
    await sim_signed(sim, trader.api_key, trader.api_secret, "POST", "/fapi/v1/marginType", symbol=SYMBOL,
                     marginType="CROSSED")
    status = await wait_until(lambda: real_status(gateway, trader), lambda s: s["status"] == "HALTED", 15)
    assert {(d["kind"], d["expected"], d["actual"]) for d in status["report"]["differences"]} == {
        ("leverage", 10, 20), ("margin_type", "ISOLATED", "CROSSED")}, status["report"]
    refused = await gateway.http.post("/api/real-trading/entries", headers=trader.headers, json={"enabled": True})
    assert refused.status_code == 422, refused.text
    # Set back on the exchange: the next pass finds nothing, and a person resumes entries.
    await sim_signed(sim, trader.api_key, trader.api_secret, "POST", "/fapi/v1/leverage", symbol=SYMBOL, leverage="10")
    await sim_signed(sim, trader.api_key, trader.api_secret, "POST", "/fapi/v1/marginType", symbol=SYMBOL,
                     marginType="ISOLATED")
    await wait_until(lambda: real_status(gateway, trader), lambda s: s["report"]["ok"], 15)
    resumed = await gateway.http.post("/api/real-trading/entries", headers=trader.headers, json={"enabled": True})
    assert resumed.status_code == 200 and resumed.json()["status"] == "RUNNING", resumed.text
