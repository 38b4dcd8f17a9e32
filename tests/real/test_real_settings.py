"""``GET|PUT /api/real-trading/settings``: what a real session trades changes only through the tuning
tiers. Lowering risk applies at once (a lower leverage is set on the exchange first); raising it waits for
its owner (YELLOW: the one-time token; RED: the typed text); the real session's parameters are reserved
and cool down apart from the paper session's; bad changes are refused with their field and change nothing."""

from __future__ import annotations

from typing import Any

from temporalio import workflow

from core.tuning_contracts import SESSION_SETTINGS_QUERY, SESSION_UPDATE_SETTINGS
from workflows.real_session import RealSessionWorkflow
from workflows.trading_session import TradingSessionWorkflow

from .conftest import SYMBOL, Trader
from .session_rig import sim_signed, wait_until

# The real-session rig: the sim in lockstep, its settings and every worker role are its fixtures.
from .test_real_session import (  # noqa: F401
    paper_start,
    real_settings,
    real_status,
    real_worker,
    request_and_approve,
    sim,
)

SETTINGS = "/api/real-trading/settings"


async def settings_of(gateway: Any, trader: Trader) -> dict[str, Any]:
    reply = await gateway.http.get(SETTINGS, headers=trader.headers)
    assert reply.status_code == 200, reply.text
    return reply.json()


async def change(gateway: Any, trader: Trader, changes: dict[str, Any], key: str, status: int = 200) -> dict[str, Any]:
    reply = await gateway.http.put(SETTINGS, headers={**trader.headers, "Idempotency-Key": key},
                                   json={"changes": changes, "reason": "test"})
    assert reply.status_code == status, reply.text
    return reply.json()


def test_the_tuning_workflows_reach_a_real_session_by_the_names_they_reach_a_paper_one():
    for session in (TradingSessionWorkflow, RealSessionWorkflow):
        definition = workflow._Definition.from_class(session)
        assert definition is not None
        assert SESSION_UPDATE_SETTINGS in definition.updates and SESSION_SETTINGS_QUERY in definition.queries


async def test_real_settings_change_through_the_tiers_and_reach_the_exchange(gateway, sign_up, sim):  # noqa: F811
    trader = await sign_up()
    nobody = await gateway.http.get(SETTINGS, headers=trader.headers)
    assert nobody.status_code == 404, nobody.text
    await change(gateway, trader, {"leverage": 5}, "before-any", status=404)
    await paper_start(gateway, trader)

    started = await gateway.http.post("/api/real-trading/start",
                                      headers={**trader.headers, "Idempotency-Key": "settings-start"},
                                      json={"symbols": [SYMBOL], "interval": "5m"})
    assert started.status_code == 201, started.text
    before = await settings_of(gateway, trader)
    assert before["engine_settings"]["leverage"] == 10 and before["symbols"] == [SYMBOL], before

    # Lowering risk applies at once, even before the start; a repeat of the key answers the same proposal.
    lowered = await change(gateway, trader, {"leverage": 5}, "lower-key-1")
    assert (lowered["proposal"]["status"], lowered["proposal"]["mode"]) == ("APPLIED", "real"), lowered
    assert await change(gateway, trader, {"leverage": 5}, "lower-key-1") == lowered
    after = await settings_of(gateway, trader)
    assert after["engine_settings"]["leverage"] == 5 and after["version"] == before["version"] + 1, after

    # Bad changes: refused with their field, nothing written.
    for changes, field in (({"leverage": 50}, "leverage"), ({"real_trading": 1}, "real_trading"),
                           ({"no_such_thing": 1}, "no_such_thing"), ({"leverage": "high"}, "leverage")):
        refused = await gateway.http.put(SETTINGS, headers={**trader.headers, "Idempotency-Key": f"bad-key-{field}"},
                                         json={"changes": changes})
        assert refused.status_code == 422, refused.text
        assert field in refused.text, refused.text
    assert await settings_of(gateway, trader) == after

    # The start: the exchange trades the leverage the settings now hold.
    await request_and_approve(gateway, trader, key="settings-start")
    status = await wait_until(lambda: real_status(gateway, trader), lambda s: s["status"] == "RUNNING", 30)
    assert status["leverage"] == {SYMBOL: 5}, status

    # Raising leverage is YELLOW: nothing changes until the owner approves with the token.
    raised = await change(gateway, trader, {"leverage": 8}, "raise-key-1")
    proposal = raised["proposal"]
    assert (proposal["tier"], proposal["status"]) == ("YELLOW", "AWAITING") and raised["approval_token"], raised
    assert (await settings_of(gateway, trader))["engine_settings"]["leverage"] == 5
    awaiting = await change(gateway, trader, {"leverage": 7}, "raise-key-2", status=409)
    assert "awaiting approval" in awaiting["detail"]["reason"], awaiting
    # The paper session's leverage is its own: the real proposal does not hold it.
    paper = await gateway.http.post("/api/tuning/proposals", json={"changes": {"leverage": 5}},
                                    headers={**trader.headers, "Idempotency-Key": "paper-key-1"})
    assert paper.status_code == 201 and paper.json()["proposal"]["status"] == "APPLIED", paper.text

    approved = await gateway.http.post(f"/api/tuning/proposals/{proposal['number']}/approve", headers=trader.headers,
                                       json={"token": raised["approval_token"]})
    assert approved.status_code == 200 and approved.json()["status"] == "APPLIED", approved.text
    assert (await settings_of(gateway, trader))["engine_settings"]["leverage"] == 8
    status = await real_status(gateway, trader)
    assert status["leverage"] == {SYMBOL: 8} and status["status"] == "RUNNING", status
    on_exchange = await sim_signed(sim, trader.api_key, trader.api_secret, "GET", "/fapi/v1/symbolConfig",
                                   symbol=SYMBOL)
    assert on_exchange[0]["leverage"] == 8, on_exchange
    # The periodic full read finds the exchange as the session expects it: no halt.
    checked = status["report"]["checked_at_ms"]
    status = await wait_until(lambda: real_status(gateway, trader),
                              lambda s: s["report"]["checked_at_ms"] > checked, 15)
    assert status["report"]["ok"] and status["status"] == "RUNNING", status

    # It cools down as the real session's parameter; the paper one's cooldown is its own.
    summary = (await gateway.http.get("/api/tuning", headers=trader.headers)).json()
    assert {c["path"] for c in summary["cooldowns"]} >= {"real:leverage"}, summary["cooldowns"]
    assert any(c["label"].endswith("(real session)") for c in summary["cooldowns"]), summary["cooldowns"]
    cooling = await change(gateway, trader, {"leverage": 9}, "raise-key-3", status=409)
    assert "cools down" in cooling["detail"]["reason"], cooling

    # A risk limit raised is RED: it waits for the typed text.
    red = (await change(gateway, trader, {"risk.max_daily_loss_pct": 4.0}, "red-key-1"))["proposal"]
    assert (red["tier"], red["status"]) == ("RED", "AWAITING") and red["approval_text"], red
    assert (await settings_of(gateway, trader))["engine_settings"]["risk"]["max_daily_loss_pct"] == 3.0

    # Each applied proposal took a snapshot of the real session first; a paper restore does not take one.
    snapshots = (await gateway.http.get("/api/tuning/snapshots", headers=trader.headers)).json()
    real_snapshot = next(x for x in snapshots if x["session_id"].endswith(":real"))
    restore = await gateway.http.post(f"/api/tuning/snapshots/{real_snapshot['snapshot_id']}/restore",
                                      headers={**trader.headers, "Idempotency-Key": "restore-key-1"})
    assert restore.status_code == 422 and "another session" in restore.text, restore.text

    stopped = await gateway.http.post("/api/real-trading/stop", headers=trader.headers, json={"flatten": True})
    assert stopped.status_code == 200, stopped.text
    # A new start keeps what was tuned for the real session (not the paper session's leverage).
    again = await gateway.http.post("/api/real-trading/start",
                                    headers={**trader.headers, "Idempotency-Key": "settings-start-2"},
                                    json={"symbols": [SYMBOL], "interval": "5m"})
    assert again.status_code == 201, again.text
    assert (await settings_of(gateway, trader))["engine_settings"]["leverage"] == 8
