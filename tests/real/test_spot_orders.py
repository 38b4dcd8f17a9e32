"""Manual spot orders (``market: "spot"``) through the same OrderWorkflow as futures: the 2-step
confirmation, sent once to ``/api/v3/order``, ambiguous replies resolved by a lookup by client order ID,
a resting LIMIT cancelled on the exchange; and what a spot order cannot be is refused before anything
is sent. Judged from the sim's own order log."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from tests.conftest import enrol_two_factor, registered_and_logged_in, with_key

from .conftest import PASSWORD, SYMBOL, sim_call
from .test_order_outcomes import FINAL, settled

ORDERS = "/api/real-trading/orders"


async def spot_trader(gateway: Any, sim: Any) -> dict[str, str]:
    """A person with two-factor and a key that may trade spot (its spot wallet holds USDT)."""
    body = await registered_and_logged_in(gateway.http, PASSWORD)
    headers = {"Authorization": f"Bearer {body['access_token']}"}
    key = await sim_call(sim, "POST", "/sim/keys", json={
        "enable_spot_and_margin_trading": True, "balances": {"USDT": "100000.00000000"}})
    await enrol_two_factor(gateway.http, headers)
    saved = await gateway.http.post("/api/settings/api-keys", headers=headers, json={
        "label": "spot", "api_key": key["api_key"], "api_secret": key["api_secret"]})
    assert saved.status_code == 201, saved.text
    return headers


def as_trader(headers: dict[str, str]) -> Any:
    return SimpleNamespace(headers=headers)


def spot(**body: Any) -> dict[str, Any]:
    return {"symbol": SYMBOL, "side": "BUY", "order_type": "MARKET", "quantity": 0.01, "market": "spot", **body}


async def confirmed(gateway: Any, headers: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
    asked = await gateway.http.post(ORDERS, headers=with_key(headers), json=body)
    assert asked.status_code == 201, asked.text
    order = asked.json()["order"]
    assert order["status"] == "AWAITING_CONFIRMATION", order  # a spot order always opens or adds risk
    assert order["summary"]["liquidation_price"] is None and order["summary"]["leverage"] == 1
    done = await gateway.http.post(f"{ORDERS}/{order['order_id']}/confirm", headers=headers, json={
        "token": asked.json()["confirmation_token"], "terms_digest": order["terms_digest"]})
    assert done.status_code == 200, done.text
    return done.json()


async def spot_log(sim: Any, order_id: str) -> list[dict[str, Any]]:
    log = await sim_call(sim, "GET", "/sim/orders")
    assert log["duplicates"] == 0, log["duplicate_client_ids"]
    return [o for o in log["orders"] if o["clientOrderId"] == order_id]


async def spot_sends(sim: Any) -> int:
    return sum(r["path"] == "/api/v3/order" and r["method"] == "POST" for r in await sim_call(sim, "GET",
                                                                                               "/sim/requests"))


async def test_a_confirmed_spot_market_order_fills_once_on_the_spot_book(gateway, sim):
    headers = await spot_trader(gateway, sim)
    order = await settled(gateway, as_trader(headers), (await confirmed(gateway, headers, spot()))["order_id"])
    assert order["status"] == "FILLED" and order["terms"]["market"] == "spot", order
    [booked] = await spot_log(sim, order["order_id"])
    assert (booked["market"], booked["status"], float(booked["executedQty"])) == ("spot", "FILLED", 0.01)
    assert order["exchange_order_id"] == booked["orderId"]
    assert order["avg_price"] == pytest.approx(order["summary"]["expected_price"], rel=1e-3)
    assert await spot_sends(sim) == 1
    wallet = await gateway.http.get("/api/real-trading/spot/balance", headers=headers)
    assert wallet.status_code == 200 and wallet.json()["can_trade"], wallet.text
    held = {b["asset"]: b["free"] for b in wallet.json()["balances"]}
    spent = float(booked["executedQty"]) * order["avg_price"]
    assert held["BTC"] == pytest.approx(0.01, rel=0.002)  # less the fee, if charged in BTC
    assert held["USDT"] == pytest.approx(100_000 - spent, abs=spent * 0.002), held


async def test_an_ambiguous_spot_reply_is_resolved_by_lookup_never_by_a_resend(gateway, sim):
    headers = await spot_trader(gateway, sim)
    for fault in ({"kind": "unknown_after_accept", "path": "/api/v3/order"},
                  {"kind": "false_not_found", "seconds": 1.5, "path": "/api/v3/order"}):
        await sim_call(sim, "POST", "/sim/order_faults", json=fault)
    order = await settled(gateway, as_trader(headers), (await confirmed(gateway, headers, spot()))["order_id"])
    assert [t["status"] for t in order["history"]] == ["AWAITING_CONFIRMATION", "SUBMITTING", "UNKNOWN", "FILLED"]
    [booked] = await spot_log(sim, order["order_id"])
    assert booked["status"] == "FILLED" and await spot_sends(sim) == 1


async def test_a_resting_spot_limit_is_cancelled_on_the_exchange(gateway, sim):
    headers = await spot_trader(gateway, sim)
    placed = await confirmed(gateway, headers, spot(order_type="LIMIT", price=1000.0, time_in_force="GTC"))
    assert placed["status"] == "OPEN", placed
    cancelled = await gateway.http.post(f"{ORDERS}/{placed['order_id']}/cancel", headers=headers, json={})
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "CANCELED", cancelled.text
    [booked] = await spot_log(sim, placed["order_id"])
    assert booked["status"] == "CANCELED"


@pytest.mark.parametrize(("changes", "field"), [
    ({"reduce_only": True}, "reduce_only"),
    ({"leverage": 3}, "leverage"),
    ({"order_type": "STOP_MARKET", "trigger_price": 1000.0, "close_position": True, "quantity": None}, "order_type"),
    ({"order_type": "LIMIT", "price": 1000.0, "time_in_force": "GTX"}, "time_in_force"),
    ({"market": "margin"}, "market"),
])
async def test_what_a_spot_order_cannot_be_is_refused_before_anything_is_sent(gateway, sim, changes, field):
    headers = await spot_trader(gateway, sim)
    refused = await gateway.http.post(ORDERS, headers=with_key(headers), json=spot(**changes))
    assert refused.status_code == 422 and field in refused.text, refused.text
    assert await spot_sends(sim) == 0
    listed = await gateway.http.get(ORDERS, headers=headers)
    assert [o for o in listed.json() if o["status"] not in FINAL] == []
