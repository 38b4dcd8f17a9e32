"""Stop loss and take profit of a real position (PUT /api/real-trading/positions/{symbol}/sltp), judged
from the sim exchange's algo orders: a first or tighter stop acts at once, a stop moved away from the price
waits for its owner's confirmation, and a moved order replaces the old one only once it is on the exchange."""

from __future__ import annotations

import asyncio
from typing import Any

from tests.conftest import with_key

from .conftest import SYMBOL, sim_call
from .test_order_outcomes import buy, place, settled

SLTP = f"/api/real-trading/positions/{SYMBOL}/sltp"


async def open_algos(sim) -> dict[str, dict[str, Any]]:
    return {a["clientAlgoId"]: a for a in (await sim_call(sim, "GET", "/sim/orders"))["algo_orders"]
            if a["algoStatus"] == "NEW"}


async def until_cancelled(gateway, trader, order_id: str) -> dict[str, Any]:
    for _ in range(100):
        order = (await gateway.http.get(f"/api/real-trading/orders/{order_id}", headers=trader.headers)).json()
        if order["status"] == "CANCELED":
            return order
        await asyncio.sleep(0.1)
    raise AssertionError(order)


async def test_stops_move_closer_at_once_and_away_only_when_confirmed(gateway, sign_up, sim):
    trader = await sign_up()
    price = (await place(gateway, trader, buy()))["avg_price"]
    first = await gateway.http.put(SLTP, headers=with_key(trader.headers), json={
        "stop_loss": round(price * 0.9, 1), "take_profit": round(price * 1.2, 1)})
    assert first.status_code == 200, first.text
    stop, take = first.json()["stop_loss"]["order"], first.json()["take_profit"]["order"]
    assert stop["status"] == take["status"] == "OPEN" and first.json()["stop_loss"]["confirmation_token"] is None
    assert set(await open_algos(sim)) == {stop["order_id"], take["order_id"]}

    tighter = (await gateway.http.put(SLTP, headers=with_key(trader.headers),
                                      json={"stop_loss": round(price * 0.95, 1)})).json()["stop_loss"]
    assert tighter["order"]["status"] == "OPEN" and tighter["order"]["replaces"] == stop["order_id"]
    await until_cancelled(gateway, trader, stop["order_id"])
    assert set(await open_algos(sim)) == {tighter["order"]["order_id"], take["order_id"]}

    looser = (await gateway.http.put(SLTP, headers=with_key(trader.headers),
                                     json={"stop_loss": round(price * 0.8, 1)})).json()["stop_loss"]
    assert looser["order"]["status"] == "AWAITING_CONFIRMATION" and looser["confirmation_token"]
    assert set(await open_algos(sim)) == {tighter["order"]["order_id"], take["order_id"]}  # nothing moved yet
    confirmed = await gateway.http.post(f"/api/real-trading/orders/{looser['order']['order_id']}/confirm",
                                        headers=trader.headers, json={"token": looser["confirmation_token"],
                                                                      "terms_digest": looser["order"]["terms_digest"]})
    assert confirmed.status_code == 200 and confirmed.json()["status"] == "OPEN", confirmed.text
    await until_cancelled(gateway, trader, tighter["order"]["order_id"])
    algos = await open_algos(sim)
    assert set(algos) == {looser["order"]["order_id"], take["order_id"]}
    assert float(algos[looser["order"]["order_id"]]["triggerPrice"]) == round(price * 0.8, 1)
    report = (await gateway.http.get("/api/real-trading/reconciliation", headers=trader.headers)).json()
    assert report["ok"], report  # the protective orders are Durabot's own


async def test_protection_needs_a_position_and_prices_on_the_right_side(gateway, sign_up, sim):
    trader = await sign_up()
    none = await gateway.http.put(SLTP, headers=with_key(trader.headers), json={"stop_loss": 1000.0})
    assert none.status_code == 404, none.text
    price = (await place(gateway, trader, buy()))["avg_price"]
    for body, field in (({"stop_loss": price * 1.1}, "stop_loss"), ({"take_profit": price * 0.9}, "take_profit"),
                        ({}, None)):
        reply = await gateway.http.put(SLTP, headers=with_key(trader.headers), json=body)
        assert reply.status_code == 422 and reply.json()["detail"]["field"] == field, reply.text
    assert await open_algos(sim) == {}
    closed = await settled(gateway, trader, (await place(gateway, trader, {**buy(), "side": "SELL",
                                                                           "reduce_only": True}))["order_id"])
    assert closed["status"] == "FILLED"


async def test_closing_a_position_cancels_its_protective_orders(gateway, sign_up, sim):
    trader = await sign_up()
    price = (await place(gateway, trader, buy()))["avg_price"]
    set_ = (await gateway.http.put(SLTP, headers=with_key(trader.headers), json={
        "stop_loss": round(price * 0.9, 1), "take_profit": round(price * 1.2, 1)})).json()
    assert len(await open_algos(sim)) == 2
    closed = await gateway.http.post(f"/api/real-trading/positions/{SYMBOL}/close", headers=with_key(trader.headers))
    assert closed.status_code == 200 and closed.json()["status"] == "FILLED", closed.text
    for kind in ("stop_loss", "take_profit"):
        await until_cancelled(gateway, trader, set_[kind]["order"]["order_id"])
    assert await open_algos(sim) == {}  # nothing left to close the next position in the symbol
