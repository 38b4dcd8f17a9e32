"""The Tuning tools over the MCP SDK's client, against a live paper session (real gateway, workers, Temporal):
GREEN applies at once on the SENSITIVE tier, YELLOW and RED only create approvals that no agent can give,
a restore is itself a tiered proposal, and another user's proposals and snapshots do not exist for an agent."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from .conftest import error_text, mcp_client, mint_token, new_person, raw_call, structured

SYMBOL = "BTCUSDT"


async def paper_settings(gw: Any, person: Any, section: str, at_least: int = 0) -> dict[str, Any]:
    """A settings section as the REST API reads it, once written through at version ``at_least`` or later."""
    deadline = time.monotonic() + 20
    while True:
        reply = await gw.http.get(f"/api/paper-trading/{section}-settings", headers=person.headers)
        assert reply.status_code == 200, reply.text
        if (reply.json()["version"] or 0) >= at_least:
            return reply.json()["settings"]
        assert time.monotonic() < deadline, reply.json()
        await asyncio.sleep(0.2)


async def test_green_applies_yellow_and_red_wait_for_the_owner_and_restores_are_tiered(mcp_gateway):
    gw, url = mcp_gateway, mcp_gateway.settings.mcp_url
    alice, bob = await new_person(gw), await new_person(gw)
    started = await gw.http.post("/api/paper-trading/start", headers=alice.headers,
                                 json={"symbols": [SYMBOL], "interval": "5m"})
    assert started.status_code == 200, started.text
    critical, sensitive = await mint_token(gw, alice, "critical"), await mint_token(gw, alice, "sensitive")
    async with mcp_client(url, critical) as agent, mcp_client(url, sensitive) as green_only, \
            mcp_client(url, await mint_token(gw, bob, "critical")) as bobs_agent:
        served = {t.name: t for t in (await agent.list_tools()).tools}
        assert not [name for name in served if "approve" in name or "confirm" in name]
        assert served["request_red_adjustment"].meta["durabot/tier"] == "critical"
        assert served["apply_green_adjustment"].meta["durabot/tier"] == "sensitive"
        assert served["get_parameter_bounds"].annotations.read_only_hint is True

        bounds = {b["path"]: b for b in structured(await agent.call_tool("get_parameter_bounds", {}))["result"]}
        assert (bounds["rsi.oversold"]["tier"], bounds["rsi.oversold"]["minimum"],
                bounds["rsi.oversold"]["maximum"]) == ("GREEN", 10, 45)
        assert bounds["take_profit_pct"]["tier"] == "YELLOW" and bounds["risk.max_daily_loss_pct"]["tier"] == "RED"

        snap_args = {"name": "before tuning", "idempotency_key": "snap-before-1"}
        snapshot = structured(await green_only.call_tool("take_snapshot", snap_args))
        assert snapshot["name"] == "before tuning" and snapshot["engine_settings"]["take_profit_pct"] == 4.0
        assert structured(await green_only.call_tool("take_snapshot", snap_args))["snapshot_id"] == \
            snapshot["snapshot_id"]

        # GREEN on the SENSITIVE tier: applied at once, and once only under one key.
        green_args = {"parameter": "rsi.oversold", "value": 25, "reason": "more entries",
                      "idempotency_key": "green-rsi-1"}
        green = structured(await green_only.call_tool("apply_green_adjustment", green_args))
        assert (green["tier"], green["status"], green["awaiting_approval"]) == ("GREEN", "APPLIED", False)
        assert green["proposal"]["proposer"]["kind"] == "agent" and green["proposal"]["changes"][0]["current"] == 30
        again = structured(await green_only.call_tool("apply_green_adjustment", green_args))
        assert again["approval_id"] == green["approval_id"]
        indicators = await paper_settings(gw, alice, "indicator", green["proposal"]["applied_version"])
        assert indicators["rsi"]["oversold"] == 25
        lower = structured(await green_only.call_tool("apply_green_adjustment", {
            "parameter": "stop_loss_pct", "value": 1.5, "idempotency_key": "tighter-stop-1"}))
        assert (lower["tier"], lower["status"]) == ("NONE", "APPLIED")
        # A YELLOW change is not GREEN's to make, and its tool is above a sensitive grant.
        wrong = error_text(await green_only.call_tool("apply_green_adjustment", {
            "parameter": "take_profit_pct", "value": 6.0, "idempotency_key": "green-tp-1"}))
        assert "YELLOW" in wrong and "request_yellow_adjustment" in wrong
        scope = await raw_call(url, sensitive, "request_yellow_adjustment", {
            "parameter": "take_profit_pct", "value": 6.0, "reason": "exits early", "idempotency_key": "y-tp-0001"})
        assert scope.status_code == 403 and scope.json()["error"] == "insufficient_scope", scope.text

        # YELLOW and RED: approvals awaiting the owner; nothing changes, no token anywhere in the answer.
        yellow = structured(await agent.call_tool("request_yellow_adjustment", {
            "parameter": "take_profit_pct", "value": 6.0, "reason": "exits too early",
            "idempotency_key": "yellow-tp-1"}))
        assert (yellow["tier"], yellow["status"], yellow["awaiting_approval"]) == ("YELLOW", "AWAITING", True)
        assert "dashboard" in yellow["where_to_approve"] and "approval_token" not in str(yellow)
        red_args = {"parameter": "risk.max_daily_loss_pct", "value": 4.0, "reason": "volatile week",
                    "idempotency_key": "red-daily-loss-1"}
        red = structured(await agent.call_tool("request_red_adjustment", red_args))
        red_again = structured(await agent.call_tool("request_red_adjustment", red_args))
        assert red_again["approval_id"] == red["approval_id"]
        assert (red["tier"], red["status"]) == ("RED", "AWAITING")
        assert red["proposal"]["approval_text"] == "I approve risk.max_daily_loss_pct = 4"
        assert "two-factor" in red["where_to_approve"]
        not_red = error_text(await agent.call_tool("request_red_adjustment", {
            "parameter": "rsi.overbought", "value": 75, "reason": "x", "idempotency_key": "red-rsi-1"}))
        assert "GREEN" in not_red and "apply_green_adjustment" in not_red
        for number in (yellow["approval_id"], red["approval_id"]):
            by_agent = await gw.bare.post(f"/api/tuning/proposals/{number}/approve",
                                          headers={"Authorization": f"Bearer {critical}"}, json={"token": "x" * 20})
            assert by_agent.status_code == 401, by_agent.text
        basic = await paper_settings(gw, alice, "basic")
        assert basic["take_profit_pct"] == 4.0 and basic["risk"]["max_daily_loss_pct"] == 3.0

        # The owner approves the YELLOW change in the dashboard's way.
        token = (await gw.http.post(f"/api/tuning/proposals/{yellow['approval_id']}/token",
                                    headers=alice.headers)).json()["approval_token"]
        approved = await gw.http.post(f"/api/tuning/proposals/{yellow['approval_id']}/approve",
                                      headers=alice.headers, json={"token": token})
        assert approved.status_code == 200 and approved.json()["status"] == "APPLIED", approved.text
        assert (await paper_settings(gw, alice, "basic", approved.json()["applied_version"]))["take_profit_pct"] == 6.0

        # A restore is a proposal tiered by its most dangerous change (a wider stop, another take profit).
        restore_args = {"snapshot_id": snapshot["snapshot_id"], "idempotency_key": "restore-1"}
        restore = structured(await agent.call_tool("restore_from_snapshot", restore_args))
        assert (restore["tier"], restore["status"]) == ("YELLOW", "AWAITING")
        assert restore["proposal"]["restoring"] == snapshot["snapshot_id"]
        assert {c["path"] for c in restore["proposal"]["changes"]} == {"rsi.oversold", "stop_loss_pct",
                                                                       "take_profit_pct"}
        assert structured(await agent.call_tool("restore_from_snapshot", restore_args))["approval_id"] == \
            restore["approval_id"]

        # Reads.
        dashboard = structured(await agent.call_tool("get_tuning_dashboard", {}))
        assert {p["number"] for p in dashboard["awaiting"]} == {red["approval_id"], restore["approval_id"]}
        assert "rsi.oversold" in {c["path"] for c in dashboard["cooldowns"]}
        assert dashboard["pending"]["risk.max_daily_loss_pct"]
        listed = structured(await agent.call_tool("list_tuning_proposals", {}))["result"]
        assert [p["number"] for p in listed] == sorted((p["number"] for p in listed), reverse=True)
        assert {p["status"] for p in listed} == {"APPLIED", "AWAITING"} and len(listed) == 5
        awaiting = structured(await agent.call_tool("list_tuning_proposals", {"status": "AWAITING"}))["result"]
        assert len(awaiting) == 2
        one = structured(await agent.call_tool("get_tuning_proposal", {"number": red["approval_id"]}))
        assert one["tier"] == "RED" and one["changes"][0]["proposed"] == 4.0
        history = structured(await agent.call_tool("get_audit_history", {"limit": 50}))["result"]
        assert {"tuning_created", "tuning_awaiting", "tuning_applied"} <= {e["action"] for e in history}
        snapshots = structured(await agent.call_tool("list_settings_snapshots", {}))["result"]
        assert snapshot["snapshot_id"] in {s["snapshot_id"] for s in snapshots}
        assert any(s["automatic"] for s in snapshots), "each applied change snapshots first"

        # Another user's proposal and snapshot do not exist for Bob's agent, and nothing changes.
        assert "not found" in error_text(await bobs_agent.call_tool("get_tuning_proposal",
                                                                    {"number": red["approval_id"]}))
        assert "not found" in error_text(await bobs_agent.call_tool("restore_from_snapshot", {
            "snapshot_id": snapshot["snapshot_id"], "idempotency_key": "bob-restore-1"}))
        assert structured(await bobs_agent.call_tool("list_tuning_proposals", {}))["result"] == []

        # Bad arguments are tool errors.
        for name, args in (("apply_green_adjustment", {"parameter": "taker_fee", "value": 0.001,
                                                       "idempotency_key": "bad-arg-1"}),
                           ("apply_green_adjustment", {"parameter": "rsi.oversold", "value": "lots",
                                                       "idempotency_key": "bad-arg-2"}),
                           ("apply_green_adjustment", {"parameter": "rsi.overbought", "value": 95,
                                                       "idempotency_key": "bad-arg-3"}),
                           ("apply_green_adjustment", {"parameter": "rsi.length", "value": 20, "session": "real",
                                                       "idempotency_key": "bad-arg-4"}),
                           ("take_snapshot", {"name": "", "idempotency_key": "bad-arg-5"}),
                           ("get_tuning_proposal", {"number": 0}),
                           ("request_yellow_adjustment", {"parameter": "leverage", "value": 12, "reason": "x",
                                                          "idempotency_key": "short"})):
            assert (await agent.call_tool(name, args)).is_error, (name, args)
    assert (await paper_settings(gw, alice, "basic"))["risk"]["max_daily_loss_pct"] == 3.0
