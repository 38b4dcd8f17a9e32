"""The 2-step confirmation of manual real orders, through real HTTP, the real order workflow and the sim
exchange: an order that opens risk is sent only after its owner confirms it from a human session, in
time, with the secret and the terms they were shown; everything else changes nothing and sends nothing."""

from __future__ import annotations

import asyncio

import pytest
from temporalio.client import WorkflowUpdateFailedError

from core.order_contracts import ConfirmOrderInput, order_workflow_id
from services.errors import Forbidden
from services.principal import Principal
from tests.conftest import with_key
from workflows.order import OrderWorkflow

from .conftest import SYMBOL, order_requests

ORDERS = "/api/real-trading/orders"


def market_buy(quantity: float = 0.01) -> dict:
    return {"symbol": SYMBOL, "side": "BUY", "order_type": "MARKET", "quantity": quantity}


async def request(gateway, trader, body: dict, key: str | None = None):
    return await gateway.http.post(ORDERS, headers=with_key(trader.headers) if key is None else
                                   {**trader.headers, "Idempotency-Key": key}, json=body)


async def confirm(gateway, trader, order_id: str, token: str, digest: str):
    return await gateway.http.post(f"{ORDERS}/{order_id}/confirm", headers=trader.headers,
                                   json={"token": token, "terms_digest": digest})


async def status_of(gateway, trader, order_id: str) -> dict:
    reply = await gateway.http.get(f"{ORDERS}/{order_id}", headers=trader.headers)
    assert reply.status_code == 200, reply.text
    return reply.json()


async def test_an_order_waits_for_its_owner_and_refuses_every_wrong_confirmation(gateway, sign_up, sim,
                                                                                 temporal_client):
    alice, bob = await sign_up(), await sign_up()
    asked = await request(gateway, alice, market_buy())
    assert asked.status_code == 201, asked.text
    order, token = asked.json()["order"], asked.json()["confirmation_token"]
    order_id, digest = order["order_id"], order["terms_digest"]
    assert order["status"] == "AWAITING_CONFIRMATION" and token
    summary = order["summary"]
    assert summary["expected_price"] > 0 and summary["notional"] == pytest.approx(0.01 * summary["expected_price"])
    assert summary["fee"] == pytest.approx(summary["notional"] * 0.0005)
    assert summary["liquidation_price"] < summary["expected_price"]
    assert [c["check"] for c in summary["risk_checks"]] == ["min_notional", "max_order_notional"]
    assert order["confirm_by_ms"] - order["created_at_ms"] == 30_000

    # Another user, an agent, a wrong secret, other terms: refused, and nothing sent.
    assert (await confirm(gateway, bob, order_id, token, digest)).status_code == 404
    agent = Principal(alice.user_id, "mcp", human=False, tier="critical")
    with pytest.raises(Forbidden):
        await gateway.app.state.services.real_orders.confirm(agent, order_id, token, digest)
    handle = temporal_client.get_workflow_handle(order_workflow_id(alice.user_id, order_id))
    with pytest.raises(WorkflowUpdateFailedError) as by_agent:
        # The workflow refuses an agent on its own, whatever the adapter let through.
        await handle.execute_update(OrderWorkflow.confirm, ConfirmOrderInput(alice.user_id, False, "dashboard",
                                                                             "0" * 64, digest))
    assert "never confirm" in str(by_agent.value.cause)
    wrong = await confirm(gateway, alice, order_id, "not-the-secret", digest)
    assert wrong.status_code == 422 and wrong.json()["detail"]["field"] == "token", wrong.text
    tampered = await confirm(gateway, alice, order_id, token, "0" * 32)
    assert tampered.status_code == 422 and tampered.json()["detail"]["field"] == "terms_digest", tampered.text
    assert (await status_of(gateway, alice, order_id))["status"] == "AWAITING_CONFIRMATION"
    assert await order_requests(sim) == []

    done = await confirm(gateway, alice, order_id, token, digest)
    assert done.status_code == 200, done.text
    assert done.json()["confirmed_by"] == "dashboard"
    assert done.json()["status"] == "FILLED", done.text
    assert len(await order_requests(sim)) == 1
    reused = await confirm(gateway, alice, order_id, token, digest)
    assert reused.status_code == 422 and "already" in reused.json()["detail"]["reason"], reused.text
    assert len(await order_requests(sim)) == 1

    # No secret (token, its HMAC's input, API key or secret) is in the workflow's history.
    # Raw event bytes: payloads are stored as-is there (the JSON form would hide them in base64).
    history = b"".join(event.SerializeToString() for event in (await handle.fetch_history()).events)
    assert order_id.encode() in history  # the scan reads payloads
    for secret in (token, alice.api_key, alice.api_secret):
        assert secret.encode() not in history
    assert token not in gateway.logs.getvalue() and alice.api_secret not in gateway.logs.getvalue()


async def test_an_unconfirmed_order_expires_and_a_cancelled_one_stays_cancelled(gateway, sign_up, sim):
    gateway.settings.order_confirm_expiry_s = 4.0
    trader = await sign_up()
    first = (await request(gateway, trader, market_buy())).json()
    second = (await request(gateway, trader, market_buy())).json()
    cancelled = await gateway.http.post(f"{ORDERS}/{second['order']['order_id']}/cancel", headers=trader.headers,
                                        json={"reason": "changed my mind"})
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "CANCELED", cancelled.text
    for _ in range(100):
        expired = await status_of(gateway, trader, first["order"]["order_id"])
        if expired["status"] != "AWAITING_CONFIRMATION":
            break
        await asyncio.sleep(0.1)
    assert expired["status"] == "EXPIRED" and "not confirmed in time" in expired["reason"]
    assert expired["history"][-1]["at_ms"] >= first["order"]["confirm_by_ms"]
    for asked in (first, second):
        late = await confirm(gateway, trader, asked["order"]["order_id"], asked["confirmation_token"],
                             asked["order"]["terms_digest"])
        assert late.status_code == 422, late.text
    again = await gateway.http.post(f"{ORDERS}/{second['order']['order_id']}/cancel", headers=trader.headers,
                                    json={})
    assert again.status_code == 422 and "canceled already" in again.text
    assert await order_requests(sim) == []
    listed = (await gateway.http.get(ORDERS, headers=trader.headers)).json()
    assert {o["order_id"]: o["status"] for o in listed} == {
        first["order"]["order_id"]: "EXPIRED", second["order"]["order_id"]: "CANCELED"}


async def test_a_repeated_request_is_the_same_order_and_a_reused_key_is_refused(gateway, sign_up, sim):
    trader = await sign_up()
    key = "same-key-0001"
    answers = await asyncio.gather(*(request(gateway, trader, market_buy(), key) for _ in range(4)))
    assert {a.status_code for a in answers} == {201}, [a.text for a in answers]
    assert len({a.json()["order"]["order_id"] for a in answers}) == 1
    assert len({a.json()["confirmation_token"] for a in answers}) == 1
    other = await request(gateway, trader, market_buy(0.02), key)
    assert other.status_code == 422 and other.json()["detail"]["field"] == "Idempotency-Key", other.text
    no_key = await gateway.bare.post(ORDERS, headers=trader.headers, json=market_buy())
    assert no_key.status_code == 400 and no_key.json()["detail"]["field"] == "Idempotency-Key", no_key.text
    assert len((await gateway.http.get(ORDERS, headers=trader.headers)).json()) == 1


@pytest.mark.parametrize(("body", "field"), [
    ({**market_buy(), "symbol": "NOPEUSDT"}, None),
    ({**market_buy(), "quantity": 0.0000001}, "quantity"),
    ({**market_buy(), "price": 100.0}, "price"),
    ({**market_buy(), "order_type": "LIMIT"}, "price"),
    ({**market_buy(), "quantity": 1000.0}, "quantity"),
])
async def test_bad_orders_are_refused_before_anything_starts(gateway, sign_up, sim, body, field):
    trader = await sign_up()
    reply = await request(gateway, trader, body)
    assert reply.status_code in (404, 422), reply.text
    if field is not None:
        assert reply.json()["detail"]["field"] == field, reply.text
    assert (await gateway.http.get(ORDERS, headers=trader.headers)).json() == []
    assert await order_requests(sim) == []


async def test_without_a_key_or_two_factor_nothing_is_sent(gateway, sign_up, sim):
    keyless = await sign_up(with_key=False)
    reply = await request(gateway, keyless, market_buy())
    assert reply.status_code == 422 and reply.json()["detail"]["field"] == "key_id", reply.text

    # A user without two-factor may request; confirming above the notional threshold needs enrolling first.
    plain = await sign_up(two_factor=False, with_key=False)
    await gateway.app.state.services.db.api_keys.insert_one(await _sealed_key(gateway, plain.user_id, sim))
    asked = (await request(gateway, plain, market_buy(0.1))).json()
    assert asked["order"]["summary"]["notional"] > gateway.settings.step_up_notional_default
    refused = await confirm(gateway, plain, asked["order"]["order_id"], asked["confirmation_token"],
                            asked["order"]["terms_digest"])
    assert refused.status_code == 403 and refused.json()["step_up"] == "enrol", refused.text
    assert await order_requests(sim) == []


async def _sealed_key(gateway, user_id: str, sim) -> dict:
    """An API key document as the settings API stores one (that API itself wants a two-factor step-up)."""
    from datetime import UTC, datetime

    from activities.binance.key_vault import ApiCredentials, MasterKeyring, seal_credentials

    from .conftest import sim_call

    key = await sim_call(sim, "POST", "/sim/keys", json={"enable_futures": True})
    keyring = MasterKeyring.from_settings(gateway.settings)
    sealed = seal_credentials(keyring, user_id, "k1", ApiCredentials(key["api_key"], key["api_secret"]))
    return {"user_id": user_id, "key_id": "k1", "label": "plain", "exchange": "binance",
            "created_at": datetime.now(UTC), **sealed}
