"""USDⓈ-M futures trading on the sim: Binance's shapes and codes, matching on the virtual clock,
user-data events, funding and persistence (real HTTP and WebSocket against an in-process sim)."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

import httpx
import websockets

from sim.exchange.catalog import SeriesKind

from .conftest import StartSim


class Trader:
    """A signed USDⓈ-M client of one provisioned key (HMAC-SHA256 over the query string)."""

    def __init__(self, http: httpx.AsyncClient, api_key: str, secret: str) -> None:
        self.http, self.api_key, self.secret = http, api_key, secret

    async def call(
        self, method: str, path: str, *, in_body: bool = False, patience_s: float = 5.0, **params: Any
    ) -> httpx.Response:
        query = urlencode({**params, "timestamp": int(time.time() * 1000)})
        signed = f"{query}&signature={hmac.new(self.secret.encode(), query.encode(), hashlib.sha256).hexdigest()}"
        headers = {"X-MBX-APIKEY": self.api_key}
        if in_body:  # Binance also takes POST parameters as a form body
            headers["Content-Type"] = "application/x-www-form-urlencoded"
            return await self.http.request(method, path, content=signed, headers=headers, timeout=patience_s)
        return await self.http.request(method, f"{path}?{signed}", headers=headers, timeout=patience_s)

    async def ok(self, method: str, path: str, **params: Any) -> Any:
        reply = await self.call(method, path, **params)
        assert reply.status_code == 200, reply.text
        return reply.json()


async def new_trader(http: httpx.AsyncClient, **key: Any) -> Trader:
    reply = await http.post("/sim/keys", json={"enable_futures": True, "balances": {"USDT": "10000"}, **key})
    assert reply.status_code == 201, reply.text
    return Trader(http, reply.json()["api_key"], reply.json()["api_secret"])


async def candle_now(http: httpx.AsyncClient, symbol: str = "BTCUSDT") -> list[Any]:
    return (await http.get("/fapi/v1/klines", params={"symbol": symbol, "interval": "5m", "limit": 1})).json()[-1]


async def tick_size(http: httpx.AsyncClient, symbol: str = "BTCUSDT") -> Decimal:
    info = (await http.get("/fapi/v1/exchangeInfo")).json()
    entry = next(s for s in info["symbols"] if s["symbol"] == symbol)
    return Decimal(entry["filters"][0]["tickSize"]).normalize()


async def at_tick(http: httpx.AsyncClient, price: Decimal) -> Decimal:
    return price.quantize(await tick_size(http))


async def advance(ws_url: str, closes: int) -> list[dict[str, Any]]:
    """Let the clock run for ``closes`` closed 5m candles (speed max follows a kline reader)."""
    closed: list[dict[str, Any]] = []
    async with websockets.connect(f"{ws_url}/ws/btcusdt@kline_5m") as connection:
        while len(closed) < closes:
            message = json.loads(await asyncio.wait_for(connection.recv(), 5))
            if message["k"]["x"]:
                closed.append(message["k"])
    await asyncio.sleep(0.05)
    return closed


async def test_market_order_fills_at_the_open_of_the_candle_in_progress(start_sim: StartSim) -> None:
    sim = await start_sim()
    async with httpx.AsyncClient(base_url=sim.rest_url) as http:
        trader = await new_trader(http)
        open_price = Decimal((await candle_now(http))[1])
        reply = await trader.call(
            "POST",
            "/fapi/v1/order",
            in_body=True,
            symbol="BTCUSDT",
            side="BUY",
            type="MARKET",
            quantity="0.01",
            newClientOrderId="m-1",
            newOrderRespType="RESULT",
        )
        assert reply.status_code == 200, reply.text
        assert reply.headers["X-MBX-ORDER-COUNT-10S"] == "1" and reply.headers["X-MBX-ORDER-COUNT-1M"] == "1"
        order = reply.json()
        assert order["status"] == "FILLED" and order["clientOrderId"] == "m-1"
        assert Decimal(order["avgPrice"]) == open_price and Decimal(order["executedQty"]) == Decimal("0.01")
        trades = await trader.ok("GET", "/fapi/v1/userTrades", symbol="BTCUSDT")
        assert len(trades) == 1 and trades[0]["orderId"] == order["orderId"] and trades[0]["buyer"]
        assert Decimal(trades[0]["commission"]) == (open_price * Decimal("0.01") * Decimal("0.0005")).quantize(
            Decimal("0.00000001")
        )
        assert trades[0]["commissionAsset"] == "USDT" and trades[0]["maker"] is False
        income = await trader.ok("GET", "/fapi/v1/income", incomeType="COMMISSION")
        assert Decimal(income[0]["income"]) == -Decimal(trades[0]["commission"])
        assert income[0]["tradeId"] == str(trades[0]["id"]) and income[0]["tranId"]
        [position] = await trader.ok("GET", "/fapi/v3/positionRisk", symbol="BTCUSDT")
        assert Decimal(position["positionAmt"]) == Decimal("0.01") and Decimal(position["entryPrice"]) == open_price
        [truth] = (await http.get("/sim/positions")).json()
        assert truth["positionAmt"] == "0.01" and Decimal(truth["entryPrice"]) == open_price
        income_weight = int((await trader.call("GET", "/fapi/v1/income")).headers["X-MBX-USED-WEIGHT-1M"])
        trades_weight = int(
            (await trader.call("GET", "/fapi/v1/userTrades", symbol="BTCUSDT")).headers["X-MBX-USED-WEIGHT-1M"]
        )
        assert trades_weight - income_weight == 5  # Binance's weights: income 30, userTrades 5
        account = await trader.ok("GET", "/fapi/v3/account")
        assert account["positions"][0]["symbol"] == "BTCUSDT"
        # ACK (the default) answers the order as accepted.
        ack = await trader.ok(
            "POST", "/fapi/v1/order", symbol="BTCUSDT", side="SELL", type="MARKET", quantity="0.01", reduceOnly="true"
        )
        assert ack["status"] == "NEW"
        filled = await trader.ok("GET", "/fapi/v1/order", symbol="BTCUSDT", orderId=ack["orderId"])
        assert filled["status"] == "FILLED" and filled["reduceOnly"] is True
        # A reduce-only order never flips the position: what it cannot reduce expires.
        await trader.ok("POST", "/fapi/v1/order", symbol="BTCUSDT", side="BUY", type="MARKET", quantity="0.01")
        capped = await trader.ok(
            "POST",
            "/fapi/v1/order",
            symbol="BTCUSDT",
            side="SELL",
            type="MARKET",
            quantity="0.03",
            reduceOnly="true",
            newOrderRespType="RESULT",
        )
        assert capped["status"] == "EXPIRED" and Decimal(capped["executedQty"]) == Decimal("0.01")
        [flat] = await trader.ok("GET", "/fapi/v3/positionRisk", symbol="BTCUSDT")
        assert Decimal(flat["positionAmt"]) == 0


async def test_limit_fills_on_a_later_candle_and_the_user_stream_reports_it(start_sim: StartSim) -> None:
    sim = await start_sim()
    async with httpx.AsyncClient(base_url=sim.rest_url) as http:
        trader = await new_trader(http)
        listen_key = (await trader.call("POST", "/fapi/v1/listenKey")).json()["listenKey"]
        assert (await trader.call("PUT", "/fapi/v1/listenKey")).json()["listenKey"] == listen_key
        async with websockets.connect(f"{sim.ws_url}/ws/{listen_key}") as user:
            open_price = Decimal((await candle_now(http))[1])
            price = await at_tick(http, open_price * Decimal("0.999"))
            placed = await trader.ok(
                "POST",
                "/fapi/v1/order",
                symbol="BTCUSDT",
                side="BUY",
                type="LIMIT",
                timeInForce="GTC",
                quantity="0.01",
                price=str(price),
                newClientOrderId="lim-1",
            )
            assert placed["status"] == "NEW"
            assert [o["orderId"] for o in await trader.ok("GET", "/fapi/v1/openOrders", symbol="BTCUSDT")] == [
                placed["orderId"]
            ]
            closed = await advance(sim.ws_url, 60)
            touching = next(k for k in closed if Decimal(k["l"]) <= price)
            events = []
            while not any(e["e"] == "ACCOUNT_UPDATE" for e in events):
                events.append(json.loads(await asyncio.wait_for(user.recv(), 5)))
        order = await trader.ok("GET", "/fapi/v1/order", symbol="BTCUSDT", origClientOrderId="lim-1")
        assert order["status"] == "FILLED" and Decimal(order["avgPrice"]) <= price
        trade = (await trader.ok("GET", "/fapi/v1/userTrades", symbol="BTCUSDT"))[0]
        assert trade["maker"] is True and trade["time"] == touching["T"] + 1
        kinds = [(e["e"], e["o"]["x"]) if e["e"] == "ORDER_TRADE_UPDATE" else (e["e"], e["a"]["m"]) for e in events]
        assert kinds == [("ORDER_TRADE_UPDATE", "NEW"), ("ORDER_TRADE_UPDATE", "TRADE"), ("ACCOUNT_UPDATE", "ORDER")]
        fill = events[1]["o"]
        assert fill["c"] == "lim-1" and fill["X"] == "FILLED" and fill["i"] == order["orderId"] and fill["m"] is True
        assert events[2]["a"]["P"][0]["pa"] == "0.01"


async def test_algo_stop_triggers_and_creates_the_actual_order(start_sim: StartSim) -> None:
    sim = await start_sim()
    async with httpx.AsyncClient(base_url=sim.rest_url) as http:
        trader = await new_trader(http)
        await trader.ok("POST", "/fapi/v1/order", symbol="BTCUSDT", side="BUY", type="MARKET", quantity="0.01")
        open_price = Decimal((await candle_now(http))[1])
        refused = await trader.call(
            "POST",
            "/fapi/v1/order",
            symbol="BTCUSDT",
            side="SELL",
            type="STOP_MARKET",
            stopPrice=str(open_price - 10),
            quantity="0.01",
        )
        assert refused.json() == {
            "code": -4120,
            "msg": "Order type not supported for this endpoint. Please use the Algo Order API endpoints instead.",
        }
        at_once = await trader.call(
            "POST",
            "/fapi/v1/algoOrder",
            algoType="CONDITIONAL",
            symbol="BTCUSDT",
            side="SELL",
            type="STOP_MARKET",
            triggerPrice=str(open_price + 10),
            closePosition="true",
        )
        assert at_once.json()["code"] == -2021
        trigger = await at_tick(http, open_price * Decimal("0.999"))
        algo = await trader.ok(
            "POST",
            "/fapi/v1/algoOrder",
            algoType="CONDITIONAL",
            symbol="BTCUSDT",
            side="SELL",
            type="STOP_MARKET",
            triggerPrice=str(trigger),
            closePosition="true",
            clientAlgoId="sl-1",
        )
        assert algo["algoStatus"] == "NEW" and algo["clientAlgoId"] == "sl-1"
        closed = await advance(sim.ws_url, 60)
        hit = next(k for k in closed if Decimal(k["l"]) <= trigger)
        done = await trader.ok("GET", "/fapi/v1/algoOrder", clientAlgoId="sl-1")
        assert done["algoStatus"] == "FINISHED" and done["actualOrderId"]
        actual = await trader.ok("GET", "/fapi/v1/order", symbol="BTCUSDT", orderId=done["actualOrderId"])
        assert actual["status"] == "FILLED" and actual["origType"] == "STOP_MARKET" and actual["type"] == "MARKET"
        assert Decimal(actual["avgPrice"]) == min(trigger, Decimal(hit["o"]))
        [position] = await trader.ok("GET", "/fapi/v2/positionRisk", symbol="BTCUSDT")
        assert Decimal(position["positionAmt"]) == 0
        assert await trader.ok("GET", "/fapi/v1/openAlgoOrders") == []
        # Cancelling what has filled: -2011.
        gone = await trader.call("DELETE", "/fapi/v1/order", symbol="BTCUSDT", orderId=done["actualOrderId"])
        assert gone.json() == {"code": -2011, "msg": "Unknown order sent."}


async def test_binance_refusals(start_sim: StartSim) -> None:
    sim = await start_sim(symbols=("BTCUSDT", "XRPUSDT"))
    async with httpx.AsyncClient(base_url=sim.rest_url) as http:
        trader = await new_trader(http)
        price = Decimal((await candle_now(http))[1])
        low = str(await at_tick(http, price * Decimal("0.98")))

        async def code(method: str, path: str, **params: Any) -> int:
            return (await trader.call(method, path, **params)).json()["code"]

        order = {"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "timeInForce": "GTC", "quantity": "0.01"}
        assert await code("POST", "/fapi/v1/order", **order, price=low, newClientOrderId="bad id!") == -4015
        await trader.ok("POST", "/fapi/v1/order", **order, price=low, newClientOrderId="dup")
        assert await code("POST", "/fapi/v1/order", **order, price=low, newClientOrderId="dup") == -4116
        assert (
            await code("POST", "/fapi/v1/order", **order, price=str(Decimal(low) + await tick_size(http) / 2)) == -4014
        )
        assert await code("POST", "/fapi/v1/order", **{**order, "quantity": "0.000000001"}, price=low) == -1111
        tiny = {"symbol": "XRPUSDT", "side": "BUY", "type": "MARKET", "quantity": "1"}  # under 5 USDT
        assert await code("POST", "/fapi/v1/order", **tiny) == -4164
        assert await code("POST", "/fapi/v1/order", **{**order, "quantity": "100"}, price=low) == -2019
        assert await code("POST", "/fapi/v1/order", **order, price=low, reduceOnly="true") == -2022
        assert await code("POST", "/fapi/v1/order", **order, price=low, positionSide="LONG") == -4061
        assert await code("POST", "/fapi/v1/order", **{**order, "side": "UP"}, price=low) == -1117
        assert await code("POST", "/fapi/v1/order", **{**order, "symbol": "NOPEUSDT"}, price=low) == -1121
        assert await code("POST", "/fapi/v1/order", **order) == -1102
        assert await code("GET", "/fapi/v1/order", symbol="BTCUSDT", origClientOrderId="never") == -2013
        assert await code("DELETE", "/fapi/v1/order", symbol="BTCUSDT", origClientOrderId="never") == -2011
        assert await code("POST", "/fapi/v1/marginType", symbol="BTCUSDT", marginType="CROSSED") == -4046
        assert await code("POST", "/fapi/v1/positionSide/dual", dualSidePosition="false") == -4059
        assert await code("POST", "/fapi/v1/positionSide/dual", dualSidePosition="true") == -4067
        assert await code("POST", "/fapi/v1/leverage", symbol="BTCUSDT", leverage=126) == -4028
        assert (await trader.ok("POST", "/fapi/v1/leverage", symbol="BTCUSDT", leverage=10))["leverage"] == 10
        assert await code("PUT", "/fapi/v1/listenKey") == -1125
        spot_only = await new_trader(http, enable_futures=False)
        assert (await spot_only.call("GET", "/fapi/v3/account")).json()["code"] == -2015
        assert (await trader.ok("DELETE", "/fapi/v1/allOpenOrders", symbol="BTCUSDT"))["code"] == 200
        assert await trader.ok("GET", "/fapi/v1/openOrders", symbol="BTCUSDT") == []


async def test_funding_is_booked_for_open_positions(start_sim: StartSim) -> None:
    sim = await start_sim(symbols=("BTCUSDT", "XRPUSDT"))
    async with httpx.AsyncClient(base_url=sim.rest_url) as http:
        trader = await new_trader(http)
        await trader.ok("POST", "/fapi/v1/order", symbol="XRPUSDT", side="BUY", type="MARKET", quantity="100")
        await advance(sim.ws_url, 380)  # XRPUSDT's first funding is 30 virtual hours ahead
        fees = await trader.ok("GET", "/fapi/v1/income", incomeType="FUNDING_FEE")
        rates = (await http.get("/fapi/v1/fundingRate", params={"symbol": "XRPUSDT"})).json()
        assert fees and [f["time"] for f in fees] == [r["fundingTime"] for r in rates]
        for fee, rate in zip(fees, rates, strict=True):
            expected = -Decimal(100) * Decimal(rate["markPrice"]) * Decimal(rate["fundingRate"])
            assert abs(Decimal(fee["income"]) - expected) < Decimal("0.00000001")
            assert fee["asset"] == "USDT" and fee["symbol"] == "XRPUSDT"


async def test_trading_state_survives_a_restart(start_sim: StartSim, tmp_path) -> None:
    state_dir = tmp_path / "persisted"
    first = await start_sim(state_dir=state_dir)
    async with httpx.AsyncClient(base_url=first.rest_url) as http:
        trader = await new_trader(http)
        await trader.ok("POST", "/fapi/v1/order", symbol="BTCUSDT", side="BUY", type="MARKET", quantity="0.02")
        price = Decimal((await candle_now(http))[1])
        resting = await trader.ok(
            "POST",
            "/fapi/v1/order",
            symbol="BTCUSDT",
            side="SELL",
            type="LIMIT",
            timeInForce="GTC",
            quantity="0.01",
            price=str(await at_tick(http, price * Decimal("1.04"))),
        )
        listen_key = (await trader.call("POST", "/fapi/v1/listenKey")).json()["listenKey"]
        before = (await http.get("/sim/orders")).json()
    await first.stop()
    second = await start_sim(state_dir=state_dir)
    async with httpx.AsyncClient(base_url=second.rest_url) as http:
        trader = Trader(http, trader.api_key, trader.secret)
        assert (await http.get("/sim/orders")).json() == before
        assert (await trader.call("PUT", "/fapi/v1/listenKey")).json()["listenKey"] == listen_key
        [open_order] = await trader.ok("GET", "/fapi/v1/openOrders", symbol="BTCUSDT")
        assert open_order["orderId"] == resting["orderId"]
        await trader.ok("POST", "/fapi/v1/order", symbol="BTCUSDT", side="SELL", type="MARKET", quantity="0.01")
        [position] = await trader.ok("GET", "/fapi/v3/positionRisk", symbol="BTCUSDT")
        assert Decimal(position["positionAmt"]) == Decimal("0.01")
        assert len(await trader.ok("GET", "/fapi/v1/userTrades", symbol="BTCUSDT")) == 2


async def test_stop_wins_when_stop_and_take_profit_trigger_in_one_candle(start_sim: StartSim) -> None:
    sim = await start_sim()
    series = sim.exchange.market.finest(SeriesKind.FUTURES, "BTCUSDT")
    async with httpx.AsyncClient(base_url=sim.rest_url) as http:
        trader = await new_trader(http)
        tick = await tick_size(http)
        while True:  # a candle in progress whose range holds both triggers on either side of its open
            candle = series.candle(series.count_opened_by(sim.exchange.market.now_ms) - 1)
            low, opening, high = (Decimal(repr(v)) for v in (candle.low, candle.open, candle.high))
            stop = ((low + opening) / 2).quantize(tick)
            take = ((opening + high) / 2).quantize(tick)
            if low < stop < opening < take < high:
                break
            await advance(sim.ws_url, 1)
        await trader.ok("POST", "/fapi/v1/order", symbol="BTCUSDT", side="BUY", type="MARKET", quantity="0.01")
        protective = {"algoType": "CONDITIONAL", "symbol": "BTCUSDT", "side": "SELL", "closePosition": "true"}
        await trader.ok(
            "POST",
            "/fapi/v1/algoOrder",
            **protective,
            type="TAKE_PROFIT_MARKET",
            triggerPrice=str(take),
            clientAlgoId="tp",
        )
        await trader.ok(
            "POST", "/fapi/v1/algoOrder", **protective, type="STOP_MARKET", triggerPrice=str(stop), clientAlgoId="sl"
        )
        await advance(sim.ws_url, 1)
        sl = await trader.ok("GET", "/fapi/v1/algoOrder", clientAlgoId="sl")
        tp = await trader.ok("GET", "/fapi/v1/algoOrder", clientAlgoId="tp")
        assert sl["algoStatus"] == "FINISHED" and Decimal(sl["actualPrice"]) == stop
        assert tp["algoStatus"] == "EXPIRED" and tp["actualOrderId"] == ""
        income = await trader.ok("GET", "/fapi/v1/income", incomeType="REALIZED_PNL")
        assert Decimal(income[0]["income"]) == (stop - opening) * Decimal("0.01")


async def test_slippage_and_the_order_count_limit(start_sim: StartSim) -> None:
    sim = await start_sim(order_limit_per_10s=2, slippage_bps=10)
    async with httpx.AsyncClient(base_url=sim.rest_url) as http:
        trader = await new_trader(http)
        open_price = Decimal((await candle_now(http))[1])
        order = {"symbol": "BTCUSDT", "type": "MARKET", "quantity": "0.01", "newOrderRespType": "RESULT"}
        bought = await trader.ok("POST", "/fapi/v1/order", **order, side="BUY")
        sold = await trader.ok("POST", "/fapi/v1/order", **order, side="SELL")
        assert Decimal(bought["avgPrice"]) == await at_tick(http, open_price * Decimal("1.001"))
        assert Decimal(sold["avgPrice"]) == await at_tick(http, open_price * Decimal("0.999"))
        refused = await trader.call("POST", "/fapi/v1/order", **order, side="BUY")
        assert refused.status_code == 429
        assert refused.json() == {
            "code": -1015,
            "msg": "Too many new orders; current limit is 2 orders per TEN_SECONDS.",
        }


async def test_the_candle_in_progress_at_start_is_matched_when_it_closes(start_sim: StartSim) -> None:
    sim = await start_sim()
    series = sim.exchange.market.finest(SeriesKind.FUTURES, "BTCUSDT")
    candle = series.candle(series.count_opened_by(sim.exchange.market.now_ms) - 1)
    assert candle.high > candle.open  # the data's candle 500: a sell limit at its high rests, then fills
    async with httpx.AsyncClient(base_url=sim.rest_url) as http:
        trader = await new_trader(http)
        placed = await trader.ok(
            "POST",
            "/fapi/v1/order",
            symbol="BTCUSDT",
            side="SELL",
            type="LIMIT",
            timeInForce="GTC",
            quantity="0.01",
            price=repr(candle.high),
        )
        assert placed["status"] == "NEW"
        await advance(sim.ws_url, 1)
        order = await trader.ok("GET", "/fapi/v1/order", symbol="BTCUSDT", orderId=placed["orderId"])
        assert order["status"] == "FILLED" and order["updateTime"] == candle.close_time
