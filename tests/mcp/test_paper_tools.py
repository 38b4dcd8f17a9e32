"""The Paper Trading tools through the MCP SDK's client over real HTTP: a paper session started by an agent
trades the sim's replayed candles (the market feed at speed `max`), then manual orders, cancels and closes.
Every tool is called by name and its structured output checked for the session's real values; bad arguments
are tool errors that change nothing; a write repeated with its idempotency key has one effect; another
user's trade and order IDs find nothing; an AUTHENTICATED token reads but its SENSITIVE calls are HTTP 403."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import fields
from typing import Any

import pytest
from mcp import Client

from gateway.mcp.tools.paper import FillOut, OrderOut, PositionOut, TradeOut
from tests.mcp.conftest import error_text, mcp_client, mint_token, new_person, raw_call, structured
from tests.sim.conftest import sim_state
from trading.models import Fill, Order, Position, Trade
from worker.main import start_market_feed

SYMBOL = "BTCUSDT"
STREAM = f"{SYMBOL}@5m"
# The feed backfills the first CLOSED_AT_START candles (the analysis' warm-up); the session trades the rest.
SERVED, CLOSED_AT_START = 640, 540
P = "/api/paper-trading"
ROUND_TRIPS = 4


@pytest.fixture
async def mcp_sim(start_sim):
    return await start_sim(max_candles_per_series=SERVED, start_offset_candles=CLOSED_AT_START)


@pytest.fixture
def mcp_settings(mcp_settings, mcp_sim):
    # The feed follows the sim on its own source and is started by the test, after the session subscribed.
    return mcp_settings.model_copy(update={
        "exchange_ws_url": mcp_sim.ws_url, "feed_streams": STREAM, "feed_backfill_candles": SERVED,
        "feed_source": f"test-{uuid.uuid4().hex[:8]}", "feed_autostart": False, "mcp_calls_per_minute": 10_000})


def key() -> str:
    return f"test-{uuid.uuid4().hex}"


async def call(client: Client, tool: str, **arguments: Any) -> Any:
    """A successful call's structured output (a list tool's list unwrapped)."""
    found = structured(await client.call_tool(tool, arguments))
    return found["result"] if set(found) == {"result"} else found


async def refused(client: Client, tool: str, **arguments: Any) -> str:
    return error_text(await client.call_tool(tool, arguments))


async def wait_until(read: Callable[[], Awaitable[Any]], done: Callable[[Any], bool], within_s: float) -> Any:
    deadline = asyncio.get_running_loop().time() + within_s
    while True:
        found = await read()
        if done(found):
            return found
        assert asyncio.get_running_loop().time() < deadline, f"still {found}"
        await asyncio.sleep(0.25)


async def account_state(client: Client) -> dict[str, Any]:
    """What a refused or foreign call must leave alone."""
    return {"open": await call(client, "list_paper_open_trades"),
            "pending": await call(client, "list_paper_pending_orders"),
            "closed": await call(client, "list_paper_closed_trades", limit=500),
            "account": (await call(client, "get_paper_portfolio"))["account"]}


def test_the_engine_records_keep_their_tool_shapes() -> None:
    """The tools' typed records name every field of the Engine's, so none is dropped on the way out."""
    for model, record in ((PositionOut, Position), (OrderOut, Order), (FillOut, Fill), (TradeOut, Trade)):
        assert set(model.model_fields) == {f.name for f in fields(record)}, model


async def test_an_agent_trades_a_paper_session_on_the_replayed_candles(mcp_gateway, mcp_settings, mcp_sim,
                                                                       temporal_client) -> None:
    gw, url = mcp_gateway, mcp_settings.mcp_url
    alice = await new_person(gw)
    token = await mint_token(gw, alice, "sensitive")
    # Set-up by the person: settings change only through the dashboard or tuning, never a paper tool.
    assert (await gw.http.put(P + "/settings", headers=alice.headers,
                              json={"strategy": {"min_agree": 1}})).status_code == 200

    async def rest_status() -> dict[str, Any]:
        return (await gw.http.get(P + "/status", headers=alice.headers)).json()

    async with mcp_client(url, token) as agent:
        # Before a start: nothing to analyse, and reads create nothing.
        assert "rejected" in await refused(agent, "trigger_paper_analysis", idempotency_key=key())
        assert "not found" in await refused(agent, "close_paper_trade", trade_id=1, idempotency_key=key())

        # Start; the same key again answers the first result, another key is refused while it runs.
        start_key = key()
        started = await call(agent, "start_paper_trading", symbols=["btcusdt"], interval="5m",
                             idempotency_key=start_key)
        assert (started["status"], started["symbols"], started["interval"]) == ("running", [SYMBOL], "5m")
        assert started["session_id"] == f"session:{alice.user_id}:paper" and started["exists"] is True
        assert await call(agent, "start_paper_trading", symbols=["btcusdt"], interval="5m",
                          idempotency_key=start_key) == started
        assert "rejected" in await refused(agent, "start_paper_trading", idempotency_key=key())
        assert "idempotency_key" in await refused(agent, "start_paper_trading", idempotency_key="short")

        # The feed replays the sim's candles to the session; once the sim served them all, stop the feed.
        feed = await start_market_feed(temporal_client, mcp_settings)
        try:
            sim = await wait_until(lambda: sim_state(mcp_sim), lambda s: all(
                x["closed_candles"] >= SERVED - 1 for x in s["series"] if x["market"] == "spot"), 60)
            last = max(x["last_closed_open_time"] for x in sim["series"] if x["market"] == "spot")
            await wait_until(rest_status, lambda s: s["last_open_time"].get(STREAM, 0) >= last - 300_000
                             and s["queued"] == 0, 60)
        finally:
            await feed.terminate("test over")
        await asyncio.sleep(1.0)
        status = await wait_until(rest_status, lambda s: s["queued"] == 0, 30)

        # Reads of the replay.
        assert await call(agent, "get_paper_status") == status
        processed, last_open = status["candles_processed"], status["last_open_time"][STREAM]
        assert processed >= (SERVED - CLOSED_AT_START) // 2, status
        page = await call(agent, "get_paper_signals_history", limit=5)
        assert len(page["items"]) == 5 and page["items"][0]["open_time"] == last_open
        assert page["next_before"] == page["items"][-1]["open_time"]
        older = await call(agent, "get_paper_signals_history", limit=5, before=page["next_before"])
        assert older["items"][0]["open_time"] < page["next_before"]
        [latest] = await call(agent, "get_paper_latest_signals")
        assert latest["open_time"] == last_open and latest["symbol"] == SYMBOL and latest["verdicts"]
        decisions = await call(agent, "list_paper_decisions", limit=200)
        assert all(d["direction"] in ("long", "short") and d["symbol"] == SYMBOL for d in decisions)
        assert any(d["opened"] for d in decisions), decisions
        equity = await call(agent, "get_paper_equity_history")
        assert len(equity) >= processed and equity[-1]["time"] == status["market_time"]
        assert [p["time"] for p in equity] == sorted(p["time"] for p in equity)
        assert len(await call(agent, "get_paper_equity_history", limit=10)) == 10
        analysis_key = key()
        triggered = await call(agent, "trigger_paper_analysis", idempotency_key=analysis_key)
        assert [a["open_time"] for a in triggered["analyses"]] == [last_open]
        assert triggered["analyses"][0]["analysis_key"] == latest["analysis_key"]
        assert await call(agent, "trigger_paper_analysis", idempotency_key=analysis_key) == triggered
        assert (await call(agent, "get_paper_status"))["candles_processed"] == processed, "the analysis traded"

        # Close what the signals left open: it moves to the closed trades.
        for position in await call(agent, "list_paper_open_trades"):
            closed = await call(agent, "close_paper_trade", trade_id=position["trade_id"], idempotency_key=key())
            assert closed["id"] == position["trade_id"] and closed["close_reason"] == "manual"
        assert await call(agent, "list_paper_open_trades") == []

        # A market order: one position, however often the same call is retried.
        order_key = key()
        placed = await call(agent, "place_paper_order", symbol="btcusdt", side="long", quantity=0.01,
                            idempotency_key=order_key)
        assert placed["order"] is None and placed["trades"] == []
        [fill] = placed["fills"]
        assert (fill["symbol"], fill["side"], fill["opens"], fill["quantity"]) == (SYMBOL, "long", True, 0.01)
        assert await call(agent, "place_paper_order", symbol="btcusdt", side="long", quantity=0.01,
                          idempotency_key=order_key) == placed
        [position] = await call(agent, "list_paper_open_trades")
        assert (position["quantity"], position["entry_price"], position["side"]) == (0.01, fill["price"], "long")
        portfolio = await call(agent, "get_paper_portfolio")
        assert portfolio["positions"] == [position] and portfolio["account"]["open_positions"] == 1
        assert portfolio["account"]["margin_in_use"] > 0 and portfolio["session_id"] == status["session_id"]

        # A resting limit order far below the price.
        resting = await call(agent, "place_paper_order", symbol=SYMBOL, side="long", quantity=0.02,
                             order_type="limit", limit_price=round(fill["price"] * 0.5, 1), idempotency_key=key())
        order = resting["order"]
        assert resting["fills"] == [] and order["type"] == "limit" and order["reserved_margin"] > 0
        assert await call(agent, "list_paper_pending_orders") == [order]
        assert (await call(agent, "get_paper_portfolio"))["account"]["pending_orders"] == 1

        # Bad arguments and refused orders: tool errors, nothing changed.
        before = await account_state(agent)
        good = {"symbol": SYMBOL, "side": "long", "quantity": 0.01}
        for bad in ({"quantity": 0}, {"quantity": -1}, {"side": "up"}, {"order_type": "iceberg"},
                    {"symbol": "BTC/USDT"}, {"limit_price": -5.0}):
            assert await refused(agent, "place_paper_order", **{**good, **bad, "idempotency_key": key()})
        assert "limit_price" in await refused(agent, "place_paper_order", **good, order_type="limit",
                                              idempotency_key=key())
        assert "symbol" in await refused(agent, "place_paper_order", **{**good, "symbol": "ETHUSDT"},
                                         idempotency_key=key())
        assert "quantity" in await refused(agent, "place_paper_order", **{**good, "quantity": 10_000.0},
                                           idempotency_key=key())
        assert await refused(agent, "place_paper_order", **good)  # no idempotency key
        assert await refused(agent, "cancel_paper_order", order_id=0, idempotency_key=key())
        assert await refused(agent, "close_paper_trade", trade_id=-3, idempotency_key=key())
        assert await refused(agent, "get_paper_trade_analysis", trade_id=0)
        assert await refused(agent, "list_paper_closed_trades", limit=501)
        assert await refused(agent, "get_paper_equity_history", limit=1)
        assert await refused(agent, "list_paper_decisions", limit=0)
        assert await refused(agent, "get_paper_settings_section", section="risk")
        assert await refused(agent, "list_paper_config_suggestions", tier="PURPLE")
        assert await refused(agent, "set_paper_signal_interval", interval="7m", idempotency_key=key())
        assert "interval" in await refused(agent, "set_paper_signal_interval", interval="5m", idempotency_key=key())
        assert await refused(agent, "set_paper_symbols", symbols=[], idempotency_key=key())
        assert "symbol" in await refused(agent, "set_paper_symbols", symbols=["NOPEUSDT"], idempotency_key=key())
        assert await refused(agent, "check_paper_settings", basic={"lever": 5})
        assert await account_state(agent) == before, "a refused call changed the account"

        # Cancel, once per key; a second cancel finds nothing.
        cancel_key = key()
        cancelled = await call(agent, "cancel_paper_order", order_id=order["id"], idempotency_key=cancel_key)
        assert cancelled["id"] == order["id"] and cancelled["limit_price"] == order["limit_price"]
        assert await call(agent, "cancel_paper_order", order_id=order["id"], idempotency_key=cancel_key) == cancelled
        assert await call(agent, "list_paper_pending_orders") == []
        assert "not found" in await refused(agent, "cancel_paper_order", order_id=order["id"], idempotency_key=key())

        # Close, once per key: the trade moves to the closed trades, with its review.
        close_key = key()
        closed = await call(agent, "close_paper_trade", trade_id=position["trade_id"], idempotency_key=close_key)
        assert (closed["id"], closed["close_reason"], closed["quantity"]) == (position["trade_id"], "manual", 0.01)
        assert await call(agent, "close_paper_trade", trade_id=position["trade_id"],
                          idempotency_key=close_key) == closed
        assert await call(agent, "list_paper_open_trades") == []
        assert "not found" in await refused(agent, "close_paper_trade", trade_id=position["trade_id"],
                                            idempotency_key=key())
        [row] = await call(agent, "list_paper_closed_trades", limit=1)
        assert row["trade_id"] == position["trade_id"] and row["trade"] == closed and row["generation"] == 0
        everything = await call(agent, "list_paper_closed_trades", limit=500)
        assert any(r["trade"]["close_reason"] != "manual" for r in everything), "the replay traded nothing"
        assert [r["trade_id"] for r in await call(agent, "list_paper_closed_trades", limit=1, offset=1)] == [
            everything[1]["trade_id"]]
        review = await call(agent, "get_paper_trade_analysis", trade_id=closed["id"])
        assert review["review"]["close_reason"] == "manual" and review["review"]["manual_entry"] is True
        assert review["review"]["net_pnl"] == closed["net_pnl"]
        reviews = await call(agent, "list_paper_trade_analyses", limit=500)
        assert [r["trade_id"] for r in reviews] == [r["trade_id"] for r in everything]
        assert "not found" in await refused(agent, "get_paper_trade_analysis", trade_id=10_000)

        # Quick round trips, whose fees dwarf their gross PnL: the fee rule suggests stronger signals.
        for _ in range(ROUND_TRIPS):
            await call(agent, "place_paper_order", symbol=SYMBOL, side="long", quantity=2.0, idempotency_key=key())
            [trip] = await call(agent, "list_paper_open_trades")
            await call(agent, "close_paper_trade", trade_id=trip["trade_id"], idempotency_key=key())
        everything = await call(agent, "list_paper_closed_trades", limit=500)

        # Settings: read and checked, never written here.
        settings = await call(agent, "get_paper_settings")
        assert settings["strategy"]["min_agree"] == 1 and settings["basic"]["leverage"] == 10
        basic = await call(agent, "get_paper_settings_section", section="basic")
        assert basic["settings"] == settings["basic"] and basic["version"] == settings["version"]
        assert (await call(agent, "get_paper_settings_section", section="indicators"))["settings"] == \
            settings["indicators"]
        catalog = {s["path"]: s for s in await call(agent, "get_paper_settings_catalog")}
        assert catalog["leverage"]["section"] == "basic" and catalog["leverage"]["minimum"] == 1
        assert catalog["min_agree"]["section"] == "strategy" and "rsi.length" in catalog
        check = await call(agent, "check_paper_settings", basic={"leverage": 0})
        assert (check["valid"], check["field"]) == (False, "leverage") and check["reason"]
        assert (await call(agent, "check_paper_settings", strategy={"min_agree": 9}))["field"] == "min_agree"
        assert await call(agent, "check_paper_settings", basic={"slippage_bps": 2.0}) == {
            "valid": True, "field": None, "reason": None}
        assert (await call(agent, "get_paper_settings")) == settings, "a check changed the settings"
        tools = {t.name for t in (await agent.list_tools()).tools}
        assert not {"update_paper_settings", "put_paper_settings", "update_settings"} & tools

        # Suggestions over the account's closed trades.
        suggestion_set = await call(agent, "get_paper_config_suggestions")
        assert suggestion_set["session_id"] == status["session_id"] and suggestion_set["generation"] == 0
        assert suggestion_set["trades_considered"] == suggestion_set["metrics"]["trades"] == len(everything)
        suggestions = await call(agent, "list_paper_config_suggestions")
        assert suggestions == suggestion_set["suggestions"]
        assert {(s["rule"], s["parameter"], s["tier"]) for s in suggestions} >= {
            ("fees_eat_profit", "min_confidence", "NONE")}, suggestions
        assert await call(agent, "list_paper_config_suggestions", tier="NONE") == [
            s for s in suggestions if s["tier"] == "NONE"]
        assert await call(agent, "list_paper_config_suggestions", tier="RED") == []

        # Symbols and interval.
        symbols = await call(agent, "get_paper_symbols")
        assert (symbols["symbols"], symbols["interval"], symbols["status"]) == ([SYMBOL], "5m", "running")
        assert symbols["source"] == mcp_settings.market_source
        assert await call(agent, "set_paper_symbols", symbols=["btcusdt"], idempotency_key=key()) == symbols
        interval_key = key()
        moved = await call(agent, "set_paper_signal_interval", interval="15m", idempotency_key=interval_key)
        assert moved["interval"] == "15m" and moved["settings_version"] > status["settings_version"]
        assert await call(agent, "set_paper_signal_interval", interval="15m", idempotency_key=interval_key) == moved
        assert "interval" in await refused(agent, "set_paper_signal_interval", interval="15m", idempotency_key=key())
        assert (await call(agent, "get_paper_symbols"))["interval"] == "15m"

        # Something for the reset to undo: a position and a resting order, then stop (once per key).
        await call(agent, "place_paper_order", symbol=SYMBOL, side="short", quantity=0.01, idempotency_key=key())
        await call(agent, "place_paper_order", symbol=SYMBOL, side="short", quantity=0.01, order_type="limit",
                   limit_price=round(fill["price"] * 2, 1), idempotency_key=key())
        stop_key = key()
        stopped = await call(agent, "stop_paper_trading", idempotency_key=stop_key)
        assert stopped["status"] == "stopped"
        assert await call(agent, "stop_paper_trading", idempotency_key=stop_key) == stopped
        assert "rejected" in await refused(agent, "stop_paper_trading", idempotency_key=key())
        assert "reduce_only" in await refused(agent, "place_paper_order", **good, idempotency_key=key())
        assert len(await call(agent, "list_paper_open_trades")) == 1, "stopping closed a position"

        # Reset, once per key: a fresh account; the earlier account's trades stay under generation 0.
        reset_key = key()
        reset = await call(agent, "reset_paper_account", idempotency_key=reset_key)
        assert [o["side"] for o in reset["cancelled_orders"]] == ["short"]
        assert [(t["side"], t["close_reason"]) for t in reset["closed_trades"]] == [("short", "manual")]
        assert (reset["status"]["status"], reset["status"]["generation"]) == ("new", 1)
        assert await call(agent, "reset_paper_account", idempotency_key=reset_key) == reset
        assert (await call(agent, "get_paper_status"))["generation"] == 1, "a repeated reset reset again"
        fresh = await call(agent, "get_paper_portfolio")
        assert fresh["account"]["equity"] == 10_000.0 and fresh["positions"] == []
        assert await call(agent, "list_paper_pending_orders") == []
        assert await call(agent, "list_paper_closed_trades", generation=1) == []
        assert len(await call(agent, "list_paper_closed_trades", generation=0, limit=500)) == len(everything) + 1


async def test_another_users_ids_find_nothing_and_an_authenticated_token_only_reads(mcp_gateway,
                                                                                     mcp_settings) -> None:
    gw, url = mcp_gateway, mcp_settings.mcp_url
    alice, bob = await new_person(gw), await new_person(gw)
    alice_token, bob_token = await mint_token(gw, alice, "sensitive"), await mint_token(gw, bob, "sensitive")
    reader = await mint_token(gw, alice, "authenticated")

    async with mcp_client(url, alice_token) as agent, mcp_client(url, bob_token) as other:
        # Alice's session: a closed trade, an open one and a resting order (manual orders fill at the sim's price).
        await call(agent, "start_paper_trading", idempotency_key=key())
        first = await call(agent, "place_paper_order", symbol=SYMBOL, side="long", quantity=0.01,
                           idempotency_key=key())
        [opened] = await call(agent, "list_paper_open_trades")
        closed = await call(agent, "close_paper_trade", trade_id=opened["trade_id"], idempotency_key=key())
        await call(agent, "place_paper_order", symbol=SYMBOL, side="short", quantity=0.01, idempotency_key=key())
        resting = await call(agent, "place_paper_order", symbol=SYMBOL, side="short", quantity=0.01,
                             order_type="limit", limit_price=round(first["fills"][0]["price"] * 2, 1),
                             idempotency_key=key())
        [still_open] = await call(agent, "list_paper_open_trades")
        alice_before = await account_state(agent)

        # Bob, with a session of his own, finds none of Alice's IDs, and changes nothing of hers.
        await call(other, "start_paper_trading", idempotency_key=key())
        bob_before = await account_state(other)
        assert bob_before["open"] == bob_before["pending"] == bob_before["closed"] == []
        for tool, arguments in (("close_paper_trade", {"trade_id": still_open["trade_id"]}),
                                ("cancel_paper_order", {"order_id": resting["order"]["id"]})):
            assert "not found" in await refused(other, tool, **arguments, idempotency_key=key())
        assert "not found" in await refused(other, "get_paper_trade_analysis", trade_id=closed["id"])
        assert await account_state(agent) == alice_before
        assert await account_state(other) == bob_before
        assert (await call(other, "get_paper_status"))["session_id"] == f"session:{bob.user_id}:paper"

    # An AUTHENTICATED token reads Alice's session; each SENSITIVE tool is HTTP 403 before it runs.
    async with mcp_client(url, reader) as watcher:
        assert await account_state(watcher) == alice_before
        assert (await call(watcher, "get_paper_status"))["status"] == "running"
    writes = {"start_paper_trading": {}, "stop_paper_trading": {}, "reset_paper_account": {},
              "place_paper_order": {"symbol": SYMBOL, "side": "long", "quantity": 0.01},
              "cancel_paper_order": {"order_id": resting["order"]["id"]},
              "close_paper_trade": {"trade_id": still_open["trade_id"]}, "set_paper_symbols": {"symbols": [SYMBOL]},
              "set_paper_signal_interval": {"interval": "15m"}, "trigger_paper_analysis": {}}
    for tool, arguments in writes.items():
        reply = await raw_call(url, reader, tool, {**arguments, "idempotency_key": key()})
        assert reply.status_code == 403 and reply.json()["error"] == "insufficient_scope", (tool, reply.text)
    async with mcp_client(url, alice_token) as agent:
        assert await account_state(agent) == alice_before
