"""What happens to a real order after it is sent, judged from the sim exchange's own order log: every
ambiguous reply is resolved by a lookup into the order's true state, never by a second send; a reply that
proves nothing was placed ends NOT_PLACED after the protection window; cancels and reduce-only orders act
at once."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
import websockets

from activities.binance.futures_orders import FuturesOrderClient
from activities.binance.key_vault import ApiCredentials
from activities.binance.signed import SignedBinanceClient
from core.order_contracts import OrderTerms
from tests.conftest import with_key

from .conftest import SYMBOL, order_requests, sim_call

ORDERS = "/api/real-trading/orders"
FINAL = ("FILLED", "CANCELED", "REJECTED", "EXPIRED", "NOT_PLACED")


async def place(gateway, trader, body: dict[str, Any], before_confirming: Any = None) -> dict[str, Any]:
    """Request an order and, if it waits for confirmation, confirm it as its owner."""
    asked = await gateway.http.post(ORDERS, headers=with_key(trader.headers), json=body)
    assert asked.status_code == 201, asked.text
    order = asked.json()["order"]
    if before_confirming is not None:
        await before_confirming()
    if order["status"] == "AWAITING_CONFIRMATION":
        done = await gateway.http.post(f"{ORDERS}/{order['order_id']}/confirm", headers=trader.headers, json={
            "token": asked.json()["confirmation_token"], "terms_digest": order["terms_digest"]})
        assert done.status_code == 200, done.text
        order = done.json()
    return order


async def settled(gateway, trader, order_id: str, within_s: float = 20) -> dict[str, Any]:
    deadline = asyncio.get_running_loop().time() + within_s
    while True:
        order = (await gateway.http.get(f"{ORDERS}/{order_id}", headers=trader.headers)).json()
        if order["status"] in FINAL:
            return order
        assert asyncio.get_running_loop().time() < deadline, order
        await asyncio.sleep(0.2)


async def sim_orders(sim, client_id: str) -> list[dict[str, Any]]:
    log = await sim_call(sim, "GET", "/sim/orders")
    assert log["duplicates"] == 0, log["duplicate_client_ids"]
    return [o for o in log["orders"] if o["clientOrderId"] == client_id]


def buy(quantity: float = 0.01) -> dict[str, Any]:
    return {"symbol": SYMBOL, "side": "BUY", "order_type": "MARKET", "quantity": quantity}


async def test_a_confirmed_market_order_fills_once_at_the_price_it_was_shown(gateway, sign_up, sim):
    trader = await sign_up()
    order = await place(gateway, trader, buy())
    assert order["status"] == "FILLED" and order["executed_qty"] == pytest.approx(0.01)
    assert order["avg_price"] == pytest.approx(order["summary"]["expected_price"])
    [booked] = await sim_orders(sim, order["order_id"])
    assert (booked["status"], float(booked["executedQty"])) == ("FILLED", 0.01)
    assert [t["status"] for t in order["history"]] == ["AWAITING_CONFIRMATION", "SUBMITTING", "FILLED"]


@pytest.mark.parametrize("faults", [
    [{"kind": "unknown_after_accept"}],
    [{"kind": "timeout_after_accept", "http_status": 408}],
    [{"kind": "timeout_after_accept", "http_status": 503}],
    [{"kind": "drop_after_accept"}],
    [{"kind": "hold_reply"}],
    [{"kind": "unknown_after_accept"}, {"kind": "false_not_found", "seconds": 1.5}],
], ids=["503-unknown", "408-1007", "503-1007", "dropped", "held", "unknown-then-2013"])
async def test_an_ambiguous_reply_is_resolved_by_lookup_never_by_a_resend(gateway, sign_up, sim, faults):
    trader = await sign_up()
    for fault in faults:
        await sim_call(sim, "POST", "/sim/order_faults", json=fault)
    order = await settled(gateway, trader, (await place(gateway, trader, buy()))["order_id"])
    await sim_call(sim, "POST", "/sim/order_faults/release", json={})
    statuses = [t["status"] for t in order["history"]]
    assert statuses == ["AWAITING_CONFIRMATION", "SUBMITTING", "UNKNOWN", "FILLED"], order["history"]
    assert "found by its client order ID" in order["reason"]
    [booked] = await sim_orders(sim, order["order_id"])
    assert booked["status"] == "FILLED" and order["exchange_order_id"] == booked["orderId"]
    assert len(await order_requests(sim)) == 1  # sent once


async def test_an_order_the_exchange_never_took_is_not_placed_after_the_protection_window(gateway, sign_up, sim):
    trader = await sign_up()
    # A 503 -1001 before the order reaches the matching engine: ambiguous to us, but nothing was booked.
    async def fail_the_next_request() -> None:
        await sim_call(sim, "POST", "/sim/faults", json={"http_5xx_remaining": 1, "http_5xx_status": 503})

    order = await settled(gateway, trader, (await place(gateway, trader, buy(), fail_the_next_request))["order_id"])
    assert [t["status"] for t in order["history"]][-2:] == ["UNKNOWN", "NOT_PLACED"], order["history"]
    unknown_at, not_placed_at = (t["at_ms"] for t in order["history"][-2:])
    assert not_placed_at - unknown_at >= gateway.settings.order_protection_window_s * 1000
    assert await sim_orders(sim, order["order_id"]) == []
    assert len(await order_requests(sim)) == 1


async def test_refusals_end_rejected_and_reduce_only_orders_go_at_once(gateway, sign_up, sim):
    trader = await sign_up()
    await sim_call(sim, "POST", "/sim/order_faults", json={"kind": "reject_before_accept", "code": -2019,
                                                          "msg": "Margin is insufficient."})
    refused = await place(gateway, trader, buy())
    assert refused["status"] == "REJECTED" and "Margin is insufficient" in refused["reason"]
    nothing_to_reduce = await place(gateway, trader, {**buy(), "side": "SELL", "reduce_only": True})
    nothing_to_reduce = await settled(gateway, trader, nothing_to_reduce["order_id"])
    assert nothing_to_reduce["history"][0]["status"] == "SUBMITTING"  # no confirmation step
    assert nothing_to_reduce["status"] == "REJECTED" and "ReduceOnly" in nothing_to_reduce["reason"]

    await place(gateway, trader, buy())
    closed = await settled(gateway, trader, (await place(gateway, trader, {**buy(), "side": "SELL",
                                                                           "reduce_only": True}))["order_id"])
    assert closed["status"] == "FILLED" and closed["confirmed_by"] is None
    assert await sim_call(sim, "GET", "/sim/positions") == []


async def test_an_open_limit_order_is_cancelled_on_the_exchange(gateway, sign_up, sim):
    trader = await sign_up()
    market = (await place(gateway, trader, buy()))["avg_price"]
    resting = await place(gateway, trader, {**buy(), "order_type": "LIMIT", "price": round(market * 0.9, 1)})
    assert resting["status"] == "OPEN"
    cancelled = await gateway.http.post(f"{ORDERS}/{resting['order_id']}/cancel", headers=trader.headers, json={})
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "CANCELED", cancelled.text
    [booked] = await sim_orders(sim, resting["order_id"])
    assert booked["status"] == "CANCELED"


async def test_a_cancel_that_loses_the_race_to_a_fill_reports_the_fill(sim):
    key = await sim_call(sim, "POST", "/sim/keys", json={"enable_futures": True,
                                                         "balances": {"USDT": "100000.00000000"}})
    async with SignedBinanceClient(sim.rest_url, ApiCredentials(key["api_key"], key["api_secret"])) as signed:
        client = FuturesOrderClient(signed)
        placed = await client.submit("m-race", OrderTerms("futures", SYMBOL, "BUY", "MARKET", "0.010"))
        assert placed.order is not None and placed.order.status == "FILLED"
        order, note = await client.cancel(SYMBOL, "m-race")
    assert order is not None and order.status == "FILLED" and "read back" in note


async def advance(sim, closes: int) -> None:
    """Move the sim's clock (speed max) by reading ``closes`` closed 5m candles from its kline stream."""
    async with websockets.connect(f"{sim.ws_url}/ws/btcusdt@kline_5m") as stream:
        seen = 0
        while seen < closes:
            if json.loads(await stream.recv())["k"]["x"]:
                seen += 1


async def test_protective_orders_go_through_the_algo_api_at_once_and_fill_when_triggered(gateway, sign_up, sim):
    trader = await sign_up()
    price = (await place(gateway, trader, buy()))["avg_price"]
    stop = await place(gateway, trader, {"symbol": SYMBOL, "side": "SELL", "order_type": "STOP_MARKET",
                                         "trigger_price": round(price * 0.5, 1), "close_position": True})
    take = await place(gateway, trader, {"symbol": SYMBOL, "side": "SELL", "order_type": "TAKE_PROFIT_MARKET",
                                         "trigger_price": round(price * 1.0005, 1), "quantity": 0.01,
                                         "reduce_only": True})
    assert stop["history"][0]["status"] == take["history"][0]["status"] == "SUBMITTING"  # not confirmed
    assert stop["status"] == take["status"] == "OPEN"
    algos = {a["clientAlgoId"]: a for a in (await sim_call(sim, "GET", "/sim/orders"))["algo_orders"]}
    assert algos[stop["order_id"]]["closePosition"] is True and algos[take["order_id"]]["reduceOnly"] is True
    assert {r["path"] for r in await order_requests(sim)} == {"/fapi/v1/order", "/fapi/v1/algoOrder"}

    moved = await gateway.http.post(f"{ORDERS}/{stop['order_id']}/cancel", headers=trader.headers, json={})
    assert moved.status_code == 200 and moved.json()["status"] == "CANCELED", moved.text
    for _ in range(30):  # the take profit sits just above the fill: a few candles reach it
        await advance(sim, 10)
        algos = {a["clientAlgoId"]: a for a in (await sim_call(sim, "GET", "/sim/orders"))["algo_orders"]}
        if algos[take["order_id"]]["algoStatus"] != "NEW":
            break
    assert algos[take["order_id"]]["algoStatus"] in ("TRIGGERED", "FINISHED"), algos[take["order_id"]]
    taken = await settled(gateway, trader, take["order_id"])  # the order workflow reads it at its next poll
    assert taken["status"] == "FILLED" and taken["executed_qty"] == pytest.approx(0.01), taken
    assert await sim_call(sim, "GET", "/sim/positions") == []


@pytest.mark.parametrize(("body", "field"), [
    ({"order_type": "STOP_MARKET", "trigger_price": 100.0, "quantity": 0.01}, "order_type"),
    ({"order_type": "MARKET", "close_position": True}, "close_position"),
    ({"order_type": "STOP_MARKET", "close_position": True}, "trigger_price"),
    ({"order_type": "MARKET", "quantity": 0.01, "trigger_price": 100.0}, "trigger_price"),
])
async def test_conditional_orders_protect_and_nothing_else(gateway, sign_up, body, field):
    trader = await sign_up()
    reply = await gateway.http.post(ORDERS, headers=with_key(trader.headers),
                                    json={"symbol": SYMBOL, "side": "SELL", **body})
    assert reply.status_code == 422 and reply.json()["detail"]["field"] == field, reply.text
