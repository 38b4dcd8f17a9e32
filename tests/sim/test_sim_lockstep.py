"""Lockstep mode: the clock holds after each candle close until the client acknowledges it and no
order request is in flight, so orders sent after reading candle t's close fill at candle t+1's open,
as in a backtest, however slow the client (real sockets, the data file as the reference)."""

from __future__ import annotations

import asyncio
import json
from decimal import Decimal
from typing import Any

import httpx
import websockets

from core.datafiles import load_candles

from .conftest import BTCUSDT_FILE, StartSim, sim_state, wait_for
from .test_sim_futures_trading import Trader, new_trader

FIVE_MINUTES = 300_000


async def next_close(connection: websockets.ClientConnection) -> dict[str, Any]:
    while True:
        kline = json.loads(await asyncio.wait_for(connection.recv(), 5))["k"]
        if kline["x"]:
            return kline


async def ack(http: httpx.AsyncClient, up_to: int) -> dict[str, Any]:
    reply = await http.post("/sim/lockstep/ack", json={"up_to": up_to})
    assert reply.status_code == 200, reply.text
    return reply.json()


def next_open_in_file() -> dict[tuple[float, float, float, float], Decimal]:
    """For each candle of the data file (by its prices), the open of the candle after it."""
    rows = load_candles(BTCUSDT_FILE)
    return {
        (r.open, r.high, r.low, r.close): Decimal(repr(after.open)) for r, after in zip(rows, rows[1:], strict=False)
    }


def fill_price(order: dict[str, Any]) -> Decimal:
    if "cummulativeQuoteQty" in order:  # spot
        return Decimal(order["cummulativeQuoteQty"]) / Decimal(order["executedQty"])
    return Decimal(order["avgPrice"])


async def test_orders_sent_after_each_close_fill_at_the_next_open_of_the_file(start_sim: StartSim) -> None:
    sim = await start_sim(lockstep=True, lockstep_timeout_s=10)
    expected_open = next_open_in_file()
    async with httpx.AsyncClient(base_url=sim.rest_url) as http:
        trader = await new_trader(http, enable_spot_and_margin_trading=True, balances={"USDT": "100000", "BTC": "1"})
        async with websockets.connect(f"{sim.ws_url}/ws/btcusdt@kline_5m") as klines:
            for turn in range(24):
                closed = await next_close(klines)
                await asyncio.sleep(0.03)  # a deliberately slow decision: the clock must wait for it
                state = await sim_state(sim)
                assert state["virtual_now_ms"] == closed["T"] + 1  # held at the close instant
                assert state["lockstep"]["holding"] and state["lockstep"]["waiting_for"] == closed["T"]
                order = await place(trader, turn)
                prices = (float(closed["o"]), float(closed["h"]), float(closed["l"]), float(closed["c"]))
                assert fill_price(order) == expected_open[prices], (turn, closed)
                await ack(http, closed["T"])
        state = await sim_state(sim)
        assert state["lockstep_timeouts"] == 0 and state["lockstep"]["in_flight"] == 0


async def place(trader: Trader, turn: int) -> dict[str, Any]:
    """Alternately a spot and a USDⓈ-M market order (BTCUSDT futures replay the same file)."""
    side = "BUY" if turn % 4 < 2 else "SELL"
    path = "/api/v3/order" if turn % 2 == 0 else "/fapi/v1/order"
    return await trader.ok(
        "POST", path, symbol="BTCUSDT", side=side, type="MARKET", quantity="0.001", newOrderRespType="RESULT"
    )


async def test_an_order_in_flight_holds_the_clock_and_a_silent_client_times_out(start_sim: StartSim) -> None:
    sim = await start_sim(lockstep=True, lockstep_timeout_s=1.0)
    async with httpx.AsyncClient(base_url=sim.rest_url) as http:
        trader = await new_trader(http, enable_spot_and_margin_trading=True)
        assert (await http.post("/sim/order_faults", json={"kind": "hold_reply"})).status_code == 200
        async with websockets.connect(f"{sim.ws_url}/ws/btcusdt@kline_5m") as klines:
            closed = await next_close(klines)
            held = asyncio.ensure_future(
                trader.call("POST", "/api/v3/order", symbol="BTCUSDT", side="BUY", type="MARKET", quantity="0.001")
            )

            async def in_flight() -> bool:
                return (await sim_state(sim))["lockstep"]["in_flight"] == 1

            await wait_for(in_flight, 2, "the held order to be in flight")
            acked = await ack(http, closed["T"])
            assert acked["acked_up_to"] == closed["T"]
            await asyncio.sleep(0.3)
            state = await sim_state(sim)
            assert state["virtual_now_ms"] == closed["T"] + 1 and state["lockstep"]["holding"]
            assert (await http.post("/sim/order_faults/release", json={})).json() == {"released": 1}
            assert (await held).status_code == 200
            following = await next_close(klines)
            assert following["t"] == closed["T"] + 1
            # No acknowledgement now: after the timeout the clock moves on and counts it.
            later = await next_close(klines)
            assert later["t"] == following["T"] + 1
        state = await sim_state(sim)
        assert state["lockstep_timeouts"] == 1 and state["lockstep"]["acked_up_to"] == closed["T"]


async def test_without_lockstep_the_clock_runs_on_and_acks_are_refused(start_sim: StartSim) -> None:
    sim = await start_sim(max_candles_per_series=600)
    async with httpx.AsyncClient(base_url=sim.rest_url) as http:
        # A short close timeout: the unread backlog would hold the closing handshake for 10 s.
        async with websockets.connect(f"{sim.ws_url}/ws/btcusdt@kline_5m", close_timeout=0.2) as klines:
            closed = await next_close(klines)
            await asyncio.sleep(0.3)  # the slow client has not read on: the clock has
            state = await sim_state(sim)
            assert state["virtual_now_ms"] > closed["T"] + 10 * FIVE_MINUTES
        refused = await http.post("/sim/lockstep/ack", json={"up_to": closed["T"]})
        assert refused.status_code == 409 and "lockstep is off" in refused.json()["error"]
        assert state["lockstep"]["enabled"] is False and state["lockstep_timeouts"] == 0


async def test_bad_acknowledgements_are_refused(start_sim: StartSim) -> None:
    sim = await start_sim(lockstep=True)
    async with httpx.AsyncClient(base_url=sim.rest_url) as http:
        for body in ({}, {"up_to": "1"}, {"up_to": True}, {"up_to": 1, "extra": 2}, [1]):
            reply = await http.post("/sim/lockstep/ack", json=body)
            assert reply.status_code == 400 and "up_to" in reply.json()["error"], body
        assert (await http.post("/sim/lockstep/ack", content=b"{nope")).status_code == 400
        assert (await http.get("/sim/lockstep")).json()["acked_up_to"] is None
