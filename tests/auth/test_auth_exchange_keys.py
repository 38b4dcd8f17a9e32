"""Exchange keys: sealed at rest and bound to their user, masked in every reply, tested with signed
calls against the sim exchange (which checks signatures, recvWindow and key restrictions for real)."""

from __future__ import annotations

import hashlib
import hmac
import time
from urllib.parse import urlencode

import httpx
import pytest

from activities.binance.key_vault import (
    ApiCredentials,
    KeyVaultError,
    MasterKeyring,
    load_credentials,
    new_master_key_text,
    parse_master_key,
)
from activities.binance.signed import SignedBinanceClient
from activities.exchange_errors import PermanentExchangeError

from .conftest import provision_sim_key


async def _save_key(gateway, account, key: dict, label: str = "main") -> dict:
    reply = await gateway.http.post("/api/settings/api-keys", headers=account.headers, json={
        "label": label, "api_key": key["api_key"], "api_secret": key["api_secret"]})
    assert reply.status_code == 201, reply.text
    return reply.json()


async def test_a_safe_key_tests_ok_and_an_unsafe_one_warns_loudly(gateway, sign_up, sim):
    gateway.settings.exchange_rest_url = sim.rest_url
    account = await sign_up(two_factor=True)
    safe = await provision_sim_key(sim, ip_restrict=True, allowed_ips=["127.0.0.1"],
                                   enable_spot_and_margin_trading=True)
    risky = await provision_sim_key(sim, enable_withdrawals=True, ip_restrict=False)

    saved = await _save_key(gateway, account, safe, "safe")
    assert saved["api_key_masked"] == "****" + safe["api_key"][-4:]
    assert safe["api_key"] not in str(saved) and safe["api_secret"] not in str(saved)
    good = (await gateway.http.post(f"/api/settings/api-keys/{saved['key_id']}/test", headers=account.headers))
    assert good.status_code == 200, good.text
    result = good.json()
    assert result["ok"] is True and result["warnings"] == []
    assert result["can_trade"] is True and result["can_withdraw"] is False
    assert result["restrictions"]["ip_restrict"] is True and result["restrictions"]["enable_withdrawals"] is False

    risky_id = (await _save_key(gateway, account, risky, "risky"))["key_id"]
    loud = (await gateway.http.post(f"/api/settings/api-keys/{risky_id}/test", headers=account.headers)).json()
    assert loud["ok"] is True and loud["restrictions"]["enable_withdrawals"] is True
    assert any(w.startswith("DANGER") and "WITHDRAW" in w for w in loud["warnings"])
    assert any("no IP allowlist" in w for w in loud["warnings"])
    assert '"exchange key is over-privileged"' in gateway.logs.getvalue()

    listed = (await gateway.http.get("/api/settings/api-keys", headers=account.headers)).json()
    assert [k["label"] for k in listed] == ["safe", "risky"]
    assert listed[1]["last_test"]["warnings"] == loud["warnings"]
    actions = [d["action"] async for d in gateway.db.audit_logs.find({"user_id": account.user_id})]
    assert actions.count("api_key_saved") == 2 and actions.count("api_key_tested") == 2

    assert (await gateway.http.delete(f"/api/settings/api-keys/{risky_id}", headers=account.headers)).status_code == 204
    assert len((await gateway.http.get("/api/settings/api-keys", headers=account.headers)).json()) == 1
    assert await gateway.db.audit_logs.find_one({"action": "api_key_deleted", "details.key_id": risky_id})


async def test_a_key_the_exchange_refuses_is_reported_not_a_server_error(gateway, sign_up, sim):
    gateway.settings.exchange_rest_url = sim.rest_url
    account = await sign_up(two_factor=True)
    unknown = {"api_key": "A" * 64, "api_secret": "B" * 64}
    elsewhere = await provision_sim_key(sim, ip_restrict=True, allowed_ips=["203.0.113.7"])
    for key in (unknown, elsewhere):
        key_id = (await _save_key(gateway, account, key))["key_id"]
        reply = await gateway.http.post(f"/api/settings/api-keys/{key_id}/test", headers=account.headers)
        assert reply.status_code == 200
        assert reply.json()["ok"] is False and "-2015" in reply.json()["error"]


async def test_an_unreachable_exchange_is_a_declared_502(gateway, sign_up, get_free_port):
    gateway.settings.exchange_rest_url = f"http://127.0.0.1:{get_free_port()}"
    account = await sign_up(two_factor=True)
    key_id = (await _save_key(gateway, account, {"api_key": "C" * 64, "api_secret": "D" * 64}))["key_id"]
    reply = await gateway.http.post(f"/api/settings/api-keys/{key_id}/test", headers=account.headers)
    assert reply.status_code == 502 and "unavailable" in reply.json()["detail"]


async def test_keys_are_sealed_and_bound_to_their_owner(gateway, sign_up):
    alice, bob = await sign_up(two_factor=True), await sign_up(two_factor=True)
    key = {"api_key": "K" * 60 + "1234", "api_secret": "S" * 64}
    key_id = (await _save_key(gateway, alice, key))["key_id"]
    doc = await gateway.db.api_keys.find_one({"key_id": key_id})
    raw = repr(doc)
    assert key["api_key"] not in raw and key["api_secret"] not in raw
    keyring = gateway.app.state.services.auth.keyring
    creds = await load_credentials(gateway.db, keyring, alice.user_id, key_id)
    assert (creds.api_key, creds.api_secret) == (key["api_key"], key["api_secret"])
    assert key["api_secret"] not in repr(creds) and key["api_key"] not in repr(creds)

    # Alice's ciphertext planted under Bob's user ID does not decrypt for Bob.
    await gateway.db.api_keys.insert_one({**{k: v for k, v in doc.items() if k != "_id"}, "user_id": bob.user_id})
    with pytest.raises(KeyVaultError):
        await load_credentials(gateway.db, keyring, bob.user_id, key_id)
    # A different master key cannot open it either, and a retired one still can.
    other = MasterKeyring.from_keys(parse_master_key(new_master_key_text()))
    with pytest.raises(KeyVaultError):
        await load_credentials(gateway.db, other, alice.user_id, key_id)
    rotated = MasterKeyring.from_keys(parse_master_key(new_master_key_text()),
                                      retired=(keyring.keys[keyring.current_id],))
    assert (await load_credentials(gateway.db, rotated, alice.user_id, key_id)).api_secret == key["api_secret"]


async def test_secret_validation_errors_do_not_echo_the_secret(gateway, sign_up):
    account = await sign_up(two_factor=True)
    secret = "not-a-valid-secret-but-still-private-" * 2
    reply = await gateway.http.post("/api/settings/api-keys", headers=account.headers,
                                    json={"label": "x", "api_key": "A" * 64, "api_secret": secret})
    assert reply.status_code == 422
    assert secret not in reply.text and "api_secret" in reply.text


def _signed(query: dict, secret: str) -> str:
    text = urlencode(query)
    return f"{text}&signature={hmac.new(secret.encode(), text.encode(), hashlib.sha256).hexdigest()}"


async def test_sim_checks_signature_timestamp_and_key_like_binance(sim):
    key = await provision_sim_key(sim)
    now = int(time.time() * 1000)
    cases = {
        "good": ({"X-MBX-APIKEY": key["api_key"]}, _signed({"timestamp": now}, key["api_secret"]), 200, None),
        "bad signature": ({"X-MBX-APIKEY": key["api_key"]}, _signed({"timestamp": now}, "x" * 64), 400, -1022),
        "stale": ({"X-MBX-APIKEY": key["api_key"]},
                  _signed({"recvWindow": 5000, "timestamp": now - 10_000}, key["api_secret"]), 400, -1021),
        "ahead": ({"X-MBX-APIKEY": key["api_key"]}, _signed({"timestamp": now + 5000}, key["api_secret"]), 400,
                  -1021),
        "recvWindow too large": ({"X-MBX-APIKEY": key["api_key"]},
                                 _signed({"recvWindow": 70_000, "timestamp": now}, key["api_secret"]), 400, -1131),
        "no signature": ({"X-MBX-APIKEY": key["api_key"]}, f"timestamp={now}", 400, -1102),
        "unknown key": ({"X-MBX-APIKEY": "Z" * 64}, _signed({"timestamp": now}, key["api_secret"]), 401, -2015),
        "malformed key": ({"X-MBX-APIKEY": "bad key!"}, _signed({"timestamp": now}, key["api_secret"]), 401, -2014),
        "no key": ({}, _signed({"timestamp": now}, key["api_secret"]), 401, -2014),
    }
    async with httpx.AsyncClient(base_url=sim.rest_url) as http:
        for name, (headers, query, status, code) in cases.items():
            for path in ("/api/v3/account", "/sapi/v1/account/apiRestrictions"):
                reply = await http.get(f"{path}?{query}", headers=headers)
                assert reply.status_code == status, (name, path, reply.text)
                if code is not None:
                    assert reply.json()["code"] == code, (name, path, reply.text)
        listed = (await http.get("/sim/keys")).json()
    assert [k["api_key"] for k in listed] == ["****" + key["api_key"][-4:]]
    assert key["api_secret"] not in str(listed)


async def test_signed_client_reports_refusals_without_the_key(sim):
    key = await provision_sim_key(sim, enable_withdrawals=True)
    good = ApiCredentials(key["api_key"], key["api_secret"])
    async with SignedBinanceClient(sim.rest_url, good) as client:
        await client.sync_time()
        restrictions = await client.api_restrictions()
        account = await client.account()
    assert restrictions.enable_withdrawals and account.can_withdraw and account.account_type == "SPOT"
    wrong = ApiCredentials(key["api_key"], "W" * 64)
    async with SignedBinanceClient(sim.rest_url, wrong) as client:
        with pytest.raises(PermanentExchangeError) as refused:
            await client.account()
    assert refused.value.code == -1022
    assert key["api_key"] not in str(refused.value) and "W" * 64 not in str(refused.value)
    assert key["api_key"] not in repr(client)
