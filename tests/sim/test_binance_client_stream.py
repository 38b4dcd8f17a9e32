"""The Binance stream client against sim/exchange over real sockets (drops, rotation, backfill)
and against a hostile vendor server (bad data, pings)."""

from __future__ import annotations

import asyncio
import json
import math

import pytest
import websockets

from activities.binance import (
    BinanceRestClient,
    BinanceStreamClient,
    ClosedKline,
    StreamConnected,
    TradeTick,
    kline_stream,
)
from activities.exchange_errors import PermanentExchangeError
from core.datafiles import load_candles
from sim.exchange import SimExchangeServer, replay_series, series_checksum
from trading.candle import Candle

from .conftest import BTCUSDT_FILE, StartSim, set_faults, sim_state

STEP = 300_000


class SeriesCollector:
    """What a feed does: store closed candles once, in order, backfilling by REST after every
    (re)connection and whenever a stream candle would leave a hole."""

    def __init__(self, rest: BinanceRestClient) -> None:
        self.rest = rest
        self.series: list[Candle] = []
        self.stream_duplicates = 0

    async def backfill(self, first_open_time: int) -> None:
        start = self.series[-1].open_time + 1 if self.series else first_open_time
        for candle in await self.rest.klines("BTCUSDT", "5m", start_ms=start):
            self._append(candle)

    def _append(self, candle: Candle) -> None:
        assert not self.series or candle.open_time == self.series[-1].open_time + STEP, "a hole in the series"
        self.series.append(candle)

    async def on_stream_candle(self, candle: Candle, first_open_time: int) -> None:
        if self.series and candle.open_time <= self.series[-1].open_time:
            self.stream_duplicates += 1
            return
        if self.series and candle.open_time > self.series[-1].open_time + STEP:
            await self.backfill(first_open_time)
        self._append(candle)


async def _collect(
    sim: SimExchangeServer, stream: BinanceStreamClient, total: int, per_event_pause_s: float = 0.0
) -> tuple[SeriesCollector, list[str]]:
    origin = (await sim_state(sim))["origin_ms"]
    first_open = replay_series(load_candles(BTCUSDT_FILE), origin, tiling=False).first_open_time
    reasons: list[str] = []
    async with BinanceRestClient(sim.rest_url) as rest:
        collector = SeriesCollector(rest)
        async for event in stream.events():
            if isinstance(event, StreamConnected):
                reasons.append(event.reason)
                await collector.backfill(first_open)
            elif isinstance(event, ClosedKline):
                assert (event.symbol, event.interval) == ("BTCUSDT", "5m")
                await collector.on_stream_candle(event.candle, first_open)
            if len(collector.series) >= total:
                break
            if per_event_pause_s:
                await asyncio.sleep(per_event_pause_s)
    await stream.close()
    return collector, reasons


def _expected(origin: int, count: int) -> list[Candle]:
    return replay_series(load_candles(BTCUSDT_FILE), origin, tiling=False, cap=2000).candles(0, count)


async def test_dropped_sockets_with_rest_backfill_give_exactly_the_sims_series(start_sim: StartSim) -> None:
    sim = await start_sim()
    await set_faults(sim, drop_ws_every=250)
    stream = BinanceStreamClient(
        sim.ws_url, [kline_stream("BTCUSDT", "5m")], backoff_initial_s=0.01, backoff_max_s=0.05
    )
    collector, reasons = await asyncio.wait_for(_collect(sim, stream, 2000), 60)
    state = await sim_state(sim)
    expected = _expected(state["origin_ms"], 2000)
    assert len(collector.series) == 2000
    assert series_checksum(collector.series) == series_checksum(expected)
    assert state["ws_connections_dropped"] >= 10  # 3,000 messages went out, a drop every 250
    assert reasons[0] == "initial" and reasons.count("reconnect") == len(reasons) - 1 >= 10
    assert stream.bad_data.total == 0


async def test_rotation_before_the_age_limit_loses_nothing(start_sim: StartSim) -> None:
    # Tiling on: the last candle of a finite series is provable only by its x:true kline, and a
    # rotation may cut that one message off; a continuing market always has a newer row.
    sim = await start_sim(tiling=True)
    stream = BinanceStreamClient(sim.ws_url, [kline_stream("BTCUSDT", "5m")], max_connection_age_s=0.25)
    collector, reasons = await asyncio.wait_for(_collect(sim, stream, 900, per_event_pause_s=0.002), 60)
    origin = (await sim_state(sim))["origin_ms"]
    expected = replay_series(load_candles(BTCUSDT_FILE), origin, tiling=True, cap=2000).candles(0, 900)
    assert len(collector.series) >= 900  # a backfill may bring more than asked for
    assert series_checksum(collector.series[:900]) == series_checksum(expected)
    assert "rotation" in reasons and "reconnect" not in reasons


async def test_live_subscribe_reaches_a_running_connection(start_sim: StartSim) -> None:
    sim = await start_sim()
    stream = BinanceStreamClient(sim.ws_url)
    closed: list[ClosedKline] = []

    async def consume() -> None:
        async for event in stream.events():
            if isinstance(event, StreamConnected):
                await stream.subscribe([kline_stream("BTCUSDT", "5m")])
            elif isinstance(event, ClosedKline):
                closed.append(event)
                if len(closed) == 3:
                    return

    await asyncio.wait_for(consume(), 20)
    await stream.close()
    assert [c.candle.open_time - closed[0].candle.open_time for c in closed] == [0, STEP, 2 * STEP]
    assert stream.streams == {"btcusdt@kline_5m"}


def _kline(open_time: int, o: object, h: object, low: object, c: object, closed: bool = True) -> dict:
    return {
        "stream": "xrpeth@kline_1m",
        "data": {
            "e": "kline",
            "E": open_time + 60_000,
            "s": "XRPETH",
            "k": {
                "t": open_time,
                "T": open_time + 59_999,
                "s": "XRPETH",
                "i": "1m",
                "f": -1,
                "L": -1,
                "o": o,
                "c": c,
                "h": h,
                "l": low,
                "v": "5",
                "n": 0,
                "x": closed,
                "q": "0",
                "V": "0",
                "Q": "0",
                "B": "0",
            },
        },
    }


def _trade(trade_id: int, price: str) -> dict:
    return {
        "stream": "xrpeth@trade",
        "data": {
            "e": "trade",
            "E": 1,
            "s": "XRPETH",
            "t": trade_id,
            "p": price,
            "q": "3",
            "T": 1,
            "m": True,
            "M": True,
        },
    }


async def test_bad_stream_data_is_refused_counted_and_pings_are_answered() -> None:
    t0 = 1_700_000_040_000
    frames: list[object] = [
        "{not json",
        _kline(t0, "1", "2", "0.5", "1.5"),
        _kline(t0 + 60_000, "1", "2", "0.5", "NaN"),
        _kline(t0 + 60_000, "0", "2", "0.5", "1"),
        _kline(t0 + 60_000, "1", "0.4", "0.5", "1"),  # high below low
        _kline(t0 + 60_000, "1.5", "2", "1", "1.8", closed=False),  # still open: not an event
        _kline(t0 + 60_000, "1.5", "2", "1", "1.8"),
        _kline(t0 + 60_000, "1.5", "2", "1", "1.8"),  # duplicate of a closed candle
        _kline(t0 - 60_000, "1", "2", "0.5", "1.5"),  # out of order
        _trade(7, "0"),
        _trade(8, "0.0015"),
        [1, 2, 3],
    ]
    pong_times: list[float] = []

    async def vendor(connection: websockets.ServerConnection) -> None:
        pong_times.append(await asyncio.wait_for(await connection.ping(), 5))
        for frame in frames:
            await connection.send(frame if isinstance(frame, str) else json.dumps(frame))
        await connection.wait_closed()

    async with websockets.serve(vendor, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]
        stream = BinanceStreamClient(f"ws://127.0.0.1:{port}", ["xrpeth@kline_1m", "xrpeth@trade"])
        events: list[ClosedKline | TradeTick] = []
        async for event in stream.events():
            if not isinstance(event, StreamConnected):
                events.append(event)
            if len(events) == 3:
                break
        await stream.close()

    klines = [e for e in events if isinstance(e, ClosedKline)]
    trades = [e for e in events if isinstance(e, TradeTick)]
    assert [type(e) for e in events] == [ClosedKline, ClosedKline, TradeTick]
    assert [k.candle.open_time for k in klines] == [t0, t0 + 60_000]
    assert klines[1].candle.close == 1.8 and trades[0].price == 0.0015 and trades[0].trade_id == 8
    assert all(math.isfinite(k.candle.close) for k in klines)
    assert len(pong_times) == 1  # the client answered the server's ping
    # The last frame may still be in flight when we stop reading; everything before it is counted.
    assert dict(stream.bad_data.by_category) in (
        {"malformed_json": 1, "bad_value": 4, "duplicate": 1, "out_of_order": 1},
        {"malformed_json": 1, "bad_value": 4, "duplicate": 1, "out_of_order": 1, "bad_shape": 1},
    )


async def test_backoff_keeps_growing_while_connections_die_at_once() -> None:
    async def hang_up(connection: websockets.ServerConnection) -> None:
        await connection.close(code=1011)

    async with websockets.serve(hang_up, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]
        stream = BinanceStreamClient(
            f"ws://127.0.0.1:{port}", ["btcusdt@kline_5m"], backoff_initial_s=0.01, backoff_max_s=0.04
        )
        reasons = []
        async for event in stream.events():
            assert isinstance(event, StreamConnected)
            reasons.append(event.reason)
            if len(reasons) == 5:
                break
        await stream.close()
    assert reasons == ["initial", "reconnect", "reconnect", "reconnect", "reconnect"]
    assert stream.failures == 4  # never reset: none of these connections delivered anything


async def test_a_malformed_base_url_is_a_permanent_error() -> None:
    stream = BinanceStreamClient("http//nowhere", ["btcusdt@kline_5m"])
    with pytest.raises(PermanentExchangeError, match="bad stream base URL"):
        async for _ in stream.events():
            pass
