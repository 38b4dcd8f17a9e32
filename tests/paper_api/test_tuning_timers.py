"""Self-tuning's timers on a live paper session: an unanswered proposal expires (and says so), a token
sent after that changes nothing; auto-apply proposes the config rules' suggestions by itself, as the
rule that made them; an operator finds every approval awaiting a person by its search attributes."""

from __future__ import annotations

import asyncio
import json
import time

import pytest
import websockets

from core.tuning_contracts import approval_workflow_id

from .conftest import keep_histories, live_session

EXPIRY_S = 5.0
AUTO_INTERVAL_S = 1.0


@pytest.fixture
def paper_settings(paper_settings):
    return paper_settings.model_copy(update={"tuning_approval_expiry_s": EXPIRY_S,
                                             "tuning_auto_apply_interval_s": AUTO_INTERVAL_S,
                                             "tuning_green_cooldown_s": 60.0})


async def until(probe, within_s: float, what: str):
    deadline = time.monotonic() + within_s
    while not (found := await probe()):
        assert time.monotonic() < deadline, what
        await asyncio.sleep(0.2)
    return found


async def test_an_unanswered_proposal_expires_and_a_late_token_changes_nothing(gateway, sign_up, temporal_client):
    account = await sign_up()
    await live_session(gateway, temporal_client, account)
    # An operator lists what awaits a person in the Temporal UI by these attributes.
    query = ("WorkflowType = 'TuningApprovalWorkflow' AND DurabotState = 'AWAITING' "
             f"AND DurabotUser = '{account.user_id}'")

    async def listed() -> list[str]:
        return [w.id async for w in temporal_client.list_workflows(query)]

    url = f"{gateway.settings.gateway_url.replace('http', 'ws', 1)}/ws?token={account.access}"
    async with websockets.connect(url) as sock:
        await sock.send(json.dumps({"type": "Subscribe", "channels": ["TuningUpdate"], "symbols": ["*"]}))
        created = await gateway.http.post("/api/tuning/proposals", headers=account.headers,
                                          json={"changes": {"take_profit_pct": 6.0}})
        assert created.status_code == 201, created.text
        number, token = created.json()["proposal"]["number"], created.json()["approval_token"]
        # The owner hears it on /ws: created, then awaiting them, then expired; never the token.
        heard = []
        while "expired" not in heard:
            frame = json.loads(await asyncio.wait_for(sock.recv(), EXPIRY_S + 20))
            if frame["type"] == "TuningUpdate":
                assert token not in json.dumps(frame)
                heard.append(frame["data"]["event"])
                if heard[-1] == "awaiting":
                    assert await until(listed, EXPIRY_S, "the approval never showed as awaiting") == [
                        approval_workflow_id(account.user_id, number)]
        assert heard == ["created", "awaiting", "expired"], heard

    async def expired() -> dict | None:
        found = (await gateway.http.get(f"/api/tuning/proposals/{number}", headers=account.headers)).json()
        return found if found["status"] == "EXPIRED" else None

    proposal = await until(expired, EXPIRY_S + 15, "the proposal never expired")
    assert proposal["decided_by"] == "expiry"
    late = await gateway.http.post(f"/api/tuning/proposals/{number}/approve", headers=account.headers,
                                   json={"token": token})
    assert late.status_code == 422 and "expired already" in late.json()["detail"]["reason"], late.text
    basic = (await gateway.http.get("/api/paper-trading/basic-settings", headers=account.headers)).json()
    assert basic["settings"]["take_profit_pct"] == 4.0
    # Expiry notifies (an event on /ws) and frees the parameter for a new proposal.
    assert await gateway.db.events.find_one({"type": "TuningUpdate", "user_id": account.user_id,
                                             "data.number": number, "data.event": "expired"})
    again = await gateway.http.post("/api/tuning/proposals", headers=account.headers,
                                    json={"changes": {"take_profit_pct": 6.0}})
    assert again.status_code == 201 and again.json()["proposal"]["status"] == "AWAITING", again.text
    assert await until(lambda: _not_awaiting(listed, approval_workflow_id(account.user_id, number)), 15,
                       "the expired approval still listed as awaiting")
    await keep_histories(temporal_client, account.user_id)


async def _not_awaiting(listed, workflow_id: str) -> bool:
    return workflow_id not in await listed()


async def test_auto_apply_proposes_the_rules_suggestions_by_itself(gateway, sign_up, temporal_client):
    account = await sign_up()
    await live_session(gateway, temporal_client, account)
    h = account.headers
    switched = await gateway.http.put("/api/tuning/auto-apply", headers=h, json={"enabled": True})
    assert switched.status_code == 200 and switched.json()["auto_apply_green"] is True, switched.text
    # Ten quick round trips with slippage: fees far above the gross PnL make the fee rule ask for more
    # confidence.
    assert (await gateway.http.put("/api/paper-trading/basic-settings", headers=h,
                                   json={"slippage_bps": 1.0})).status_code == 200
    order = {"symbol": "ETHBTC", "side": "long", "order_type": "market", "quantity": 3.0}
    for _ in range(10):
        assert (await gateway.http.post("/api/paper-trading/orders", headers=h, json=order)).status_code == 200
        (position,) = (await gateway.http.get("/api/paper-trading/trades/open", headers=h)).json()
        closed = await gateway.http.post(f"/api/paper-trading/trades/{position['trade_id']}/close", headers=h)
        assert closed.status_code == 200, closed.text

    async def applied() -> list[dict]:
        rows = (await gateway.http.get("/api/tuning/proposals", headers=h, params={"status": "APPLIED"})).json()
        return [p for p in rows if p["proposer"]["kind"] == "rule"]

    (proposal,) = await until(applied, 30, "auto-apply never applied the fee rule's suggestion")
    assert proposal["proposer"]["name"] == "fees_eat_profit"
    assert [(c["path"], c["proposed"]) for c in proposal["changes"]] == [("min_confidence", 0.1)]
    basic = (await gateway.http.get("/api/paper-trading/basic-settings", headers=h)).json()
    assert basic["settings"]["min_confidence"] == 0.1
    # Off again: nothing more is proposed (the rule would now ask for 0.2).
    assert (await gateway.http.put("/api/tuning/auto-apply", headers=h, json={"enabled": False})).status_code == 200
    await asyncio.sleep(AUTO_INTERVAL_S * 3)
    assert len(await applied()) == 1
    await keep_histories(temporal_client, account.user_id)
