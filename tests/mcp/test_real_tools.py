"""The Real Trading tools over the MCP SDK's client, against the sim exchange (real gateway, workers, Temporal).

The critical path end to end: an agent's real order is only a pending confirmation, nothing reaches the
exchange until the owner confirms it in the dashboard's 2-step way, and no agent can confirm it by any
route. Then every read, the risk-reducing tools acting at once, other users' orders not found, bad
arguments as tool errors, and the real session steered and tuned by an agent as far as an agent may."""

from __future__ import annotations

from typing import Any

import pytest
from mcp.types import ElicitResult

from sim.exchange import SimExchangeServer
from tests.real.conftest import order_requests, sim_call

from .conftest import Person, error_text, mcp_client, mint_token, new_person, raw_call, structured

SYMBOL = "BTCUSDT"
ORDERS = "/api/real-trading/orders"


async def save_futures_key(gw: Any, sim: SimExchangeServer, person: Person) -> None:
    """A futures key provisioned on the sim (its USDT is the futures and the spot wallet), saved through the API."""
    key = await sim_call(sim, "POST", "/sim/keys", json={"enable_futures": True,
                                                         "balances": {"USDT": "100000.00000000"}})
    saved = await gw.http.post("/api/settings/api-keys", headers=person.headers, json={
        "label": "futures", "api_key": key["api_key"], "api_secret": key["api_secret"]})
    assert saved.status_code == 201, saved.text


async def owner_confirms(gw: Any, person: Person, order_id: str) -> dict[str, Any]:
    """The dashboard's 2-step way: a confirmation secret for this human session, then the confirmation of the
    terms shown (an order an agent requested has no secret until its owner asks for one)."""
    issued = await gw.http.post(f"{ORDERS}/{order_id}/confirmation-token", headers=person.headers)
    assert issued.status_code == 200, issued.text
    body = issued.json()
    done = await gw.http.post(f"{ORDERS}/{order_id}/confirm", headers=person.headers,
                              json={"token": body["confirmation_token"], "terms_digest": body["order"]["terms_digest"]})
    assert done.status_code == 200, done.text
    return done.json()


def market_buy(key: str, quantity: float = 0.01) -> dict[str, Any]:
    return {"symbol": SYMBOL, "side": "BUY", "quantity": quantity, "leverage": 5, "idempotency_key": key}


async def test_an_agents_order_waits_for_its_owner_and_risk_reduction_acts_at_once(mcp_gateway, mcp_sim):
    gw, url, sim = mcp_gateway, mcp_gateway.settings.mcp_url, mcp_sim
    alice, bob = await new_person(gw), await new_person(gw)
    await save_futures_key(gw, sim, alice)
    critical, sensitive = await mint_token(gw, alice, "critical"), await mint_token(gw, alice, "sensitive")
    async with mcp_client(url, critical) as agent, mcp_client(url, sensitive) as helper, \
            mcp_client(url, await mint_token(gw, alice, "authenticated")) as reader, \
            mcp_client(url, await mint_token(gw, bob, "critical")) as bobs_agent:
        served = {t.name: t for t in (await agent.list_tools()).tools}
        assert not [name for name in served if "confirm" in name or "approve" in name]
        assert served["place_real_order"].meta["durabot/tier"] == "critical"
        assert served["close_real_position"].meta["durabot/tier"] == "sensitive"
        assert served["flatten_real_positions"].annotations.destructive_hint is True

        # The agent requests: a pending confirmation, and nothing reaches the exchange.
        asked = structured(await agent.call_tool("place_real_order", market_buy("agent-order-0001")))
        order_id = asked["confirmation_id"]
        assert (asked["status"], asked["awaiting_confirmation"]) == ("AWAITING_CONFIRMATION", True)
        assert asked["confirm_channels"] == ["dashboard", "telegram"] and asked["confirm_by_ms"]
        assert "dashboard" in asked["where_to_confirm"] and "/real-trading" in asked["where_to_confirm"]
        summary = asked["order"]["summary"]
        assert summary["notional"] == pytest.approx(0.01 * summary["expected_price"]) and summary["leverage"] == 5
        assert asked["order"]["source"] == "mcp" and "confirmation_token" not in str(asked)
        repeated = structured(await agent.call_tool("place_real_order", market_buy("agent-order-0001")))
        assert repeated["confirmation_id"] == order_id
        assert await order_requests(sim) == []

        # No agent confirms it: no tool does, the REST route refuses its token, a sensitive grant cannot even ask.
        by_agent = await gw.bare.post(f"{ORDERS}/{order_id}/confirm", headers={"Authorization": f"Bearer {critical}"},
                                      json={"token": "x" * 20, "terms_digest": asked["order"]["terms_digest"]})
        assert by_agent.status_code == 401, by_agent.text
        token_by_agent = await gw.bare.post(f"{ORDERS}/{order_id}/confirmation-token",
                                            headers={"Authorization": f"Bearer {critical}"})
        assert token_by_agent.status_code == 401, token_by_agent.text
        scope = await raw_call(url, sensitive, "place_real_order", market_buy("sensitive-order-1"))
        assert scope.status_code == 403 and scope.json()["error"] == "insufficient_scope", scope.text
        assert "insufficient_scope" in scope.headers["www-authenticate"]
        assert (await agent.call_tool("confirm_real_order", {"order_id": order_id})).is_error
        # A client that can ask its person shows them the request; their "yes" there confirms nothing.
        asked_person: list[str] = []

        async def says_yes(context: Any, params: Any) -> ElicitResult:
            asked_person.append(params.message)
            return ElicitResult(action="accept", content={"understood": True})

        async with mcp_client(url, critical, elicitation_callback=says_yes) as asking_agent:
            shown = structured(await asking_agent.call_tool("place_real_order", market_buy("agent-order-0009")))
        assert (shown["status"], shown["awaiting_confirmation"]) == ("AWAITING_CONFIRMATION", True)
        assert len(asked_person) == 1 and "BUY 0.01 BTCUSDT" in asked_person[0], asked_person
        assert "confirms nothing" in asked_person[0]
        cancelled = structured(await helper.call_tool("cancel_real_order", {
            "order_id": shown["confirmation_id"], "idempotency_key": "cancel-shown-0009"}))
        assert cancelled["status"] == "CANCELED"
        pending = structured(await reader.call_tool("list_real_orders", {"open_only": True}))["result"]
        assert [(o["order_id"], o["status"]) for o in pending] == [(order_id, "AWAITING_CONFIRMATION")]
        assert await order_requests(sim) == []

        # The owner confirms in the dashboard's way: placed exactly once.
        confirmed = await owner_confirms(gw, alice, order_id)
        assert (confirmed["status"], confirmed["confirmed_by"]) == ("FILLED", "dashboard"), confirmed
        assert len(await order_requests(sim)) == 1
        again = structured(await agent.call_tool("place_real_order", market_buy("agent-order-0001")))
        assert (again["confirmation_id"], again["status"], again["awaiting_confirmation"]) == (
            order_id, "FILLED", False)
        assert len(await order_requests(sim)) == 1

        # Every read, with the values the exchange and Durabot hold.
        one = structured(await reader.call_tool("get_real_order", {"order_id": order_id}))
        assert (one["status"], one["executed_qty"], one["terms"]["side"]) == ("FILLED", 0.01, "BUY")
        listed = structured(await reader.call_tool("list_real_orders", {}))["result"]
        assert [(o["order_id"], o["status"]) for o in listed] == [(shown["confirmation_id"], "CANCELED"),
                                                                  (order_id, "FILLED")]
        [position] = structured(await reader.call_tool("get_real_positions", {}))["result"]
        assert (position["symbol"], position["position_amt"]) == (SYMBOL, 0.01) and position["mark_price"] > 0
        wallet = structured(await reader.call_tool("get_real_balance", {}))
        assert 99_000 < wallet["total_wallet_balance"] <= 100_000
        assert [a["asset"] for a in wallet["assets"]] == ["USDT"]
        spot = structured(await reader.call_tool("get_spot_balance", {}))
        # A futures-only key: the spot wallet is there, spot trading is not enabled for it.
        assert spot["can_trade"] is False and {b["asset"]: b["free"] for b in spot["balances"]}["USDT"] == 100_000
        [fill] = structured(await reader.call_tool("get_real_closed_trades", {"symbol": SYMBOL}))["result"]
        assert (fill["side"], fill["qty"], fill["symbol"]) == ("BUY", 0.01, SYMBOL) and fill["commission"] > 0
        report = structured(await reader.call_tool("get_reconciliation_report", {}))
        assert (report["ok"], report["differences"]) == (True, []), report
        assert structured(await reader.call_tool("get_real_open_orders", {})) == {"orders": [], "algo_orders": []}

        # Lowering risk acts at once on the sensitive tier: a first stop, a close (once under one key).
        stop = round(position["mark_price"] * 0.9, 1)
        stop_args = {"symbol": SYMBOL, "stop_loss": stop, "idempotency_key": "first-stop-0001"}
        protected = structured(await helper.call_tool("set_real_protection", stop_args))
        assert protected["take_profit"] is None and not protected["stop_loss"]["awaiting_confirmation"]
        assert protected["stop_loss"]["status"] == "OPEN", protected
        assert float(protected["stop_loss"]["order"]["terms"]["trigger_price"]) == pytest.approx(stop)
        algo = structured(await reader.call_tool("get_real_open_orders", {}))["algo_orders"]
        assert [(a["order_type"], a["close_position"]) for a in algo] == [("STOP_MARKET", True)]
        repeated_stop = structured(await helper.call_tool("set_real_protection", stop_args))["stop_loss"]
        assert repeated_stop["confirmation_id"] == protected["stop_loss"]["confirmation_id"]
        assert len(await order_requests(sim)) == 2
        # Removing that live stop would raise the risk: refused to the agent, whatever its tier.
        stop_id = protected["stop_loss"]["confirmation_id"]
        for tokened in (helper, agent):
            removal = await tokened.call_tool("cancel_real_order", {"order_id": stop_id,
                                                                    "idempotency_key": "cancel-stop-0001"})
            assert "live stop raises its risk" in error_text(removal)
        assert [a["order_type"] for a in structured(await reader.call_tool("get_real_open_orders", {}))[
            "algo_orders"]] == ["STOP_MARKET"]
        close_args = {"symbol": SYMBOL, "idempotency_key": "close-btc-0001"}
        closed = structured(await helper.call_tool("close_real_position", close_args))
        assert (closed["status"], closed["terms"]["side"], closed["terms"]["reduce_only"]) == ("FILLED", "SELL", True)
        assert structured(await helper.call_tool("close_real_position", close_args))["order_id"] == closed["order_id"]
        assert len(await order_requests(sim)) == 3
        assert structured(await reader.call_tool("get_real_positions", {}))["result"] == []
        assert structured(await reader.call_tool("get_real_open_orders", {}))["algo_orders"] == []

        # Cancelling a pending order sends nothing, once; another user's order does not exist for Bob's agent.
        second = structured(await agent.call_tool("place_real_order", market_buy("agent-order-0002", 0.02)))
        for name in ("get_real_order", "cancel_real_order"):
            args = {"order_id": second["confirmation_id"], "idempotency_key": "bob-cancel-0001"}
            if name == "get_real_order":
                args.pop("idempotency_key")
            assert "not found" in error_text(await bobs_agent.call_tool(name, args))
        assert structured(await bobs_agent.call_tool("list_real_orders", {}))["result"] == []
        cancel_args = {"order_id": second["confirmation_id"], "reason": "changed plan",
                       "idempotency_key": "cancel-0002"}
        cancelled = structured(await helper.call_tool("cancel_real_order", cancel_args))
        assert cancelled["status"] == "CANCELED"
        assert structured(await helper.call_tool("cancel_real_order", cancel_args))["status"] == "CANCELED"
        assert len(await order_requests(sim)) == 3

        # Flattening closes what the owner confirmed, at once.
        third = structured(await agent.call_tool("place_real_order", market_buy("agent-order-0003", 0.02)))
        assert (await owner_confirms(gw, alice, third["confirmation_id"]))["status"] == "FILLED"
        flat = structured(await helper.call_tool("flatten_real_positions", {"idempotency_key": "flatten-0001"}))
        assert [(o["status"], o["terms"]["quantity"], o["terms"]["reduce_only"]) for o in flat["orders"]] == [
            ("FILLED", "0.020", True)]
        assert len(await order_requests(sim)) == 5
        assert structured(await helper.call_tool("flatten_real_positions", {"idempotency_key": "flatten-0001"})) == {
            "orders": []}
        assert len(await order_requests(sim)) == 5

        # Bad arguments are tool errors, and nothing is requested.
        for args in ({**market_buy("bad-order-0001"), "quantity": -1},
                     {**market_buy("bad-order-0002"), "symbol": "NOPEUSDT"},
                     {**market_buy("bad-order-0003"), "order_type": "LIMIT"},
                     {**market_buy("bad-order-0004"), "quantity": 1000.0},
                     {**market_buy("bad-order-0005"), "side": "HOLD"}, market_buy("short")):
            assert (await agent.call_tool("place_real_order", args)).is_error, args
        assert (await reader.call_tool("get_real_order", {"order_id": "no such order!"})).is_error
        assert "no open BTCUSDT position" in error_text(await helper.call_tool("close_real_position", {
            "symbol": SYMBOL, "idempotency_key": "close-btc-0002"}))
        everything = structured(await reader.call_tool("list_real_orders", {}))["result"]
        assert sorted(o["status"] for o in everything) == ["CANCELED"] * 3 + ["FILLED"] * 4, everything
    assert len(await order_requests(sim)) == 5


async def test_an_agent_steers_the_real_session_down_never_up(mcp_gateway, mcp_sim):
    gw, url = mcp_gateway, mcp_gateway.settings.mcp_url
    alice = await new_person(gw)
    await save_futures_key(gw, mcp_sim, alice)
    agent_token = await mint_token(gw, alice, "critical")
    async with mcp_client(url, agent_token) as agent, \
            mcp_client(url, await mint_token(gw, alice, "sensitive")) as helper:
        before = structured(await agent.call_tool("get_real_status", {}))
        assert (before["status"], before["symbols"]) == ("NEW", [])
        assert "not found" in error_text(await agent.call_tool("get_real_settings", {}))
        # The agent requests the start: a RED approval that only Alice approves; nothing trades meanwhile.
        start_args = {"symbols": [SYMBOL], "interval": "5m", "reason": "paper looks good",
                      "idempotency_key": "real-start-0001"}
        refused = await raw_call(url, await mint_token(gw, alice, "sensitive"), "request_real_trading_start",
                                 start_args)
        assert refused.status_code == 403 and refused.json()["error"] == "insufficient_scope"
        requested = structured(await agent.call_tool("request_real_trading_start", start_args))
        approval = requested["approval"]
        assert (approval["tier"], approval["status"], approval["awaiting_approval"]) == ("RED", "AWAITING", True)
        assert "typing its approval text" in approval["where_to_approve"]
        assert approval["proposal"]["proposer"]["kind"] == "agent", approval["proposal"]["proposer"]
        assert structured(await agent.call_tool("request_real_trading_start", start_args))["approval"][
            "approval_id"] == approval["approval_id"]
        number = approval["approval_id"]
        for path in (f"/api/tuning/proposals/{number}/approve-text", f"/api/tuning/proposals/{number}/token"):
            denied = await gw.http.post(path, headers={"Authorization": f"Bearer {agent_token}"},
                                        json={"text": "anything"})
            assert denied.status_code == 401, (path, denied.text)
        status = structured(await agent.call_tool("get_real_status", {}))
        assert (status["status"], status["symbols"], status["interval"]) == ("NEW", [SYMBOL], "5m")
        settings = structured(await helper.call_tool("get_real_settings", {}))
        assert settings["engine_settings"]["leverage"] == 10 and settings["engine_settings"]["market"] == "futures"

        lower = structured(await helper.call_tool("apply_green_adjustment", {
            "parameter": "leverage", "value": 5, "session": "real", "idempotency_key": "real-leverage-1"}))
        assert (lower["tier"], lower["status"], lower["proposal"]["mode"]) == ("NONE", "APPLIED", "real")
        assert structured(await helper.call_tool("get_real_settings", {}))["engine_settings"]["leverage"] == 5
        raised = structured(await agent.call_tool("request_yellow_adjustment", {
            "parameter": "leverage", "value": 8, "session": "real", "reason": "trend is strong",
            "idempotency_key": "real-leverage-2"}))
        assert (raised["tier"], raised["status"], raised["proposal"]["mode"]) == ("YELLOW", "AWAITING", "real")
        assert structured(await helper.call_tool("get_real_settings", {}))["engine_settings"]["leverage"] == 5
        assert structured(await helper.call_tool("get_real_ledger", {"limit": 10}))["result"] == []

        no_entries = structured(await helper.call_tool("stop_real_entries", {"idempotency_key": "stop-entries-1"}))
        assert no_entries["entries_enabled"] is False
        checked = structured(await helper.call_tool("reconcile_real_session", {"idempotency_key": "reconcile-0001"}))
        assert checked["report"] is not None and checked["report"]["ok"] is True, checked["report"]
        stopped = structured(await helper.call_tool("stop_real_session", {
            "flatten_positions": True, "reason": "agent saw trouble", "idempotency_key": "stop-session-1"}))
        assert stopped["entries_enabled"] is False and stopped["positions"] == []
        assert structured(await helper.call_tool("stop_real_session", {
            "flatten_positions": True, "reason": "agent saw trouble", "idempotency_key": "stop-session-1"}))[
            "entries_enabled"] is False
    assert await order_requests(mcp_sim) == []
