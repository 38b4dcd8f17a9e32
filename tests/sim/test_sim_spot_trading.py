"""Spot trading on the sim: Binance spot shapes and codes, balances moved by fills and locked by open
orders, stop orders triggered on candles, user-data events over the WebSocket API, order faults,
ground truth and persistence (real HTTP and WebSocket against an in-process sim)."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
from decimal import Decimal
from typing import Any

import httpx
import websockets

from .conftest import StartSim
from .test_sim_futures_trading import Trader, advance, new_trader

FEE = Decimal("0.001")
BALANCES = {"USDT": "10000", "BTC": "1"}


async def spot_trader(http: httpx.AsyncClient, **key: Any) -> Trader:
    return await new_trader(http, **{"enable_spot_and_margin_trading": True, "balances": BALANCES, **key})


async def open_price(http: httpx.AsyncClient) -> Decimal:
    rows = (await http.get("/api/v3/klines", params={"symbol": "BTCUSDT", "interval": "5m", "limit": 1})).json()
    return Decimal(rows[-1][1])


async def filters(http: httpx.AsyncClient) -> dict[str, dict[str, Any]]:
    info = (await http.get("/api/v3/exchangeInfo", params={"symbol": "BTCUSDT"})).json()
    return {f["filterType"]: f for f in info["symbols"][0]["filters"]}


async def at_tick(http: httpx.AsyncClient, price: Decimal) -> Decimal:
    return price.quantize(Decimal((await filters(http))["PRICE_FILTER"]["tickSize"]).normalize())


async def balances(trader: Trader) -> dict[str, tuple[Decimal, Decimal]]:
    account = await trader.ok("GET", "/api/v3/account")
    return {b["asset"]: (Decimal(b["free"]), Decimal(b["locked"])) for b in account["balances"]}


async def test_market_and_limit_orders_move_and_lock_balances(start_sim: StartSim) -> None:
    sim = await start_sim()
    async with httpx.AsyncClient(base_url=sim.rest_url) as http:
        trader = await spot_trader(http)
        price = await open_price(http)
        bought = await trader.ok(
            "POST",
            "/api/v3/order",
            symbol="BTCUSDT",
            side="BUY",
            type="MARKET",
            quantity="0.01",
            newClientOrderId="b-1",
        )
        assert bought["status"] == "FILLED" and bought["clientOrderId"] == "b-1" and bought["orderListId"] == -1
        [fill] = bought["fills"]
        assert Decimal(fill["price"]) == price and Decimal(fill["qty"]) == Decimal("0.01")
        assert fill["commissionAsset"] == "BTC" and Decimal(fill["commission"]) == Decimal("0.01") * FEE
        assert Decimal(bought["cummulativeQuoteQty"]) == price * Decimal("0.01")
        held = await balances(trader)
        assert held["BTC"] == (1 + Decimal("0.01") * (1 - FEE), 0)
        assert held["USDT"] == (10000 - price * Decimal("0.01"), 0)
        # quoteOrderQty: as much as 100 USDT buys, in whole steps.
        by_quote = await trader.ok(
            "POST", "/api/v3/order", symbol="BTCUSDT", side="BUY", type="MARKET", quoteOrderQty="100"
        )
        assert Decimal(by_quote["origQuoteOrderQty"]) == 100 and Decimal(by_quote["cummulativeQuoteQty"]) <= 100
        assert Decimal(by_quote["cummulativeQuoteQty"]) > 100 - price * Decimal(
            (await filters(http))["LOT_SIZE"]["stepSize"]
        )
        sold = await trader.ok("POST", "/api/v3/order", symbol="BTCUSDT", side="SELL", type="MARKET", quantity="0.005")
        assert sold["fills"][0]["commissionAsset"] == "USDT"
        assert Decimal(sold["fills"][0]["commission"]) == (price * Decimal("0.005") * FEE).quantize(Decimal("1e-8"))
        # A resting LIMIT locks its quote; cancelling it frees it.
        limit = await at_tick(http, price * Decimal("0.97"))
        before = await balances(trader)
        resting = await trader.ok(
            "POST",
            "/api/v3/order",
            symbol="BTCUSDT",
            side="BUY",
            type="LIMIT",
            timeInForce="GTC",
            quantity="0.02",
            price=str(limit),
            newClientOrderId="rest-1",
            newOrderRespType="RESULT",
        )
        assert (
            resting["status"] == "NEW" and "fills" not in resting and resting["workingTime"] == resting["transactTime"]
        )
        after = await balances(trader)
        assert after["USDT"] == (before["USDT"][0] - limit * Decimal("0.02"), limit * Decimal("0.02"))
        [listed] = await trader.ok("GET", "/api/v3/openOrders", symbol="BTCUSDT")
        assert listed["orderId"] == resting["orderId"] and listed["isWorking"] is True
        got = await trader.ok("GET", "/api/v3/order", symbol="BTCUSDT", origClientOrderId="rest-1")
        assert got["status"] == "NEW" and Decimal(got["price"]) == limit
        cancelled = await trader.ok("DELETE", "/api/v3/order", symbol="BTCUSDT", orderId=resting["orderId"])
        assert cancelled["status"] == "CANCELED" and cancelled["origClientOrderId"] == "rest-1"
        assert await balances(trader) == before
        again = await trader.call("DELETE", "/api/v3/order", symbol="BTCUSDT", orderId=resting["orderId"])
        assert again.json() == {"code": -2011, "msg": "Unknown order sent."}
        ack = await trader.ok(
            "POST",
            "/api/v3/order",
            symbol="BTCUSDT",
            side="SELL",
            type="MARKET",
            quantity="0.001",
            newOrderRespType="ACK",
        )
        assert set(ack) == {"symbol", "orderId", "orderListId", "clientOrderId", "transactTime"}
        assert len(await trader.ok("GET", "/api/v3/myTrades", symbol="BTCUSDT")) == 4
        assert [o["status"] for o in await trader.ok("GET", "/api/v3/allOrders", symbol="BTCUSDT")] == [
            "FILLED",
            "FILLED",
            "FILLED",
            "CANCELED",
            "FILLED",
        ]


async def subscribe(ws: websockets.ClientConnection, trader: Trader, request_id: str = "s-1") -> dict[str, Any]:
    params: dict[str, Any] = {"apiKey": trader.api_key, "timestamp": int(time.time() * 1000)}
    payload = "&".join(f"{k}={v}" for k, v in sorted(params.items()))
    params["signature"] = hmac.new(trader.secret.encode(), payload.encode(), hashlib.sha256).hexdigest()
    await ws.send(json.dumps({"id": request_id, "method": "userDataStream.subscribe.signature", "params": params}))
    return json.loads(await asyncio.wait_for(ws.recv(), 5))


async def test_resting_orders_and_stops_fill_on_candles_and_events_arrive_over_the_websocket_api(
    start_sim: StartSim,
) -> None:
    sim = await start_sim()
    async with httpx.AsyncClient(base_url=sim.rest_url) as http:
        trader = await spot_trader(http)
        async with websockets.connect(f"{sim.ws_url}/ws-api/v3") as ws:
            assert await subscribe(ws, trader) == {"id": "s-1", "status": 200, "result": {"subscriptionId": 0}}
            again = await subscribe(ws, trader, "s-2")
            assert again["status"] == 400 and again["error"]["code"] == -2035
            price = await open_price(http)
            limit = await at_tick(http, price * Decimal("0.999"))
            stop = await at_tick(http, price * Decimal("0.998"))
            placed = await trader.ok(
                "POST",
                "/api/v3/order",
                symbol="BTCUSDT",
                side="BUY",
                type="LIMIT",
                timeInForce="GTC",
                quantity="0.01",
                price=str(limit),
                newClientOrderId="lim-1",
            )
            protective = await trader.ok(
                "POST",
                "/api/v3/order",
                symbol="BTCUSDT",
                side="SELL",
                type="STOP_LOSS",
                quantity="0.01",
                stopPrice=str(stop),
                newClientOrderId="sl-1",
            )
            assert set(protective) == {"symbol", "orderId", "orderListId", "clientOrderId", "transactTime"}
            await trader.ok(
                "POST",
                "/api/v3/order",
                symbol="BTCUSDT",
                side="BUY",
                type="LIMIT",
                timeInForce="GTC",
                quantity="0.01",
                price=str(limit),
                newClientOrderId="cx-1",
            )
            await trader.ok(
                "DELETE", "/api/v3/order", symbol="BTCUSDT", origClientOrderId="cx-1", newClientOrderId="cancel-1"
            )
            waiting = await trader.ok("GET", "/api/v3/order", symbol="BTCUSDT", orderId=protective["orderId"])
            assert waiting["isWorking"] is False and waiting["workingTime"] == -1
            assert (await balances(trader))["BTC"] == (Decimal("0.99"), Decimal("0.01"))
            closed = await advance(sim.ws_url, 60)
            touching = next(k for k in closed if Decimal(k["l"]) <= limit)
            triggered = next(k for k in closed if Decimal(k["l"]) <= stop)
            await ws.send(json.dumps({"id": 7, "method": "userDataStream.unsubscribe"}))
            events = [json.loads(await asyncio.wait_for(ws.recv(), 5))]
            while events[-1].get("event", {}).get("e") != "eventStreamTerminated":
                events.append(json.loads(await asyncio.wait_for(ws.recv(), 5)))
            assert json.loads(await asyncio.wait_for(ws.recv(), 5)) == {"id": 7, "status": 200, "result": {}}
        filled = await trader.ok("GET", "/api/v3/order", symbol="BTCUSDT", origClientOrderId="lim-1")
        assert filled["status"] == "FILLED" and filled["updateTime"] == touching["T"] + 1
        assert Decimal(filled["cummulativeQuoteQty"]) <= limit * Decimal("0.01")
        fired = await trader.ok("GET", "/api/v3/order", symbol="BTCUSDT", orderId=protective["orderId"])
        assert fired["status"] == "FILLED" and fired["workingTime"] == triggered["T"] + 1
        assert Decimal(fired["cummulativeQuoteQty"]) == min(stop, Decimal(triggered["o"])) * Decimal("0.01")
        trades = await trader.ok("GET", "/api/v3/myTrades", symbol="BTCUSDT")
        assert sorted((t["orderId"], t["isMaker"]) for t in trades) == [
            (placed["orderId"], True),
            (protective["orderId"], False),
        ]
        reports = [e["event"] for e in events if e["event"]["e"] == "executionReport"]
        assert [r["x"] for r in reports].count("TRADE") == 2
        assert all(e["subscriptionId"] == 0 for e in events)
        assert [(r["c"], r["x"]) for r in reports][:2] == [("lim-1", "NEW"), ("sl-1", "NEW")]
        cancelled = next(r for r in reports if r["x"] == "CANCELED")
        assert (cancelled["c"], cancelled["C"], cancelled["X"]) == ("cancel-1", "cx-1", "CANCELED")
        fill = next(r for r in reports if r["c"] == "lim-1" and r["x"] == "TRADE")
        assert fill["X"] == "FILLED" and fill["i"] == placed["orderId"] and fill["m"] is True and fill["N"] == "BTC"
        positions = [e["event"] for e in events if e["event"]["e"] == "outboundAccountPosition"]
        assert positions and {b["a"] for b in positions[-1]["B"]} == {"BTC", "USDT"}


async def test_binance_refusals(start_sim: StartSim) -> None:
    sim = await start_sim()
    async with httpx.AsyncClient(base_url=sim.rest_url) as http:
        trader = await spot_trader(http)
        price = await open_price(http)
        low = str(await at_tick(http, price * Decimal("0.98")))
        order = {"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "timeInForce": "GTC", "quantity": "0.01"}

        async def refusal(method: str = "POST", path: str = "/api/v3/order", **params: Any) -> dict[str, Any]:
            reply = await trader.call(method, path, **params)
            assert reply.status_code >= 400, reply.text
            return reply.json()

        bad_id = await refusal(**order, price=low, newClientOrderId="bad.id")
        assert bad_id["code"] == -1100 and "^[a-zA-Z0-9-_]{1,36}$" in bad_id["msg"]
        await trader.ok("POST", "/api/v3/order", **order, price=low, newClientOrderId="dup")
        assert await refusal(**order, price=low, newClientOrderId="dup") == {
            "code": -2010,
            "msg": "Duplicate order sent.",
        }
        assert await refusal(**{**order, "quantity": "10"}, price=low) == {
            "code": -2010,
            "msg": "Account has insufficient balance for requested action.",
        }
        assert (await refusal(**{**order, "side": "SELL", "quantity": "2"}, price=str(price * 2)))["code"] == -2010
        lot = await refusal(**{**order, "quantity": "0.0000000001"}, price=low)
        assert lot == {"code": -1013, "msg": "Filter failure: LOT_SIZE"}
        assert (await refusal(**order, price=low + "0001"))["msg"] == "Filter failure: PRICE_FILTER"
        assert (await refusal(**{**order, "quantity": "0.001"}, price="1000"))["msg"] == "Filter failure: NOTIONAL"
        market = {"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET"}
        assert (await refusal(**market))["code"] == -1102
        assert (await refusal(**market, quantity="0.01", price=low)) == {
            "code": -1106,
            "msg": "Parameter 'price' sent when not required.",
        }
        assert (await refusal(**order))["code"] == -1102  # LIMIT without price
        stop = {"symbol": "BTCUSDT", "side": "SELL", "type": "STOP_LOSS", "quantity": "0.01"}
        assert await refusal(**stop, stopPrice=str(price * 2)) == {
            "code": -2010,
            "msg": "Order would trigger immediately.",
        }
        maker = {**order, "type": "LIMIT_MAKER"}
        del maker["timeInForce"]
        taking = await refusal(**maker, price=str(await at_tick(http, price * Decimal("1.01"))))
        assert taking == {"code": -2010, "msg": "Order would immediately match and take."}
        assert (await refusal(**{**order, "symbol": "NOPEUSDT"}, price=low))["code"] == -1121
        assert await refusal("GET", symbol="BTCUSDT", origClientOrderId="never") == {
            "code": -2013,
            "msg": "Order does not exist.",
        }
        assert (await refusal("DELETE", symbol="BTCUSDT", origClientOrderId="never"))["code"] == -2011
        reader = await new_trader(http)  # no spot trading permission
        assert (await reader.call("POST", "/api/v3/order", **order, price=low)).json()["code"] == -2015
        retired = await trader.call("POST", "/api/v3/userDataStream")
        assert retired.status_code == 410 and "ws-api" in retired.json()["msg"]
        async with websockets.connect(f"{sim.ws_url}/ws-api/v3") as ws:
            forged = Trader(http, trader.api_key, "0" * 64)
            assert (await subscribe(ws, forged))["error"] == {
                "code": -1022,
                "msg": "Signature for this request is not valid.",
            }
            await ws.send(
                json.dumps({"id": 3, "method": "userDataStream.unsubscribe", "params": {"subscriptionId": 4}})
            )
            assert json.loads(await ws.recv())["error"]["code"] == -2036


async def test_order_faults_ground_truth_and_persistence(start_sim: StartSim, tmp_path) -> None:
    state_dir = tmp_path / "persisted"
    first = await start_sim(state_dir=state_dir)
    async with httpx.AsyncClient(base_url=first.rest_url) as http:
        trader = await spot_trader(http)
        fault = {"kind": "unknown_after_accept", "path": "/api/v3/order"}
        assert (await http.post("/sim/order_faults", json=fault)).status_code == 200
        lost = await trader.call(
            "POST",
            "/api/v3/order",
            symbol="BTCUSDT",
            side="BUY",
            type="MARKET",
            quantity="0.01",
            newClientOrderId="u-1",
        )
        assert lost.status_code == 503 and lost.json()["code"] == -1000
        await trader.ok(
            "POST",
            "/api/v3/order",
            symbol="BTCUSDT",
            side="BUY",
            type="MARKET",
            quantity="0.01",
            newClientOrderId="u-1",
        )
        price = await open_price(http)
        await trader.ok(
            "POST",
            "/api/v3/order",
            symbol="BTCUSDT",
            side="SELL",
            type="LIMIT",
            timeInForce="GTC",
            quantity="0.01",
            price=str(await at_tick(http, price * Decimal("1.05"))),
        )
        truth = (await http.get("/sim/orders")).json()
        spot = [o for o in truth["orders"] if o["market"] == "spot"]
        assert [o["status"] for o in spot] == ["FILLED", "FILLED", "NEW"]
        assert truth["duplicate_client_ids"] == {"u-1": 2}
        before = await balances(trader)
    await first.stop()
    second = await start_sim(state_dir=state_dir)
    async with httpx.AsyncClient(base_url=second.rest_url) as http:
        trader = Trader(http, trader.api_key, trader.secret)
        assert (await http.get("/sim/orders")).json() == truth
        assert await balances(trader) == before
        [resting] = await trader.ok("GET", "/api/v3/openOrders")
        await trader.ok("DELETE", "/api/v3/openOrders", symbol="BTCUSDT")
        assert (await balances(trader))["BTC"][1] == 0 and resting["status"] == "NEW"
