"""The PUBLIC tools (health and market data) and the one SENSITIVE market tool, through the SDK's client:
the figures are the stored candles' and the sim exchange's; bad arguments are tool errors."""

from __future__ import annotations

import pytest
from pydantic import SecretStr

from activities.binance.key_vault import new_master_key_text
from activities.db import ensure_schema
from activities.market_store import set_latest_price, store_candles
from core.datafiles import load_candles
from tests.mcp.conftest import error_text, mcp_client, mint_token, new_person, raw_call, structured

BTC_FILE = "data/candles/BTCUSDT-5m-2023-01.csv.gz"


@pytest.fixture
async def public_settings(settings, jwt_private_pem, start_sim, mongo_client):
    sim = await start_sim(max_candles_per_series=300, symbols=("BTCUSDT", "ETHBTC", "LTCBTC"))
    db = mongo_client[settings.mongo_database]
    await ensure_schema(db)
    candles = load_candles(BTC_FILE)[:1200]
    first_hour = next(i for i, c in enumerate(candles) if c.open_time % 3_600_000 == 0)
    candles = candles[first_hour:first_hour + 600]
    await store_candles(db, candles, "5m", "sim")
    await set_latest_price(db, "sim", "BTCUSDT", candles[-1].close, candles[-1].close_time)
    return settings.model_copy(update={
        "jwt_private_key": SecretStr(jwt_private_pem), "master_key": SecretStr(new_master_key_text()),
        "exchange_rest_url": sim.rest_url, "exchange_futures_url": sim.rest_url, "exchange_ws_url": sim.ws_url,
        "sim_exchange_port": sim.port}), candles


async def test_health_and_market_tools_answer_from_the_real_stores(public_settings, run_gateway) -> None:
    settings, candles = public_settings
    async with run_gateway(settings) as gw:
        token = await mint_token(gw, await new_person(gw), "public")
        async with mcp_client(settings.mcp_url, token) as client:
            health = structured(await client.call_tool("get_health", {}))
            assert health["dependencies"]["temporal"]["status"] == "ok"
            assert health["dependencies"]["mongodb"]["status"] == "ok"
            system = structured(await client.call_tool("get_system_info", {}))
            assert system["exchange"] == "sim" and system["temporal_namespace"] == settings.temporal_namespace
            assert structured(await client.call_tool("ping", {}))["pong"] is True

            last = candles[-1]
            prices = structured(await client.call_tool("get_market_prices", {}))["result"]
            assert prices == [{"symbol": "BTCUSDT", "price": last.close, "time": last.close_time}]
            assert structured(await client.call_tool("get_price", {"symbol": "btcusdt"}))["price"] == last.close
            [item] = structured(await client.call_tool("get_market_overview", {}))["result"]
            day = candles[-288:]
            assert item["high_24h"] == max(c.high for c in day) and item["low_24h"] == min(c.low for c in day)

            hourly = structured(await client.call_tool("get_market_candles", {
                "symbol": "BTCUSDT", "timeframe": "1h", "limit": 3}))
            assert hourly["source_interval"] == "5m" and len(hourly["candles"]) == 3
            assert hourly["candles"][-1]["close"] == last.close
            five = structured(await client.call_tool("get_market_candles", {
                "symbol": "BTCUSDT", "timeframe": "5m", "limit": 2, "end": candles[-2].open_time}))
            assert [c["open_time"] for c in five["candles"]] == [c.open_time for c in candles[-3:-1]]
            chart = structured(await client.call_tool("get_chart_data", {
                "symbol": "BTCUSDT", "timeframe": "5m", "indicators": ["rsi", "bollinger"], "limit": 50}))
            assert len(chart["candles"]) == 50
            assert any(name.startswith("rsi") for name in chart["indicators"])
            assert all(len(v) == 50 for v in chart["indicators"].values())
            default_chart = structured(await client.call_tool("get_chart_data", {"symbol": "BTCUSDT", "limit": 5}))
            assert any(name.startswith("macd") for name in default_chart["indicators"])

            listed = structured(await client.call_tool("list_exchange_symbols", {"quote_asset": "USDT"}))["result"]
            assert "BTCUSDT" in {s["symbol"] for s in listed}
            assert all(s["quote_asset"] == "USDT" for s in listed)
            filters = structured(await client.call_tool("get_symbol_filters", {"symbol": "BTCUSDT"}))
            assert filters["status"] == "TRADING" and filters["tick_size"] > 0 and filters["min_notional"] > 0

            # Bad arguments are tool errors the model can read, never a crash.
            for tool, arguments, needle in (
                    ("get_market_candles", {"symbol": "NOPE"}, "no market data"),
                    ("get_market_candles", {"symbol": "BTC-USDT"}, "pattern"),
                    ("get_market_candles", {"symbol": "BTCUSDT", "timeframe": "7m"}, "timeframe"),
                    ("get_market_candles", {"symbol": "BTCUSDT", "start": 10, "end": 5}, "after"),
                    ("get_chart_data", {"symbol": "BTCUSDT", "indicators": ["magic"]}, "magic"),
                    ("get_symbol_filters", {"symbol": "NOPEUSDT"}, "NOPEUSDT"),
                    ("get_price", {"symbol": "ETHUSDT"}, "not found")):
                assert needle in error_text(await client.call_tool(tool, arguments)), (tool, arguments)

        # add_symbol is SENSITIVE: refused to this token with the scope it needs.
        reply = await raw_call(settings.mcp_url, token, "add_symbol", {"symbol": "ETHUSDT",
                                                                        "idempotency_key": "add-symbol-1"})
        assert reply.status_code == 403 and "mcp:sensitive" in reply.headers["www-authenticate"]


async def test_add_symbol_extends_the_paper_session_once(public_settings, run_gateway, temporal_client,
                                                          mongo_client) -> None:
    from core.contracts import TASK_QUEUE_TRADING
    from tests.conftest import worker_running

    settings, _ = public_settings
    settings = settings.model_copy(update={"task_queue_prefix": "mcp-add-symbol-"})
    db = mongo_client[settings.mongo_database]
    async with worker_running(temporal_client, settings, db, "add-symbol", TASK_QUEUE_TRADING), \
            run_gateway(settings) as gw:
        person = await new_person(gw)
        # A spot session on BTC-quoted pairs: the sim lists one USDT perpetual but several spot pairs.
        started = await gw.http.post("/api/paper-trading/start", headers=person.headers, json={
            "symbols": ["ETHBTC"], "interval": "5m",
            "basic": {"market": "spot", "account_currency": "BTC", "leverage": 1}})
        assert started.status_code in (200, 201), started.text
        async with mcp_client(settings.mcp_url, await mint_token(gw, person, "sensitive")) as client:
            args = {"symbol": "ltcbtc", "idempotency_key": "add-symbol-0001"}
            added = structured(await client.call_tool("add_symbol", args))
            assert added["symbols"] == ["ETHBTC", "LTCBTC"]
            assert structured(await client.call_tool("add_symbol", args))["symbols"] == ["ETHBTC", "LTCBTC"]
            again = structured(await client.call_tool("add_symbol", {"symbol": "LTCBTC",
                                                                      "idempotency_key": "add-symbol-0002"}))
            assert again["symbols"] == ["ETHBTC", "LTCBTC"]
            assert "NOPEUSDT" in error_text(await client.call_tool("add_symbol", {
                "symbol": "NOPEUSDT", "idempotency_key": "add-symbol-0003"}))
        symbols = (await gw.http.get("/api/paper-trading/symbols", headers=person.headers)).json()
        assert symbols["symbols"] == ["ETHBTC", "LTCBTC"]
