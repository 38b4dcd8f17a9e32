"""Self-tuning through /api/tuning on a live paper session (real gateway, Temporal, SecantusDB, worker):
each tier, cooldowns (across a worker restart), expiry, concurrent proposals, agents, and no token
anywhere but its one answer. Durations are settings: seconds here."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from core.tuning_contracts import approval_workflow_id, tuning_workflow_id
from services.errors import Forbidden
from services.principal import Principal

from ..conftest import enrol_two_factor, trading_worker_running
from .conftest import PASSWORD, candles, feed, keep_histories, live_session

GREEN_COOLDOWN_S = 4.0
EXPIRY_S = 30.0


@pytest.fixture
def paper_settings(paper_settings):
    return paper_settings.model_copy(update={
        "tuning_green_cooldown_s": GREEN_COOLDOWN_S, "tuning_yellow_cooldown_s": 60.0, "tuning_red_cooldown_s": 60.0,
        "tuning_approval_expiry_s": EXPIRY_S})


def agent(user_id: str) -> Principal:
    """The application layer's agent channel (what MCP tokens will use)."""
    return Principal(user_id=user_id, channel="mcp", human=False, tier="critical")


async def propose(gateway, account, changes: dict[str, Any], reason: str = "test", expect: int = 201) -> dict:
    reply = await gateway.http.post("/api/tuning/proposals", headers=account.headers,
                                    json={"changes": changes, "reason": reason})
    assert reply.status_code == expect, reply.text
    return reply.json()


async def settings_of(gateway, account, at_least: int | None = None) -> dict[str, Any]:
    """All settings sections as the API reads them (records written through by the session: waits
    until they reach version ``at_least``)."""
    deadline = time.monotonic() + 20
    while True:
        found: dict[str, Any] = {}
        for section, path in (("basic", "basic"), ("strategy", "strategy"), ("indicators", "indicator")):
            reply = await gateway.http.get(f"/api/paper-trading/{path}-settings", headers=account.headers)
            assert reply.status_code == 200, reply.text
            found[section], found["version"] = reply.json()["settings"], reply.json()["version"]
        if at_least is None or (found["version"] or 0) >= at_least:
            return found
        assert time.monotonic() < deadline, found
        await asyncio.sleep(0.2)


async def test_green_applies_at_once_cools_down_and_lowering_risk_never_waits(gateway, sign_up, temporal_client):
    account = await sign_up()
    await live_session(gateway, temporal_client, account)
    # One value unchanged: the proposal is refused as a whole and nothing applies.
    same = await propose(gateway, account, {"rsi.oversold": 25, "min_confidence": 0.0}, expect=422)
    assert same["detail"] == {"field": "min_confidence", "reason": "Minimum confidence is 0.0 already"}
    assert (await settings_of(gateway, account))["indicators"]["rsi"]["oversold"] == 30

    done = await propose(gateway, account, {"rsi.oversold": 25})
    proposal = done["proposal"]
    assert (proposal["tier"], proposal["status"], done["approval_token"]) == ("GREEN", "APPLIED", None)
    assert (await settings_of(gateway, account, proposal["applied_version"]))["indicators"]["rsi"]["oversold"] == 25
    assert proposal["snapshot_id"], "a snapshot comes before every change"

    again = await propose(gateway, account, {"rsi.oversold": 28}, expect=409)
    assert again["detail"]["field"] == "rsi.oversold" and "cools down until" in again["detail"]["reason"]
    # Out of bounds and too large: refused naming the bound.
    far = await propose(gateway, account, {"rsi.overbought": 95}, expect=422)
    assert far["detail"] == {"field": "rsi.overbought",
                             "reason": "RSI overbought level may be tuned from 55 to 90, got 95"}
    big = await propose(gateway, account, {"rsi.overbought": 85}, expect=422)
    assert "at most 10 in one adjustment" in big["detail"]["reason"]
    unknown = await propose(gateway, account, {"taker_fee": 0.001}, expect=422)
    assert "not a tunable parameter" in unknown["detail"]["reason"]
    real = await propose(gateway, account, {"real_trading": 1}, expect=422)
    assert real["detail"]["field"] == "real_trading" and "/api/real-trading/start" in real["detail"]["reason"]

    # Lowering risk is never tiered and never waits: a tighter stop applies at once, twice in a row.
    for stop in (1.5, 1.0):
        lower = (await propose(gateway, account, {"stop_loss_pct": stop}))["proposal"]
        assert (lower["tier"], lower["status"]) == ("NONE", "APPLIED")
    summary = (await gateway.http.get("/api/tuning", headers=account.headers)).json()
    assert [c["path"] for c in summary["cooldowns"]] == ["rsi.oversold"]

    await asyncio.sleep(GREEN_COOLDOWN_S + 0.5)
    after = (await propose(gateway, account, {"rsi.oversold": 28}))["proposal"]
    assert after["status"] == "APPLIED"
    assert (await settings_of(gateway, account, after["applied_version"]))["indicators"]["rsi"]["oversold"] == 28


async def approve(gateway, account, number: int, token: str, expect: int = 200) -> dict:
    reply = await gateway.http.post(f"/api/tuning/proposals/{number}/approve", headers=account.headers,
                                    json={"token": token})
    assert reply.status_code == expect, reply.text
    return reply.json()


async def test_yellow_applies_only_with_the_owners_current_token(gateway, sign_up, temporal_client):
    account, other = await sign_up(), await sign_up()
    await live_session(gateway, temporal_client, account)
    services = gateway.app.state.services
    created = await propose(gateway, account, {"take_profit_pct": 6.0}, reason="exits too early")
    proposal, token = created["proposal"], created["approval_token"]
    assert (proposal["tier"], proposal["status"], proposal["changes"][0]["current"]) == ("YELLOW", "AWAITING", 4.0)
    assert token and proposal["expires_at_ms"] > proposal["created_at_ms"]
    number = proposal["number"]

    wrong = await approve(gateway, account, number, "not-the-token-at-all", expect=422)
    assert wrong["detail"]["field"] == "token"
    await approve(gateway, other, number, token, expect=404)  # another user's proposal does not exist for them
    bot = agent(account.user_id)
    for attempt in (services.tuning.approve_with_token(bot, number, token),
                    services.tuning.approve_with_text(bot, number, "I approve take_profit_pct = 6"),
                    services.tuning.issue_token(bot, number)):
        with pytest.raises(Forbidden):
            await attempt
    assert (await settings_of(gateway, account))["basic"]["take_profit_pct"] == 4.0

    # A new token for the dashboard replaces the first one.
    reissued = await gateway.http.post(f"/api/tuning/proposals/{number}/token", headers=account.headers)
    assert reissued.status_code == 200, reissued.text
    fresh = reissued.json()["approval_token"]
    assert fresh and fresh != token
    await approve(gateway, account, number, token, expect=422)
    applied = await approve(gateway, account, number, fresh)
    assert (applied["status"], applied["decided_by"]) == ("APPLIED", "dashboard")
    assert (await settings_of(gateway, account, applied["applied_version"]))["basic"]["take_profit_pct"] == 6.0
    reused = await approve(gateway, account, number, fresh, expect=422)
    assert "applied already" in reused["detail"]["reason"]

    # Audited, recorded as a strategy config, announced on the event bus.
    history = (await gateway.http.get("/api/tuning/history", headers=account.headers)).json()
    assert {"tuning_created", "tuning_awaiting", "tuning_applied"} <= {e["action"] for e in history}
    config = await gateway.db.strategy_configs.find_one({"user_id": account.user_id,
                                                          "version": applied["applied_version"]})
    assert config["engine_settings"]["take_profit_pct"] == 6.0 and config["approved_by"] == "dashboard"
    kinds = [e["data"]["event"] async for e in gateway.db.events.find(
        {"type": "TuningUpdate", "user_id": account.user_id, "data.number": number})]
    assert sorted(kinds) == ["applied", "awaiting", "created"]
    await keep_histories(temporal_client, account.user_id)


async def test_red_applies_only_on_the_exact_text(gateway, sign_up, temporal_client):
    account = await sign_up()
    await live_session(gateway, temporal_client, account)
    created = await propose(gateway, account, {"risk.risk_per_trade_pct": 2.0})
    proposal = created["proposal"]
    assert (proposal["tier"], created["approval_token"]) == ("RED", None)
    assert proposal["approval_text"] == "I approve risk.risk_per_trade_pct = 2"
    number = proposal["number"]
    await approve(gateway, account, number, "a-token-that-red-never-takes", expect=422)
    url = f"/api/tuning/proposals/{number}/approve-text"
    # A RED approval needs two-factor, and a code from the last 5 minutes.
    unenrolled = await gateway.http.post(url, headers=account.headers, json={"text": proposal["approval_text"]})
    assert unenrolled.status_code == 403 and unenrolled.json()["step_up"] == "enrol", unenrolled.text
    totp = await enrol_two_factor(gateway.http, account.headers)
    for text in ("I approve risk.risk_per_trade_pct = 3", "i approve risk.risk_per_trade_pct = 2", ""):
        refused = await gateway.http.post(url, headers=account.headers, json={"text": text})
        assert refused.status_code == 422, refused.text
    await gateway.db.sessions.update_many({"user_id": account.user_id},
                                          {"$set": {"step_up_at": datetime.now(UTC) - timedelta(minutes=6)}})
    stale = await gateway.http.post(url, headers=account.headers, json={"text": proposal["approval_text"]})
    assert stale.status_code == 403 and stale.json()["step_up"] == "code", stale.text
    # A login's code steps its session up; the tokens a refresh hands out do not carry that.
    challenge = (await gateway.http.post("/api/auth/login", json={"email": account.email,
                                                                 "password": PASSWORD})).json()["challenge"]
    fresh = (await gateway.http.post("/api/auth/login/2fa", json={"challenge": challenge,
                                                                 "code": totp.recovery[0]})).json()
    renewed = (await gateway.http.post("/api/auth/refresh", json={"refresh_token": fresh["refresh_token"]})).json()
    refreshed = await gateway.http.post(url, headers={"Authorization": f"Bearer {renewed['access_token']}"},
                                        json={"text": proposal["approval_text"]})
    assert refreshed.status_code == 403 and refreshed.json()["step_up"] == "code", refreshed.text
    assert (await settings_of(gateway, account))["basic"]["risk"]["risk_per_trade_pct"] == 1.0
    stepped = await gateway.http.post("/api/auth/2fa/step-up", headers=account.headers,
                                      json={"code": totp.at(time.time() + 30)})
    assert stepped.status_code == 200, stepped.text
    done = await gateway.http.post(url, headers=account.headers, json={"text": proposal["approval_text"]})
    assert done.status_code == 200 and done.json()["status"] == "APPLIED", done.text
    found = await settings_of(gateway, account, done.json()["applied_version"])
    assert found["basic"]["risk"]["risk_per_trade_pct"] == 2.0

    # Rejecting is the owner's, on any channel (it lowers risk); a rejected proposal changes nothing.
    second = (await propose(gateway, account, {"risk.max_daily_loss_pct": 4.0}))["proposal"]
    bot = agent(account.user_id)
    rejected = await gateway.app.state.services.tuning.reject(bot, second["number"], "not now")
    assert (rejected.status, rejected.decided_by) == ("REJECTED", "mcp")
    text = await gateway.http.post(f"/api/tuning/proposals/{second['number']}/approve-text", headers=account.headers,
                                   json={"text": second["approval_text"]})
    assert text.status_code == 422 and "rejected already" in text.text, text.text
    assert (await settings_of(gateway, account))["basic"]["risk"]["max_daily_loss_pct"] == 3.0
    await keep_histories(temporal_client, account.user_id)


async def test_concurrent_proposals_on_one_parameter_leave_one_applied_one_refused(gateway, sign_up, temporal_client):
    account = await sign_up()
    await live_session(gateway, temporal_client, account)
    for changes in (({"rsi.oversold": 25}, {"rsi.oversold": 27}),
                    ({"take_profit_pct": 6.0}, {"take_profit_pct": 7.0})):
        replies = await asyncio.gather(*(gateway.http.post("/api/tuning/proposals", headers=account.headers,
                                                           json={"changes": c}) for c in changes))
        assert sorted(r.status_code for r in replies) == [201, 409], [r.text for r in replies]
        refused = next(r for r in replies if r.status_code == 409).json()["detail"]
        assert refused["field"] == next(iter(changes[0])), refused
    applied = [p for p in (await gateway.http.get("/api/tuning/proposals", headers=account.headers)).json()]
    assert sorted(p["status"] for p in applied) == ["APPLIED", "AWAITING"]
    # The same write repeated under one Idempotency-Key is one proposal, with the same token.
    key = {"Idempotency-Key": f"k-{uuid.uuid4().hex}"}
    body = {"changes": {"trailing_stop_pct": 2.0}}
    first, second = [await gateway.bare.post("/api/tuning/proposals", headers={**account.headers, **key}, json=body)
                     for _ in range(2)]
    assert first.status_code == second.status_code == 201, (first.text, second.text)
    assert first.json() == second.json()


async def test_restore_returns_every_setting_to_the_snapshot(gateway, sign_up, temporal_client):
    account = await sign_up()
    await live_session(gateway, temporal_client, account)
    taken = await gateway.http.post("/api/tuning/snapshots", headers=account.headers, json={"name": "before tuning"})
    assert taken.status_code == 201, taken.text
    snapshot = taken.json()
    await propose(gateway, account, {"rsi.oversold": 25})  # GREEN, now cooling down
    await propose(gateway, account, {"stop_loss_pct": 1.5})  # lowers risk
    yellow = await propose(gateway, account, {"take_profit_pct": 6.0})
    await approve(gateway, account, yellow["proposal"]["number"], yellow["approval_token"])

    restore = await gateway.http.post(f"/api/tuning/snapshots/{snapshot['snapshot_id']}/restore",
                                      headers=account.headers)
    assert restore.status_code == 201, restore.text
    proposal = restore.json()["proposal"]
    # Tiered by its most dangerous change: a wider stop and another take profit need a confirmation.
    assert (proposal["tier"], proposal["restoring"]) == ("YELLOW", snapshot["snapshot_id"])
    assert {c["path"] for c in proposal["changes"]} == {"rsi.oversold", "stop_loss_pct", "take_profit_pct"}
    done = await approve(gateway, account, proposal["number"], restore.json()["approval_token"])
    assert done["status"] == "APPLIED", done
    now = await settings_of(gateway, account, done["applied_version"])
    for field, value in snapshot["engine_settings"].items():
        assert now["basic"][field] == value, field
    analysis = {**now["strategy"], **now["indicators"]}
    for field, value in snapshot["analysis_settings"].items():
        assert analysis[field] == value, field
    listed = (await gateway.http.get("/api/tuning/snapshots", headers=account.headers)).json()
    assert snapshot["snapshot_id"] in {s["snapshot_id"] for s in listed}
    assert any(s["automatic"] for s in listed), "each applied change snapshots first"
    missing = await gateway.http.post("/api/tuning/snapshots/nope/restore", headers=account.headers)
    assert missing.status_code == 404
    await keep_histories(temporal_client, account.user_id)


async def test_agents_propose_but_never_approve_and_risk_reduction_is_never_blocked(gateway, sign_up,
                                                                                   temporal_client):
    from services.paper import SettingsPatch

    account = await sign_up()
    await live_session(gateway, temporal_client, account)
    services = gateway.app.state.services
    bot = agent(account.user_id)
    with pytest.raises(Forbidden):
        await services.paper.update_settings(bot, SettingsPatch(basic={"take_profit_pct": 6.0}), None)
    made = await services.tuning.write_settings_as_agent(bot, {"rsi.oversold": 25, "take_profit_pct": 6.0},
                                                         "an agent's idea", None)
    assert [(m.proposal.tier, m.proposal.status, m.approval_token) for m in made] == [
        ("GREEN", "APPLIED", None), ("YELLOW", "AWAITING", None)]
    assert made[1].proposal.proposer.kind == "agent"
    # The owner, in a human session, can get a token and approve what the agent proposed.
    token = (await gateway.http.post(f"/api/tuning/proposals/{made[1].proposal.number}/token",
                                     headers=account.headers)).json()["approval_token"]

    # With a proposal awaiting and a cooldown running: orders close and the session stops, for the agent too.
    order = {"symbol": "ETHBTC", "side": "long", "order_type": "market", "quantity": 1.0}
    opened = await gateway.http.post("/api/paper-trading/orders", headers=account.headers, json=order)
    assert opened.status_code == 200, opened.text
    (position,) = (await gateway.http.get("/api/paper-trading/trades/open", headers=account.headers)).json()
    closed = await services.paper.close_trade(bot, position["trade_id"], f"close-{uuid.uuid4().hex}")
    assert closed
    stopped = await services.paper.stop(bot, None)
    assert stopped.status == "stopped"
    assert (await approve(gateway, account, made[1].proposal.number, token))["status"] == "APPLIED"


async def test_no_token_appears_in_histories_logs_or_other_answers(gateway, sign_up, temporal_client):
    account = await sign_up()
    await live_session(gateway, temporal_client, account)
    created = await propose(gateway, account, {"take_profit_pct": 6.0})
    number = created["proposal"]["number"]
    reissued = (await gateway.http.post(f"/api/tuning/proposals/{number}/token", headers=account.headers)).json()
    tokens = [created["approval_token"], reissued["approval_token"]]
    await approve(gateway, account, number, tokens[1])

    texts = []
    for workflow_id in (tuning_workflow_id(account.user_id), approval_workflow_id(account.user_id, number)):
        async for event in temporal_client.get_workflow_handle(workflow_id).fetch_history_events():
            texts.append(str(event))
    history = "\n".join(texts)
    assert "take_profit_pct" in history, "the scan reads the payloads"
    answers = [await gateway.http.get(path, headers=account.headers) for path in
               ("/api/tuning", "/api/tuning/proposals", f"/api/tuning/proposals/{number}", "/api/tuning/history")]
    stored = json.dumps([d async for d in gateway.db.tuning_proposals.find({"user_id": account.user_id},
                                                                          {"_id": 0})], default=str)
    for token in tokens:
        assert token not in history
        assert token not in gateway.logs.getvalue()
        assert token not in stored
        for answer in answers:
            assert answer.status_code == 200 and token not in answer.text


async def test_cooldowns_survive_a_worker_restart(paper_settings, run_gateway, temporal_client, mongo_client):
    from .conftest import register

    db = mongo_client[paper_settings.mongo_database]
    async with run_gateway(paper_settings) as gw:
        async with trading_worker_running(temporal_client, paper_settings, db, "tuning-before"):
            account = await register(gw)
            await live_session(gw, temporal_client, account)
            assert (await propose(gw, account, {"rsi.oversold": 25}))["proposal"]["status"] == "APPLIED"
        # No worker: the cooldown's timer is Temporal's, not a process's.
        await asyncio.sleep(1)
        async with trading_worker_running(temporal_client, paper_settings, db, "tuning-after"):
            refused = await propose(gw, account, {"rsi.oversold": 27}, expect=409)
            assert "cools down until" in refused["detail"]["reason"]
            await asyncio.sleep(GREEN_COOLDOWN_S)
            summary = (await gw.http.get("/api/tuning", headers=account.headers)).json()
            assert summary["cooldowns"] == [], summary
            assert (await propose(gw, account, {"rsi.oversold": 27}))["proposal"]["status"] == "APPLIED"
            # The session kept trading through the changes.
            status = await feed(gw, temporal_client, account, candles(10, start=20))
            assert status["candles_processed"] == 30 and status["gap_candles_filled"] == 0, status
