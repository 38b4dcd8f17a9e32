"""Order faults of the sim (``POST /sim/order_faults``): each kind, and that an order answered with
an error or no answer at all exists exactly once in the ground-truth log ``GET /sim/orders``."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

import httpx
import pytest

from .conftest import StartSim, wait_for
from .test_sim_futures_trading import Trader, at_tick, candle_now, new_trader

MARKET = {"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET", "quantity": "0.01"}


async def add_fault(http: httpx.AsyncClient, **body: Any) -> None:
    reply = await http.post("/sim/order_faults", json=body)
    assert reply.status_code == 200, reply.text


async def booked(http: httpx.AsyncClient, client_id: str) -> list[dict[str, Any]]:
    truth = (await http.get("/sim/orders")).json()
    return [o for o in truth["orders"] if o["clientOrderId"] == client_id] + [
        a for a in truth["algo_orders"] if a["clientAlgoId"] == client_id
    ]


async def test_replies_lost_after_acceptance_leave_exactly_one_order(start_sim: StartSim) -> None:
    sim = await start_sim()
    async with httpx.AsyncClient(base_url=sim.rest_url) as http:
        trader = await new_trader(http)
        await add_fault(http, kind="unknown_after_accept")
        unknown = await trader.call("POST", "/fapi/v1/order", **MARKET, newClientOrderId="u-1")
        assert unknown.status_code == 503
        assert unknown.json() == {"code": -1000, "msg": "Unknown error, please check your request or try again later."}
        await add_fault(http, kind="timeout_after_accept", path="/fapi/v1/order")
        timeout = await trader.call("POST", "/fapi/v1/order", **MARKET, newClientOrderId="t-1")
        assert timeout.status_code == 408 and timeout.json()["code"] == -1007
        await add_fault(http, kind="drop_after_accept")
        with pytest.raises(httpx.RemoteProtocolError):
            await trader.call("POST", "/fapi/v1/order", **MARKET, newClientOrderId="d-1")
        for client_id in ("u-1", "t-1", "d-1"):
            [order] = await booked(http, client_id)
            assert order["status"] == "FILLED"
        # A fault is used up: the next order is answered normally.
        assert (await trader.call("POST", "/fapi/v1/order", **MARKET, newClientOrderId="ok")).status_code == 200
        truth = (await http.get("/sim/orders")).json()
        assert truth["duplicates"] == 0
        # Resending after an unknown outcome without looking first: the ID was free again (the order
        # had filled), so Binance takes it twice, and the ground truth shows the duplicate.
        assert (await trader.call("POST", "/fapi/v1/order", **MARKET, newClientOrderId="u-1")).status_code == 200
        truth = (await http.get("/sim/orders")).json()
        assert truth["duplicates"] == 1 and truth["duplicate_client_ids"] == {"u-1": 2}


async def test_held_reply_waits_for_release(start_sim: StartSim) -> None:
    sim = await start_sim()
    async with httpx.AsyncClient(base_url=sim.rest_url) as http:
        trader = await new_trader(http)
        await add_fault(http, kind="hold_reply", symbol="BTCUSDT")
        pending = asyncio.ensure_future(trader.call("POST", "/fapi/v1/order", **MARKET, newClientOrderId="h-1"))

        async def held() -> bool:
            return bool((await http.get("/sim/order_faults")).json()["held"])

        await wait_for(held, 2, "a held reply")
        assert not pending.done()
        assert len(await booked(http, "h-1")) == 1
        assert (await http.post("/sim/order_faults/release", json={"client_id": "h-1"})).json() == {"released": 1}
        assert (await pending).status_code == 200
        # A held reply also ends when the client gives up.
        await add_fault(http, kind="hold_reply")
        with pytest.raises(httpx.ReadTimeout):
            await trader.call("POST", "/fapi/v1/order", **MARKET, newClientOrderId="h-2", patience_s=0.3)

        async def released() -> bool:
            return not (await http.get("/sim/order_faults")).json()["held"]

        await wait_for(released, 2, "the held reply to end with its client")
        assert len(await booked(http, "h-2")) == 1


async def test_false_not_found_and_rejections(start_sim: StartSim) -> None:
    sim = await start_sim()
    async with httpx.AsyncClient(base_url=sim.rest_url) as http:
        trader = await new_trader(http)
        await add_fault(http, kind="false_not_found", seconds=0.3)
        await trader.ok("POST", "/fapi/v1/order", **MARKET, newClientOrderId="f-1")
        lookup = {"symbol": "BTCUSDT", "origClientOrderId": "f-1"}
        assert (await trader.call("GET", "/fapi/v1/order", **lookup)).json()["code"] == -2013
        await asyncio.sleep(0.35)
        assert (await trader.ok("GET", "/fapi/v1/order", **lookup))["status"] == "FILLED"
        # Queued behind an unknown reply, it hides that same order: the lookup after the 503 denies it.
        await add_fault(http, kind="unknown_after_accept")
        await add_fault(http, kind="false_not_found", seconds=0.3)
        assert (await trader.call("POST", "/fapi/v1/order", **MARKET, newClientOrderId="f-2")).status_code == 503
        lookup = {"symbol": "BTCUSDT", "origClientOrderId": "f-2"}
        assert (await trader.call("GET", "/fapi/v1/order", **lookup)).json()["code"] == -2013
        assert (await http.get("/sim/order_faults")).json()["pending"] == []
        await asyncio.sleep(0.35)
        assert (await trader.ok("GET", "/fapi/v1/order", **lookup))["status"] == "FILLED"
        await add_fault(http, kind="reject_before_accept", code=-2019, msg="Margin is insufficient.")
        refused = await trader.call("POST", "/fapi/v1/order", **MARKET, newClientOrderId="r-1")
        assert refused.json() == {"code": -2019, "msg": "Margin is insufficient."}
        assert await booked(http, "r-1") == []
        bad = await http.post("/sim/order_faults", json={"kind": "reject_before_accept"})
        assert bad.status_code == 400 and "negative Binance error code" in bad.json()["error"]
        assert (await http.post("/sim/order_faults", json={"kind": "nope"})).status_code == 400
        assert (await http.post("/sim/order_faults", json={"kind": "hold_reply", "count": 0})).status_code == 400


async def test_protective_orders_refused_or_lost(start_sim: StartSim) -> None:
    sim = await start_sim()
    async with httpx.AsyncClient(base_url=sim.rest_url) as http:
        trader: Trader = await new_trader(http)
        await trader.ok("POST", "/fapi/v1/order", **MARKET)
        trigger = await at_tick(http, Decimal((await candle_now(http))[1]) * 9 / 10)
        stop = {
            "algoType": "CONDITIONAL",
            "symbol": "BTCUSDT",
            "side": "SELL",
            "type": "STOP_MARKET",
            "triggerPrice": str(trigger),
            "closePosition": "true",
        }
        await add_fault(http, kind="refuse_protective")
        refused = await trader.call("POST", "/fapi/v1/algoOrder", **stop, clientAlgoId="p-1")
        assert refused.json()["code"] == -2021 and await booked(http, "p-1") == []
        await add_fault(http, kind="lose_protective", seconds=0.1, status="EXPIRED")
        accepted = await trader.ok("POST", "/fapi/v1/algoOrder", **stop, clientAlgoId="p-2")
        assert accepted["algoStatus"] == "NEW"
        await asyncio.sleep(0.2)
        assert (await trader.ok("GET", "/fapi/v1/algoOrder", clientAlgoId="p-2"))["algoStatus"] == "EXPIRED"
