"""sim/exchange WebSocket streams over a real socket: shapes, subscriptions, pacing, faults."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import socket
from typing import Any

import pytest
import websockets

from core.datafiles import load_candles
from sim.exchange import replay_series

from .conftest import BTCUSDT_FILE, StartSim, set_faults, sim_state, wait_for

KLINE_FIELDS = {"t", "T", "s", "i", "f", "L", "o", "c", "h", "l", "v", "n", "x", "q", "V", "Q", "B"}


async def _receive(connection: websockets.ClientConnection, count: int) -> list[dict[str, Any]]:
    return [json.loads(await asyncio.wait_for(connection.recv(), 5)) for _ in range(count)]


async def test_raw_kline_stream_sends_open_and_closed_klines_shaped_like_binance(start_sim: StartSim) -> None:
    sim = await start_sim()
    origin = (await sim_state(sim))["origin_ms"]
    expected = replay_series(load_candles(BTCUSDT_FILE), origin, tiling=False, cap=2000)
    async with websockets.connect(f"{sim.ws_url}/ws/btcusdt@kline_5m") as connection:
        messages = await _receive(connection, 6)
    # Candle 500 opened at the start position; its close comes first, then 501 opens, and so on.
    assert [m["k"]["x"] for m in messages] == [True, False, True, False, True, False]
    for message in messages:
        assert message["e"] == "kline" and message["s"] == "BTCUSDT"
        assert set(message["k"]) == KLINE_FIELDS
        assert message["k"]["i"] == "5m" and message["k"]["T"] == message["k"]["t"] + 300_000 - 1
    closed, opened = messages[0], messages[1]
    candle = expected.candle(500)
    assert closed["k"]["t"] == candle.open_time and closed["E"] == candle.close_time
    assert [float(closed["k"][f]) for f in "ohlcv"] == [
        candle.open,
        candle.high,
        candle.low,
        candle.close,
        candle.volume,
    ]
    following = expected.candle(501)
    assert opened["k"]["t"] == following.open_time
    assert opened["k"]["o"] == opened["k"]["h"] == opened["k"]["l"] == opened["k"]["c"]
    assert float(opened["k"]["o"]) == following.open and opened["k"]["v"] == "0.00000000"


async def test_combined_stream_and_live_subscription_methods(start_sim: StartSim) -> None:
    sim = await start_sim(symbols=("BTCUSDT", "ETHBTC"))
    async with websockets.connect(f"{sim.ws_url}/stream?streams=ethbtc@kline_5m") as combined:
        message = json.loads(await asyncio.wait_for(combined.recv(), 5))
        assert message["stream"] == "ethbtc@kline_5m" and message["data"]["s"] == "ETHBTC"

    async with websockets.connect(f"{sim.ws_url}/ws") as connection:
        await connection.send(json.dumps({"method": "LIST_SUBSCRIPTIONS", "id": 1}))
        assert json.loads(await connection.recv()) == {"result": [], "id": 1}
        await connection.send(json.dumps({"method": "SUBSCRIBE", "params": ["btcusdt@kline_5m"], "id": 2}))
        replies = [m for m in await _receive(connection, 3) if "id" in m]
        assert replies == [{"result": None, "id": 2}]
        await connection.send(json.dumps({"method": "LIST_SUBSCRIPTIONS", "id": 3}))
        await connection.send(json.dumps({"method": "UNSUBSCRIBE", "params": ["btcusdt@kline_5m"], "id": 4}))
        await connection.send(json.dumps({"method": "SHOUT", "id": 5}))
        replies = []
        while len(replies) < 3:
            message = json.loads(await asyncio.wait_for(connection.recv(), 5))
            if "id" in message:
                replies.append(message)
        assert replies[0] == {"result": ["btcusdt@kline_5m"], "id": 3}
        assert replies[1] == {"result": None, "id": 4}
        assert replies[2]["code"] == 2 and replies[2]["id"] == 5


def _silent_subscriber(host: str, port: int, path: str) -> socket.socket:
    """A WebSocket client that completes the handshake and then reads only when told to: the
    slowest possible subscriber, with a small receive buffer so back-pressure shows quickly."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16_384)
    sock.connect((host, port))
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(
        f"GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode()
    )
    assert sock.recv(12) == b"HTTP/1.1 101"
    sock.setblocking(False)
    return sock


def _drain(sock: socket.socket, max_bytes: int) -> int:
    read = 0
    try:
        while read < max_bytes:
            read += len(sock.recv(65_536))
    except BlockingIOError:
        pass
    return read


async def test_speed_max_waits_for_subscribers_and_follows_the_slowest_reader(start_sim: StartSim) -> None:
    sim = await start_sim(tiling=True)
    await asyncio.sleep(0.3)
    assert (await sim_state(sim))["events_sent"] == 0  # nobody listening: the market stands still

    sock = await asyncio.to_thread(_silent_subscriber, sim.config.host, sim.port, "/ws/btcusdt@kline_5m")
    try:
        samples: list[int] = []

        async def stalled() -> bool:
            samples.append((await sim_state(sim))["events_sent"])
            return len(samples) >= 5 and samples[-1] == samples[-5] > 0

        # The subscriber reads nothing: once the socket buffers are full the clock must stop.
        await wait_for(stalled, 20, "the clock to stall behind a subscriber that does not read")
        stalled_at = samples[-1]
        assert _drain(sock, 2_000_000) > 1_000_000
        await wait_for(lambda: _events_sent_above(sim, stalled_at + 2000), 10, "the clock to move on")
    finally:
        sock.close()


async def _events_sent_above(sim: Any, threshold: int) -> bool:
    return (await sim_state(sim))["events_sent"] > threshold


async def test_drop_fault_closes_every_socket_after_n_messages(start_sim: StartSim) -> None:
    sim = await start_sim()
    await set_faults(sim, drop_ws_every=7)
    async with websockets.connect(f"{sim.ws_url}/ws/btcusdt@kline_5m") as connection:
        received = 0
        with pytest.raises(websockets.ConnectionClosedError) as closed:
            while True:
                await asyncio.wait_for(connection.recv(), 5)
                received += 1
    assert received == 7
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1011


async def test_connections_close_at_their_lifetime_and_pings_are_answered(start_sim: StartSim) -> None:
    sim = await start_sim(ws_max_lifetime_s=1.5, ws_ping_interval_s=0.1, ws_ping_timeout_s=0.3)
    # A trade-only subscriber does not move the clock, so the connection is idle but for pings.
    async with websockets.connect(f"{sim.ws_url}/ws/btcusdt@trade", ping_interval=None) as connection:
        with pytest.raises(websockets.ConnectionClosedOK) as closed:
            await asyncio.wait_for(connection.recv(), 10)
    # Closed by the lifetime (1001), not by a missed pong (1011), after many ping intervals.
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1001


async def test_trade_stream_replays_rebased_trades_in_time_order(start_sim: StartSim) -> None:
    sim = await start_sim(symbols=("XRPETH",), start_offset_candles=0)
    async with websockets.connect(f"{sim.ws_url}/stream?streams=xrpeth@trade/xrpeth@kline_1m") as connection:
        messages = [m["data"] for m in await _receive(connection, 60)]
    trades = [m for m in messages if m["e"] == "trade"]
    assert trades, "the XRPETH trade file has trades in its first minutes"
    for trade in trades:
        assert {"e", "E", "s", "t", "p", "q", "T", "m", "M"} == set(trade)
        assert trade["s"] == "XRPETH" and float(trade["p"]) > 0 and isinstance(trade["m"], bool)
    times = [m["E"] for m in messages]
    assert times == sorted(times)
    origin = (await sim_state(sim))["origin_ms"]
    assert origin <= trades[0]["T"] < origin + 86_400_000


async def test_a_multiplier_speed_follows_wall_time_without_subscribers(start_sim: StartSim) -> None:
    sim = await start_sim(speed=6000.0)  # a 5-minute candle every 50 ms of wall time
    start = (await sim_state(sim))["series"][0]["closed_candles"]

    async def moved() -> bool:
        return (await sim_state(sim))["series"][0]["closed_candles"] >= start + 3

    await wait_for(moved, 10, "the wall-paced clock to close candles with nobody subscribed")
