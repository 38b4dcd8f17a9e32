"""Login: bcrypt cost 12 over every byte of long passwords, rate limits with Retry-After, audit
entries; sessions; preferences and push subscriptions; `durabot user create --admin`."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from activities.db import ensure_schema
from services.auth.passwords import BCRYPT_COST, PasswordHasher
from services.auth.rate_limit import SharedWindowLimiter
from tests.conftest import free_port

from .conftest import PASSWORD

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


async def test_long_passwords_count_in_full_and_hashes_are_bcrypt_cost_12(gateway, sign_up):
    long = "ü" * 40 + "tail-A"  # 86 bytes: past bcrypt's 72-byte limit, differing only at the end
    account = await sign_up(password=long)
    stored = await gateway.db.users.find_one({"user_id": account.user_id})
    assert stored["password_hash"].startswith("$bcrypt-sha256$v=2,t=2b,r=12$")
    assert PasswordHasher().cost_of(stored["password_hash"]) == BCRYPT_COST
    assert long not in str(stored)
    wrong_tail = await gateway.http.post("/api/auth/login", json={"email": account.email, "password": long[:-1] + "B"})
    assert wrong_tail.status_code == 401
    too_long = await gateway.http.post("/api/auth/register", json={"email": "x@example.com", "password": "p" * 1025})
    assert too_long.status_code == 422 and "p" * 1025 not in too_long.text


async def test_failed_and_successful_logins_are_audited_without_secrets(gateway, sign_up):
    account = await sign_up()
    bad = await gateway.http.post("/api/auth/login", json={"email": account.email, "password": "wrong password"})
    unknown = await gateway.http.post("/api/auth/login", json={"email": "nobody@example.com", "password": "wrong!"})
    assert bad.status_code == unknown.status_code == 401
    assert bad.json() == unknown.json() == {"detail": "wrong email or password"}
    entries = [d async for d in gateway.db.audit_logs.find({}, {"_id": 0}).sort("at", 1)]
    actions = [(e["action"], e["user_id"]) for e in entries]
    assert ("register", account.user_id) in actions and ("login", account.user_id) in actions
    assert ("login_failed", account.user_id) in actions and ("login_failed", None) in actions
    assert all(e["ip"] == "127.0.0.1" and e["at"] is not None for e in entries)
    assert "wrong password" not in str(entries) and PASSWORD not in str(entries)


async def test_login_is_rate_limited_per_email_and_per_ip_with_retry_after(auth_settings, run_gateway):
    settings = auth_settings.model_copy(update={"login_failures_per_email": 3, "login_attempts_per_ip": 8})
    async with run_gateway(settings) as gw:
        http = gw.http
        assert (await http.post("/api/auth/register", json={"email": "rl@example.com", "password": PASSWORD}))\
            .status_code == 201
        statuses = [(await http.post("/api/auth/login", json={"email": "rl@example.com", "password": "nope"}))
                    .status_code for _ in range(3)]
        assert statuses == [401, 401, 401]
        locked = await http.post("/api/auth/login", json={"email": "rl@example.com", "password": PASSWORD})
        assert locked.status_code == 429 and 1 <= int(locked.headers["retry-after"]) <= settings.login_window_s
        other = await http.post("/api/auth/login", json={"email": "other@example.com", "password": "nope"})
        assert other.status_code == 401  # the email limit is per email
        ip_statuses = [(await http.post("/api/auth/login", json={"email": f"n{i}@example.com", "password": "x"}))
                       .status_code for i in range(6)]
        # 8 per IP: register, 3 failures and "other" used 5 (the refused attempt used none).
        assert ip_statuses == [401] * 3 + [429] * 3


async def test_sliding_window_frees_slots_as_hits_age(mongo_client, db_name):
    db = mongo_client[db_name]
    await ensure_schema(db)
    now = [1000.0]
    limiter = SharedWindowLimiter(db, "test", 2, 60, clock=lambda: now[0])
    await limiter.record("k")
    now[0] += 30
    await limiter.record("k")
    assert await limiter.retry_after("k") == 30
    now[0] += 30.5
    assert await limiter.retry_after("k") is None
    assert await limiter.retry_after("other") is None
    # Keys are kept only as digests.
    assert "k" not in {doc["key"] async for doc in db.rate_limit_hits.find()}


async def test_login_limits_hold_across_gateway_processes(auth_settings, run_gateway):
    settings = auth_settings.model_copy(update={"login_failures_per_email": 3})
    async with run_gateway(settings) as one, \
            run_gateway(settings.model_copy(update={"gateway_port": free_port(), "mcp_port": free_port()})) as two:
        assert one.app is not two.app and one.settings.gateway_url != two.settings.gateway_url
        registered = await one.http.post("/api/auth/register", json={"email": "spread@example.com",
                                                                     "password": PASSWORD})
        assert registered.status_code == 201
        wrong = {"email": "spread@example.com", "password": "not it"}
        statuses = [(await gw.http.post("/api/auth/login", json=wrong)).status_code for gw in (one, two, one)]
        assert statuses == [401, 401, 401]
        # Three failures spread over two gateways reach the one limit: both refuse, even the right password.
        for gw in (two, one):
            right = await gw.http.post("/api/auth/login", json={**wrong, "password": PASSWORD})
            assert right.status_code == 429 and int(right.headers["Retry-After"]) >= 1


async def test_sessions_can_be_listed_and_ended_one_by_one(gateway, sign_up):
    account = await sign_up()
    second = (await gateway.http.post("/api/auth/login", json={"email": account.email, "password": PASSWORD})).json()
    listed = (await gateway.http.get("/api/auth/sessions", headers=account.headers)).json()
    assert {s["session_id"]: s["current"] for s in listed} == {account.session_id: True, second["session_id"]: False}
    assert (await gateway.http.delete(f"/api/auth/sessions/{second['session_id']}", headers=account.headers))\
        .status_code == 204
    me = await gateway.http.get("/api/auth/me", headers={"Authorization": f"Bearer {second['access_token']}"})
    assert me.status_code == 401
    assert (await gateway.http.get("/api/auth/me", headers=account.headers)).status_code == 200


async def test_notification_preferences_and_push_subscriptions(gateway, sign_up):
    account = await sign_up()
    defaults = (await gateway.http.get("/api/settings/notifications", headers=account.headers)).json()
    assert defaults["channels"] == {"web_push": True, "telegram": False}
    changed = {**defaults, "events": {**defaults["events"], "ai_signal": True}}
    assert (await gateway.http.put("/api/settings/notifications", headers=account.headers, json=changed))\
        .status_code == 200
    assert (await gateway.http.get("/api/settings/notifications", headers=account.headers)).json() == changed
    sneaky = {**changed, "role": "admin"}
    assert (await gateway.http.put("/api/settings/notifications", headers=account.headers, json=sneaky))\
        .status_code == 422
    subscription = {"endpoint": "https://push.example.com/abc",
                    "keys": {"p256dh": "BNcRdreALRFXTkOOUHK1EtK2wtaz5Ry4YfYCA_0QTpQ", "auth": "tBHItJI5svbpez7K"}}
    created = await gateway.http.post("/api/settings/push-subscriptions", headers=account.headers, json=subscription)
    assert created.status_code == 201 and "keys" not in created.json()
    again = await gateway.http.post("/api/settings/push-subscriptions", headers=account.headers, json=subscription)
    assert again.status_code == 409
    insecure = {**subscription, "endpoint": "http://push.example.com/abc"}
    assert (await gateway.http.post("/api/settings/push-subscriptions", headers=account.headers, json=insecure))\
        .status_code == 422
    listed = (await gateway.http.get("/api/settings/push-subscriptions", headers=account.headers)).json()
    assert [s["endpoint"] for s in listed] == ["https://push.example.com/abc"]


async def test_cli_creates_an_admin_who_can_log_in(auth_settings, run_env, run_gateway):
    env = run_env(DURABOT_MONGO_URI=auth_settings.mongo_uri, DURABOT_MONGO_DATABASE=auth_settings.mongo_database,
                  DURABOT_TEMPORAL_ADDRESS=auth_settings.temporal_address, DURABOT_VAR_DIR=str(auth_settings.var_dir))
    proc = await asyncio.create_subprocess_exec(
        str(BIN / "durabot"), "user", "create", "--admin", "--password-stdin", "Root@Example.com",
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env,
        cwd=REPO)
    out, err = await proc.communicate(f"{PASSWORD}\n".encode())
    assert proc.returncode == 0, err.decode()
    assert "created admin" in out.decode() and "root@example.com" in out.decode()
    again = await asyncio.create_subprocess_exec(
        str(BIN / "durabot"), "user", "create", "--password-stdin", "root@example.com",
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env,
        cwd=REPO)
    _, err = await again.communicate(f"{PASSWORD}\n".encode())
    assert again.returncode == 1 and "already registered" in err.decode()

    async with run_gateway(auth_settings) as gw:
        tokens = (await gw.http.post("/api/auth/login", json={"email": "root@example.com", "password": PASSWORD}))
        assert tokens.status_code == 200
        users = await gw.http.get("/api/auth/users",
                                  headers={"Authorization": f"Bearer {tokens.json()['access_token']}"})
        assert users.status_code == 200 and [u["role"] for u in users.json()] == ["admin"]
        assert await gw.db.audit_logs.find_one({"action": "user_created_cli", "details.role": "admin"})


async def test_emails_are_normalised_and_one_that_grows_when_lowercased_is_a_422(gateway):
    grows = "\u0130" * 64 + "@example.com"  # "İ" lower-cases to two characters: 128 > 64 in the local part
    reply = await gateway.http.post("/api/auth/register", json={"email": grows, "password": PASSWORD})
    assert reply.status_code == 422
    created = await gateway.http.post("/api/auth/register", json={"email": "Ada@Example.COM", "password": PASSWORD})
    assert created.status_code == 201 and created.json()["email"] == "ada@example.com"
    login = await gateway.http.post("/api/auth/login", json={"email": "ADA@example.com", "password": PASSWORD})
    assert login.status_code == 200
