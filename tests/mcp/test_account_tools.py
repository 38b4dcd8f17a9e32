"""The Monitoring, Settings and Auth tools over the MCP SDK's client: each answers the caller's own data with
real values, none answers an exchange key or secret, bad arguments are tool errors, another user's records
never show, a repeated keyed write has one effect, and a token below a tool's tier is refused with 403."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from mcp.types import CallToolResult

from core.contracts import session_workflow_id
from core.real_session_contracts import real_session_workflow_id
from tests.mcp.conftest import error_text, mcp_client, mint_token, new_person, raw_call, structured
from tests.real.conftest import sim_call

PREFERENCES = {"channels": {"web_push": False, "telegram": True},
               "events": {"trade_executed": True, "bot_status": False, "ai_signal": True, "risk_alert": True,
                          "daily_summary": True}}


def _text(result: CallToolResult) -> str:
    return json.dumps([result.structured_content, [getattr(p, "text", "") for p in result.content]], default=str)


async def _saved_key(gw: Any, sim: Any, person: Any) -> dict[str, Any]:
    """A futures key provisioned on the sim, saved and tested through the API by its owner."""
    key = await sim_call(sim, "POST", "/sim/keys", json={"enable_futures": True, "balances": {"USDT": "5000"}})
    saved = await gw.http.post("/api/settings/api-keys", headers=person.headers,
                               json={"label": "futures", "api_key": key["api_key"], "api_secret": key["api_secret"]})
    assert saved.status_code == 201, saved.text
    tested = await gw.http.post(f"/api/settings/api-keys/{saved.json()['key_id']}/test", headers=person.headers)
    assert tested.status_code == 200 and tested.json()["ok"], tested.text
    return {**key, "key_id": saved.json()["key_id"]}


async def _seed_records(gw: Any, owner: str, other: str) -> None:
    """Rows the workers write (alerts, a closed day): one of each user's, and a shared and a system alert."""
    now = datetime.now(UTC)
    await gw.db.monitoring_alerts.insert_many([
        {"alert_id": f"real-session:{owner}:1", "kind": "real_halted", "severity": "critical", "user_id": owner,
         "session_id": real_session_workflow_id(owner), "message": "halted: stop order refused",
         "created_at": now - timedelta(minutes=3)},
        {"alert_id": f"real-session:{owner}:0", "kind": "real_halted", "severity": "critical", "user_id": owner,
         "message": "halted earlier", "created_at": now - timedelta(hours=2), "resolved_at": now - timedelta(hours=1)},
        {"alert_id": f"real-session:{other}:1", "kind": "real_halted", "severity": "critical", "user_id": other,
         "message": "the other user's", "created_at": now - timedelta(minutes=2)},
        {"alert_id": f"exchange-ban:{uuid.uuid4().hex}", "kind": "exchange_ip_ban", "severity": "critical",
         "message": "the exchange banned this IP until later", "created_at": now - timedelta(minutes=1)},
        {"alert_id": f"feed-subscriber:x:{other}", "kind": "feed_subscriber_failing", "severity": "warning",
         "workflow_id": session_workflow_id(other, "paper"), "message": "names another user's session",
         "created_at": now},
    ])
    day = {"start_equity": 10_000.0, "end_equity": 10_150.0, "daily_return": 0.015, "net_pnl": 150.0, "trades": 3,
           "wins": 2, "steps": 288}
    await gw.db.performance_metrics.insert_many([
        {"session_id": session_workflow_id(owner, "paper"), "user_id": owner, "generation": 0, "date": "2024-03-02",
         **day},
        {"session_id": session_workflow_id(other, "paper"), "user_id": other, "generation": 0, "date": "2024-03-03",
         **day, "net_pnl": -1.0},
    ])


async def test_account_settings_and_monitoring_tools(mcp_gateway, mcp_sim) -> None:
    gw = mcp_gateway
    url = gw.settings.mcp_url
    owner, other = await new_person(gw), await new_person(gw)
    key = await _saved_key(gw, mcp_sim, owner)
    others_key = await _saved_key(gw, mcp_sim, other)
    reader = await mint_token(gw, owner, "authenticated", label="reader")
    writer = await mint_token(gw, owner, "sensitive", label="writer")
    others = await mint_token(gw, other, "sensitive", label="another agent")
    await _seed_records(gw, owner.user_id, other.user_id)
    me = (await gw.http.get("/api/auth/me", headers=owner.headers)).json()

    # A paper position with a stop, so the risk figures have something to measure.
    started = await gw.http.post("/api/paper-trading/start", headers=owner.headers,
                                 json={"symbols": ["BTCUSDT"], "interval": "5m"})
    assert started.status_code == 200, started.text
    order = {"symbol": "BTCUSDT", "side": "long", "order_type": "market", "quantity": 0.01}
    placed = await gw.http.post("/api/paper-trading/orders", headers=owner.headers, json=order)
    assert placed.status_code == 200 and placed.json()["fills"], placed.text
    (opened,) = (await gw.http.get("/api/paper-trading/trades/open", headers=owner.headers)).json()
    assert opened["stop_loss"] is not None

    # The other user's agent calls too: nothing of that may show in the owner's answers.
    async with mcp_client(url, others) as client:
        assert not (await client.call_tool("get_profile", {})).is_error

    answers: list[CallToolResult] = []

    async def call(client: Any, name: str, arguments: dict[str, Any] | None = None) -> Any:
        result = await client.call_tool(name, arguments or {})
        answers.append(result)
        return structured(result)

    async with mcp_client(url, writer) as client:
        # Auth: the profile and the grants, no token among them.
        profile = await call(client, "get_profile")
        assert (profile["user_id"], profile["email"], profile["role"]) == (owner.user_id, me["email"], "user")
        assert profile["two_factor_enabled"] is True
        grants = (await call(client, "list_agent_grants"))["result"]
        assert sorted((g["label"], g["tier"], g["active"]) for g in grants) == [
            ("reader", "authenticated", True), ("writer", "sensitive", True)]
        assert set(grants[0]) == {"grant_id", "kind", "label", "tier", "client_id", "created_at", "expires_at",
                                  "revoked_at", "last_used_at", "active"}

        # Settings reads.
        assert await call(client, "get_notification_settings") == {
            "channels": {"web_push": True, "telegram": False},
            "events": {"trade_executed": True, "bot_status": True, "ai_signal": False, "risk_alert": True,
                       "daily_summary": False}}
        (listed,) = (await call(client, "list_api_keys"))["result"]
        assert (listed["key_id"], listed["label"], listed["exchange"]) == (key["key_id"], "futures", "binance")
        assert listed["last_test"]["ok"] is True and listed["last_test"]["restrictions"]["enable_futures"] is True
        assert any("IP allowlist" in w for w in listed["last_test"]["warnings"])
        assert set(listed) == {"key_id", "label", "exchange", "created_at", "last_test"}
        two_factor = await call(client, "get_two_factor_status")
        assert two_factor["enabled"] is True and two_factor["recovery_codes_left"] == 10
        assert two_factor["step_up_until"] is None
        document = await call(client, "export_settings_document")
        assert (document["format"], document["version"], document["symbols"], document["interval"]) == (
            "durabot-settings", 1, ["BTCUSDT"], "5m")
        assert document["engine"]["leverage"] == 10

        # A keyed write: applied once; its repeat answers the first result even after a later change,
        # which stays; the key sent with other preferences is refused.
        first = {**PREFERENCES, "idempotency_key": "prefs-key-0001"}
        assert await call(client, "update_notification_settings", first) == PREFERENCES
        assert await call(client, "get_notification_settings") == PREFERENCES
        later = {"channels": {"web_push": True, "telegram": True}, "events": PREFERENCES["events"]}
        assert await call(client, "update_notification_settings", {**later, "idempotency_key": "prefs-key-0002"}) \
            == later
        assert await call(client, "update_notification_settings", first) == PREFERENCES
        assert await call(client, "get_notification_settings") == later
        reused = await client.call_tool("update_notification_settings", {**later, "idempotency_key": "prefs-key-0001"})
        assert "conflict" in error_text(reused)
        stored = await gw.db.users.find_one({"user_id": owner.user_id})
        assert stored["notification_preferences"] == later

        # Monitoring: alerts of the owner's and the shared ones, never another user's.
        alerts = (await call(client, "get_alerts"))["result"]
        assert [(a["kind"], a["shared"]) for a in alerts] == [
            ("exchange_ip_ban", True), ("real_halted", False), ("real_halted", False)]
        assert alerts[1]["message"] == "halted: stop order refused"
        assert alerts[1]["session_id"] == real_session_workflow_id(owner.user_id)
        open_alerts = (await call(client, "get_alerts", {"include_resolved": False, "limit": 5}))["result"]
        assert [a["resolved_at"] for a in open_alerts] == [None, None]

        risk = await call(client, "get_risk_metrics")
        (position,) = risk["positions"]
        assert risk["status"] == "running" and risk["session_id"] == session_workflow_id(owner.user_id, "paper")
        assert (position["symbol"], position["side"], position["quantity"]) == ("BTCUSDT", "long", 0.01)
        assert position["stop"] == opened["stop_loss"] < position["entry_price"]
        assert 0 < position["loss_at_stop"] < 0.03 * position["notional_at_entry"]
        assert risk["open_risk"] == position["loss_at_stop"]
        assert risk["open_risk_limit"] == pytest.approx(risk["equity"] * 0.10)
        assert risk["margin_in_use"] > 0 and risk["margin_ratio"] == risk["margin_in_use"] / risk["equity"]
        assert risk["limits"]["max_daily_loss_pct"] == 3.0 and "daily_loss" in risk["limits"]["enabled"]

        performance = await call(client, "get_performance_metrics", {"days": 7})
        assert performance["generation"] == 0 and performance["status"] == "running"
        assert [(d["date"], d["net_pnl"], d["trades"]) for d in performance["days"]] == [("2024-03-02", 150.0, 3)]
        assert performance["metrics"]["starting_balance"] == 10_000.0

        events = (await call(client, "list_security_events", {"limit": 100}))["result"]
        actions = {e["action"] for e in events}
        assert {"register", "login", "two_factor_enabled", "api_key_saved", "api_key_tested",
                "agent_grant_created"} <= actions
        assert all(e["by_you"] for e in events)
        (saved,) = (await call(client, "list_security_events", {"action": "api_key_saved"}))["result"]
        assert saved["details"]["key_id"] == key["key_id"] and "api_key" not in saved["details"]

        system = await call(client, "get_system_metrics")
        assert [w["role"] for w in system["workers"]] == ["trading", "market", "ai", "real"]
        assert all(w["workflow_pollers"] >= 1 and w["activity_pollers"] >= 1 for w in system["workers"])
        paper = (await gw.http.get("/api/paper-trading/status", headers=owner.headers)).json()
        assert system["paper_session"]["status"] == "running"
        assert system["paper_session"]["candles_processed"] == paper["candles_processed"]
        assert system["paper_session"]["market_time"] == paper["market_time"]
        assert system["your_open_alerts"] == 2 and system["your_events_24h"] >= 1
        assert system["your_mcp_calls_24h"] >= 15 and system["feed_subscribers_failing"] == 0

        calls = (await call(client, "list_mcp_calls", {"limit": 200}))["result"]
        assert {"get_profile", "update_notification_settings", "get_system_metrics"} <= {c["tool"] for c in calls}
        writer_grant = next(g["grant_id"] for g in grants if g["label"] == "writer")
        assert {c["grant_id"] for c in calls} == {writer_grant} and all(c["ms"] >= 0 for c in calls)
        updates = (await call(client, "list_mcp_calls", {"tool_name": "update_notification_settings"}))["result"]
        assert [u["outcome"] for u in updates] == ["Conflict", "ok", "ok", "ok"]
        assert updates[0]["arguments"] == ["channels", "events", "idempotency_key"]
        assert "get_profile" not in {c["tool"] for c in updates}

        # Bad arguments are tool errors.
        for name, arguments in (("get_alerts", {"limit": 0}), ("get_performance_metrics", {"days": 400}),
                                ("list_mcp_calls", {"tool_name": "Not A Tool!"}),
                                ("list_security_events", {"action": "no_such_action"}),
                                ("update_notification_settings", {**PREFERENCES, "idempotency_key": "short"}),
                                ("update_notification_settings", {
                                    "channels": {"web_push": True, "sms": True}, "events": PREFERENCES["events"],
                                    "idempotency_key": "prefs-key-0003"})):
            assert (await client.call_tool(name, arguments)).is_error, (name, arguments)

    # No answer holds the exchange key or its secret (nor an agent token), nor anything of the other user's.
    text = " ".join(_text(a) for a in answers)
    for secret in (key["api_key"], key["api_secret"], reader, writer):
        assert secret not in text
    for theirs in (other.user_id, others_key["key_id"], others_key["api_key"], "another agent", "the other user's"):
        assert theirs not in text

    # An AUTHENTICATED token reads, and is refused the SENSITIVE write with HTTP 403.
    async with mcp_client(url, reader) as client:
        assert (await call(client, "get_notification_settings")) == later
    reply = await raw_call(url, reader, "update_notification_settings",
                           {**PREFERENCES, "idempotency_key": "prefs-key-0004"})
    assert reply.status_code == 403 and reply.json()["error"] == "insufficient_scope", reply.text
    assert (await gw.db.users.find_one({"user_id": owner.user_id}))["notification_preferences"] == later
