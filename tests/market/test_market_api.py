"""Market REST endpoints and the WebSocket fan-out, on a real gateway socket and real SecantusDB."""

from __future__ import annotations

import asyncio
import json

import pytest
import websockets

from activities import events
from activities.db import ensure_schema
from activities.market_store import set_latest_price, store_candles
from core.datafiles import load_candles
from services.event_hub import EventHub, Subscriber
from trading.candle import Candle

BTC_FILE = "data/candles/BTCUSDT-5m-2023-01.csv.gz"


@pytest.fixture
async def market_db(mongo_client, settings):
    db = mongo_client[settings.mongo_database]
    await ensure_schema(db)
    # Aligned on the 1-hour grid, so 12 five-minute candles make each hourly one.
    candles = load_candles(BTC_FILE)[:1200]
    first_hour = next(i for i, c in enumerate(candles) if c.open_time % 3_600_000 == 0)
    candles = candles[first_hour:first_hour + 600]
    await store_candles(db, candles, "5m", "sim")
    await set_latest_price(db, "sim", "BTCUSDT", candles[-1].close, candles[-1].close_time)
    return db, candles


async def test_candles_limit_and_range(settings, market_db, run_gateway):
    _, candles = market_db
    async with run_gateway(settings) as gw:
        http = gw.http
        latest = (await http.get("/api/candles/BTCUSDT/5m", params={"limit": 10})).json()
        ranged = (await http.get("/api/candles/btcusdt/5m", params={
            "from": candles[100].open_time, "to": candles[149].open_time, "limit": 1000})).json()
    assert [c["open_time"] for c in latest["candles"]] == [c.open_time for c in candles[-10:]]
    assert latest["candles"][-1]["close"] == candles[-1].close
    assert [c["open_time"] for c in ranged["candles"]] == [c.open_time for c in candles[100:150]]
    assert ranged["symbol"] == "BTCUSDT"


def _hourly(candles: list[Candle]) -> list[tuple[int, float, float, float, float]]:
    out: dict[int, list[Candle]] = {}
    for c in candles:
        out.setdefault(c.open_time - c.open_time % 3_600_000, []).append(c)
    return [(t, b[0].open, max(x.high for x in b), min(x.low for x in b), b[-1].close)
            for t, b in sorted(out.items()) if b[-1].close_time >= t + 3_600_000]


async def test_larger_timeframes_are_aggregated_from_stored_candles(settings, market_db, run_gateway):
    _, candles = market_db
    async with run_gateway(settings) as gw:
        http = gw.http
        reply = (await http.get("/api/candles/BTCUSDT/1h", params={"limit": 1000})).json()
    assert reply["source_interval"] == "5m"
    got = [(c["open_time"], c["open"], c["high"], c["low"], c["close"]) for c in reply["candles"]]
    assert got == _hourly(candles)
    assert len(got) >= 45


async def test_chart_returns_the_indicators_asked_for(settings, market_db, run_gateway):
    async with run_gateway(settings) as gw:
        http = gw.http
        reply = (await http.get("/api/chart/BTCUSDT/5m", params={"indicators": "rsi,bollinger", "limit": 50})).json()
    assert len(reply["candles"]) == 50
    assert set(reply["indicators"]) == {"rsi", "bb_lower", "bb_mid", "bb_upper", "bb_bandwidth", "bb_percent_b"}
    for values in reply["indicators"].values():
        assert len(values) == 50 and all(v is not None for v in values)
    assert all(0 <= v <= 100 for v in reply["indicators"]["rsi"])


async def test_prices_and_overview(settings, market_db, run_gateway):
    _, candles = market_db
    async with run_gateway(settings) as gw:
        http = gw.http
        prices = (await http.get("/api/prices")).json()
        overview = (await http.get("/api/overview")).json()
    assert prices == [{"symbol": "BTCUSDT", "price": candles[-1].close, "time": candles[-1].close_time}]
    (item,) = overview
    day = candles[-288:]
    assert item["price"] == candles[-1].close
    assert item["high_24h"] == max(c.high for c in day) and item["low_24h"] == min(c.low for c in day)
    assert item["price_change_24h"] == pytest.approx(candles[-1].close - day[0].open)


@pytest.mark.parametrize(("path", "params", "status", "needle"), [
    ("/api/candles/NOPE/5m", {}, 404, "no market data for symbol NOPE"),
    ("/api/candles/BTCUSDT/7m", {}, 422, "timeframe"),
    ("/api/candles/BTCUSDT/5m", {"limit": 0}, 422, "limit"),
    ("/api/candles/BTCUSDT/5m", {"limit": 5000}, 422, "limit"),
    ("/api/candles/BTCUSDT/5m", {"from": 10, "to": 5}, 422, "after"),
    ("/api/candles/BTC-USDT/5m", {}, 422, "symbol"),
    ("/api/chart/BTCUSDT/5m", {"indicators": "rsi,magic"}, 422, "magic"),
])
async def test_bad_market_requests_get_clear_errors(settings, market_db, path, params, status, needle, run_gateway):
    async with run_gateway(settings) as gw:
        http = gw.http
        reply = await http.get(path, params=params)
    assert reply.status_code == status, reply.text
    assert needle in reply.text


async def test_ws_subscriptions_filter_events_and_errors_are_reported(settings, market_db, run_gateway):
    db, _ = market_db
    async with run_gateway(settings):
        async with websockets.connect(f"ws://127.0.0.1:{settings.gateway_port}/ws") as ws:
            assert json.loads(await ws.recv())["type"] == "Connected"
            await ws.send(json.dumps({"type": "Subscribe", "channels": ["MarketData"], "symbols": ["ETHBTC"]}))
            assert json.loads(await ws.recv())["type"] == "Subscribed"
            await ws.send(json.dumps({"type": "Unsubscribe", "channels": ["ChartUpdate"]}))
            assert json.loads(await ws.recv())["data"]["channels"] == ["MarketData"]
            await events.publish(db, [
                events.event_doc(events.MARKET_DATA, "t:1", {"symbol": "BTCUSDT", "price": 1.0}, symbol="BTCUSDT"),
                events.event_doc(events.CHART_UPDATE, "t:2", {"symbol": "ETHBTC"}, symbol="ETHBTC"),
                events.event_doc(events.MARKET_DATA, "t:3", {"symbol": "ETHBTC", "price": 2.0}, symbol="ETHBTC"),
            ])
            message = json.loads(await asyncio.wait_for(ws.recv(), timeout=10))
            assert message["type"] == "MarketData" and message["data"] == {"symbol": "ETHBTC", "price": 2.0}
            await ws.send(json.dumps({"type": "Ping"}))
            assert json.loads(await ws.recv())["type"] == "Pong"
            await ws.send("not json")
            assert json.loads(await ws.recv())["data"]["code"] == "invalid_message"
            await ws.send(json.dumps({"type": "Subscribe", "channels": ["Gossip"]}))
            assert json.loads(await ws.recv())["data"]["code"] == "unknown_channel"
            await ws.send(json.dumps({"type": "Subscribe", "channels": ["TradeExecuted"]}))
            assert json.loads(await ws.recv())["data"]["code"] == "auth_required"


async def test_event_hub_resumes_after_a_restart_without_losing_events(mongo_client, db_name):
    db = mongo_client[db_name]
    await ensure_schema(db)

    def market(key: str) -> dict:
        return events.event_doc(events.MARKET_DATA, key, {"key": key}, symbol="BTCUSDT")

    first = EventHub(db, follower_id="gw-a")
    sub = Subscriber(channels={events.MARKET_DATA})
    first.add(sub)
    await first.start()
    await events.publish(db, [market("before")])
    assert (await asyncio.wait_for(sub.queue.get(), 10))["data"] == {"key": "before"}
    await asyncio.sleep(1.5)  # the follower saves its resume token at least once a second
    await first.stop()

    await events.publish(db, [market(f"down-{i}") for i in range(3)])  # the gateway is down

    second = EventHub(db, follower_id="gw-a")
    resumed = Subscriber(channels={events.MARKET_DATA})
    second.add(resumed)
    await second.start()
    try:
        got = [(await asyncio.wait_for(resumed.queue.get(), 10))["data"]["key"] for _ in range(3)]
    finally:
        await second.stop()
    assert got == ["down-0", "down-1", "down-2"]
    assert resumed.queue.empty(), "an event was delivered twice"


async def test_publish_is_idempotent_by_event_key(mongo_client, db_name):
    db = mongo_client[db_name]
    await ensure_schema(db)
    doc = events.event_doc(events.MARKET_DATA, "same", {"x": 1}, symbol="BTCUSDT")
    assert await events.publish(db, [dict(doc)]) == 1
    assert await events.publish(db, [dict(doc), events.event_doc(events.MARKET_DATA, "other", {}, symbol="X")]) == 1
    assert await db.events.count_documents({}) == 2
    with pytest.raises(ValueError, match="needs a user_id"):
        events.event_doc(events.TRADE_EXECUTED, "k", {})


async def test_bad_input_is_one_422_shape_on_every_route(settings, market_db, run_gateway):
    """Market, auth and paper routes answer bad input alike: {"detail": {"field", "reason"}}, never a
    500 (a number beyond 64 bits once was one) and never the rejected value echoed back."""
    async with run_gateway(settings) as gw:
        http = gw.http
        cases = [
            (await http.get("/api/candles/BTCUSDT/5m", params={"from": "99999999999999999999"}), "from"),
            (await http.get("/api/candles/BTCUSDT/7m"), "timeframe"),
            (await http.get("/api/candles/BTCUSDT/5m", params={"limit": 0}), "limit"),
            (await http.get("/api/chart/BTCUSDT/5m", params={"indicators": "rsi,astrology"}), "indicators"),
            (await http.post("/api/auth/register", json={"email": "not-an-email", "password": "s3cret-typo"}),
             "email"),
            (await http.get("/api/market/symbols", params={"market": "options"}), "market"),
        ]
        schema = (await http.get("/openapi.json")).json()
    for reply, field in cases:
        assert reply.status_code == 422, reply.text
        body = reply.json()
        assert body["detail"]["field"] == field and body["detail"]["reason"], body
        assert "s3cret-typo" not in reply.text and "99999999999999999999" not in reply.text
    # The document declares that shape wherever a 422 can come.
    assert "HTTPValidationError" not in str(schema)
    declared = schema["paths"]["/api/candles/{symbol}/{timeframe}"]["get"]["responses"]["422"]
    assert declared["content"]["application/json"]["schema"]["$ref"] == "#/components/schemas/RejectedOut"
