"""Two-factor authentication (TOTP) through the real gateway: enrolment with a real TOTP generator, the
code step of a login, replays, expiry and other users' codes, recovery codes, rate limits, step-up
on money and access actions (and its end after 5 minutes or a token refresh), the admins' policy,
and secrets that never show up again."""

from __future__ import annotations

import asyncio
import base64
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyotp
import pytest
from bson import json_util

from tests.auth.conftest import PASSWORD, Account
from tests.conftest import REPO, enrol_two_factor

BIN = Path(sys.executable).parent

KEY = {"label": "main", "exchange": "binance", "api_key": "A" * 64, "api_secret": "S" * 64}


FAILURES_PER_USER = 8


@pytest.fixture
def auth_settings(auth_settings):
    # The per-IP budget is wide so that one test host can run them all.
    return auth_settings.model_copy(update={"two_factor_attempts_per_ip": 1000,
                                            "two_factor_failures_per_user": FAILURES_PER_USER})


def other_code(totp: pyotp.TOTP) -> str:
    """A valid code of a step not used yet: the next one (accepted with ±1 step tolerance)."""
    return totp.at(time.time() + 30)


async def login(http: Any, email: str, password: str = PASSWORD) -> dict[str, Any]:
    reply = await http.post("/api/auth/login", json={"email": email, "password": password})
    assert reply.status_code == 200, reply.text
    return reply.json()


async def code_step(http: Any, challenge: str, code: str) -> Any:
    return await http.post("/api/auth/login/2fa", json={"challenge": challenge, "code": code})


def bearer(access: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {access}"}


async def age_step_up(gateway: Any, account: Account, seconds: int) -> None:
    """Let the session's step-up be ``seconds`` old (as the clock would after that wait)."""
    done = await gateway.db.sessions.update_one(
        {"session_id": account.session_id}, {"$set": {"step_up_at": datetime.now(UTC) - timedelta(seconds=seconds)}})
    assert done.matched_count == 1


async def test_enrolment_round_trip_and_the_code_step_of_a_login(gateway, sign_up):
    account = await sign_up()
    other = await login(gateway.http, account.email)  # a second login session, to be ended by enabling
    status = (await gateway.http.get("/api/auth/2fa", headers=account.headers)).json()
    assert status["enabled"] is False and status["step_up_until"] is None

    setup = (await gateway.http.post("/api/auth/2fa/setup", headers=account.headers)).json()
    totp = pyotp.TOTP(setup["secret"])
    uri = pyotp.parse_uri(setup["provisioning_uri"])
    assert uri.secret == setup["secret"] and uri.name == account.email and uri.issuer == "Durabot"
    assert base64.b64decode(setup["qr_svg"].removeprefix("data:image/svg+xml;base64,")).startswith(b"<svg")
    wrong = await gateway.http.post("/api/auth/2fa/enable", headers=account.headers, json={"code": "000000"})
    assert wrong.status_code == 422 and wrong.json()["detail"]["field"] == "code"
    assert (await gateway.http.get("/api/auth/2fa", headers=account.headers)).json()["enabled"] is False
    enabled = await gateway.http.post("/api/auth/2fa/enable", headers=account.headers, json={"code": totp.now()})
    assert enabled.status_code == 200, enabled.text
    recovery = enabled.json()["recovery_codes"]
    assert len(set(recovery)) == 10
    status = (await gateway.http.get("/api/auth/2fa", headers=account.headers)).json()
    assert status["enabled"] and status["recovery_codes_left"] == 10 and status["step_up_until"] is not None
    again = await gateway.http.post("/api/auth/2fa/setup", headers=account.headers)
    assert again.status_code == 409
    # Enabling ended the other login session; this one goes on.
    refreshed = await gateway.http.post("/api/auth/refresh", json={"refresh_token": other["refresh_token"]})
    assert refreshed.status_code == 401
    assert (await gateway.http.get("/api/auth/me", headers=bearer(other["access_token"]))).status_code == 401
    assert (await gateway.http.get("/api/auth/me", headers=account.headers)).status_code == 200

    # The password alone gives a challenge, never tokens; the challenge is no bearer token either.
    first = await login(gateway.http, account.email)
    assert first["two_factor_required"] is True and "access_token" not in first and "refresh_token" not in first
    assert (await gateway.http.get("/api/auth/me", headers=bearer(first["challenge"]))).status_code == 401
    done = await code_step(gateway.http, first["challenge"], other_code(totp))
    assert done.status_code == 200, done.text
    tokens = done.json()
    assert (await gateway.http.get("/api/auth/me", headers=bearer(tokens["access_token"]))).status_code == 200
    # A login's code counts as a step-up; a refresh keeps the login but not the step-up.
    assert (await gateway.http.get("/api/auth/2fa", headers=bearer(tokens["access_token"]))).json()["step_up_until"]
    renewed = (await gateway.http.post("/api/auth/refresh", json={"refresh_token": tokens["refresh_token"]})).json()
    assert (await gateway.http.get("/api/auth/2fa", headers=bearer(renewed["access_token"]))).json()[
        "step_up_until"] is None
    # The challenge was used up.
    assert (await code_step(gateway.http, first["challenge"], recovery[0])).status_code == 401
    actions = [d["action"] async for d in gateway.db.audit_logs.find({"user_id": account.user_id}).sort("at", 1)]
    for action in ("two_factor_setup_started", "two_factor_failed", "two_factor_enabled",
                   "two_factor_challenge_issued", "login"):
        assert action in actions, actions


async def test_wrong_reused_expired_and_other_users_codes_fail_and_recovery_codes_work_once(gateway, sign_up):
    account, stranger = await sign_up(), await sign_up()
    totp = await enrol_two_factor(gateway.http, account.headers)
    strangers = await enrol_two_factor(gateway.http, stranger.headers)
    used = other_code(totp)
    assert (await code_step(gateway.http, (await login(gateway.http, account.email))["challenge"], used)).status_code \
        == 200
    challenge = (await login(gateway.http, account.email))["challenge"]
    refusals = {
        "wrong": "123456" if used != "123456" else "654321",
        "reused": used,
        "expired (3 steps old)": totp.at(time.time() - 90),
        "from another user's app": strangers.at(time.time() + 30),
        "another user's recovery code": strangers.recovery[0],
        "not a code": "abc",
    }
    for what, code in refusals.items():
        reply = await code_step(gateway.http, challenge, code)
        assert reply.status_code in (401, 422), (what, reply.status_code, reply.text)
        assert "access_token" not in reply.text, what
    assert "used already" in (await code_step(gateway.http, challenge, used)).json()["detail"]

    # A recovery code logs in once (with or without its dash, any case), then never again.
    code = totp.recovery[0]
    ok = await code_step(gateway.http, challenge, code.replace("-", "").upper())
    assert ok.status_code == 200, ok.text
    second = (await login(gateway.http, account.email))["challenge"]
    assert (await code_step(gateway.http, second, code)).status_code == 401
    status = (await gateway.http.get("/api/auth/2fa", headers=account.headers)).json()
    assert status["recovery_codes_left"] == 9
    assert await gateway.db.audit_logs.find_one({"user_id": account.user_id, "action": "recovery_code_used"})
    # An expired challenge is refused even with a right code.
    await gateway.db.login_challenges.update_many({"user_id": account.user_id},
                                                  {"$set": {"expires_at": datetime.now(UTC) - timedelta(seconds=1)}})
    assert (await code_step(gateway.http, second, totp.recovery[1])).status_code == 401


async def test_wrong_codes_are_rate_limited_per_user(gateway, sign_up):
    account = await sign_up()
    totp = await enrol_two_factor(gateway.http, account.headers)
    challenge = (await login(gateway.http, account.email))["challenge"]
    right = other_code(totp)
    wrong = [f"{n:06d}" for n in range(20) if f"{n:06d}" not in (right, totp.now())][:FAILURES_PER_USER]
    for code in wrong:
        assert (await code_step(gateway.http, challenge, code)).status_code == 401
    # The limit is reached: even the right code (or a step-up in a live session) waits now.
    limited = await code_step(gateway.http, challenge, right)
    assert limited.status_code == 429 and int(limited.headers["Retry-After"]) > 0
    stepped = await gateway.http.post("/api/auth/2fa/step-up", headers=account.headers, json={"code": right})
    assert stepped.status_code == 429


async def test_the_same_code_sent_twice_at_once_steps_up_once(gateway, sign_up):
    account = await sign_up()
    totp = await enrol_two_factor(gateway.http, account.headers)
    code = other_code(totp)
    replies = await asyncio.gather(*(gateway.http.post("/api/auth/2fa/step-up", headers=account.headers,
                                                       json={"code": code}) for _ in range(2)))
    assert sorted(r.status_code for r in replies) == [200, 422], [r.text for r in replies]


async def test_step_up_guards_keys_notional_and_disabling(gateway, sign_up):
    account = await sign_up()
    enrol = await gateway.http.post("/api/settings/api-keys", headers=account.headers, json=KEY)
    assert enrol.status_code == 403 and enrol.json()["step_up"] == "enrol", enrol.text
    totp = await enrol_two_factor(gateway.http, account.headers)

    async def actions() -> dict[str, Any]:
        return {
            "save key": await gateway.http.post("/api/settings/api-keys", headers=account.headers, json=KEY),
            "notional": await gateway.http.put("/api/auth/2fa/step-up-notional", headers=account.headers,
                                               json={"step_up_notional": 250.0}),
        }

    # Enabling stepped this session up: allowed now.
    assert {k: r.status_code for k, r in (await actions()).items()} == {"save key": 201, "notional": 200}
    # Five minutes later: refused, with what to do; nothing was written.
    await age_step_up(gateway, account, 301)
    for what, reply in (await actions()).items():
        assert reply.status_code == 403 and reply.json()["step_up"] == "code", (what, reply.text)
        assert "from the last 5 minutes" in reply.json()["detail"]
    assert len((await gateway.http.get("/api/settings/api-keys", headers=account.headers)).json()) == 1
    disable = await gateway.http.post("/api/auth/2fa/disable", headers=account.headers)
    assert disable.status_code == 403 and disable.json()["step_up"] == "code"
    # A fresh code: allowed again.
    step = await gateway.http.post("/api/auth/2fa/step-up", headers=account.headers, json={"code": other_code(totp)})
    assert step.status_code == 200, step.text
    assert {k: r.status_code for k, r in (await actions()).items()} == {"save key": 201, "notional": 200}
    # After a token refresh: refused again.
    renewed = (await gateway.http.post("/api/auth/refresh", json={"refresh_token": account.refresh})).json()
    account.access, account.refresh = renewed["access_token"], renewed["refresh_token"]
    for what, reply in (await actions()).items():
        assert reply.status_code == 403 and reply.json()["step_up"] == "code", (what, reply.text)
    assert (await gateway.http.post("/api/auth/2fa/disable", headers=account.headers)).status_code == 403
    # With a recovery code as the fresh code, disabling works; the next key save asks for enrolment.
    step = await gateway.http.post("/api/auth/2fa/step-up", headers=account.headers, json={"code": totp.recovery[3]})
    assert step.status_code == 200, step.text
    assert (await gateway.http.post("/api/auth/2fa/disable", headers=account.headers)).status_code == 204
    after = await gateway.http.post("/api/settings/api-keys", headers=account.headers, json=KEY)
    assert after.status_code == 403 and after.json()["step_up"] == "enrol"
    assert (await login(gateway.http, account.email)).get("access_token")  # no code step any more
    actions_logged = {d["action"] async for d in gateway.db.audit_logs.find({"user_id": account.user_id})}
    assert {"step_up", "recovery_code_used", "step_up_notional_changed", "two_factor_disabled"} <= actions_logged


async def test_regenerated_recovery_codes_replace_the_old_ones(gateway, sign_up):
    account = await sign_up()
    totp = await enrol_two_factor(gateway.http, account.headers)
    fresh = await gateway.http.post("/api/auth/2fa/recovery-codes", headers=account.headers)
    assert fresh.status_code == 200, fresh.text
    new_codes = fresh.json()["recovery_codes"]
    assert len(new_codes) == 10 and not set(new_codes) & set(totp.recovery)
    challenge = (await login(gateway.http, account.email))["challenge"]
    assert (await code_step(gateway.http, challenge, totp.recovery[0])).status_code == 401
    assert (await code_step(gateway.http, challenge, new_codes[0])).status_code == 200


async def test_an_admin_policy_makes_users_enrol_before_anything_else(gateway, sign_up, auth_settings):
    admin, user = await sign_up(), await sign_up()
    await gateway.db.users.update_one({"user_id": admin.user_id}, {"$set": {"role": "admin"}})
    as_user = await gateway.http.put("/api/auth/2fa/policy", headers=user.headers, json={"require": "all"})
    assert as_user.status_code == 403
    unenrolled = await gateway.http.put("/api/auth/2fa/policy", headers=admin.headers, json={"require": "all"})
    assert unenrolled.status_code == 403 and unenrolled.json()["step_up"] == "enrol"
    await enrol_two_factor(gateway.http, admin.headers)
    bad = await gateway.http.put("/api/auth/2fa/policy", headers=admin.headers, json={"require": "everyone"})
    assert bad.status_code == 422
    assert (await gateway.http.put("/api/auth/2fa/policy", headers=admin.headers,
                                   json={"require": "all"})).json() == {"require": "all"}
    try:
        await asyncio.sleep(5.1)  # gateways re-read the policy every 5 s
        blocked = await gateway.http.get("/api/paper-trading/status", headers=user.headers)
        assert blocked.status_code == 403 and blocked.json()["step_up"] == "enrol", blocked.text
        assert (await gateway.http.get("/api/auth/me", headers=user.headers)).status_code == 200
        status = (await gateway.http.get("/api/auth/2fa", headers=user.headers)).json()
        assert status["required"] is True
        totp = await enrol_two_factor(gateway.http, user.headers)
        assert (await gateway.http.get("/api/settings/api-keys", headers=user.headers)).status_code == 200
        # Required: it cannot be turned off, even with a fresh code.
        await gateway.http.post("/api/auth/2fa/step-up", headers=user.headers, json={"code": totp.recovery[0]})
        kept = await gateway.http.post("/api/auth/2fa/disable", headers=user.headers)
        assert kept.status_code == 403 and "requires" in kept.json()["detail"]
    finally:
        await gateway.db.system_config.delete_one({"key": "two_factor_policy"})


async def test_secrets_and_recovery_codes_are_nowhere_to_be_read_after_enrolment(gateway, sign_up):
    account = await sign_up()
    totp = await enrol_two_factor(gateway.http, account.headers)
    await gateway.http.post("/api/auth/2fa/step-up", headers=account.headers, json={"code": totp.recovery[0]})
    readable = [totp.secret, *totp.recovery, *(c.replace("-", "") for c in totp.recovery)]
    dump = ""
    for name in await gateway.db.list_collection_names():
        dump += json_util.dumps([d async for d in gateway.db[name].find()])
    answers = ""
    for path in ("/api/auth/2fa", "/api/auth/me", "/api/auth/sessions"):
        answers += (await gateway.http.get(path, headers=account.headers)).text
    logs = gateway.logs.getvalue()
    for secret in readable:
        assert secret not in dump and secret.upper() not in dump
        assert secret not in answers and secret not in logs


async def test_an_operator_resets_two_factor_for_a_lost_device(gateway, sign_up, auth_settings, run_env):
    account = await sign_up(two_factor=True)
    env = run_env(DURABOT_MONGO_URI=auth_settings.mongo_uri, DURABOT_MONGO_DATABASE=auth_settings.mongo_database,
                  DURABOT_TEMPORAL_ADDRESS=auth_settings.temporal_address, DURABOT_VAR_DIR=str(auth_settings.var_dir))
    for email, code, said in ((account.email, 0, "two-factor authentication is off"),
                              ("nobody@example.com", 1, "no user nobody@example.com")):
        proc = await asyncio.create_subprocess_exec(
            str(BIN / "durabot"), "user", "reset-2fa", email, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE, env=env, cwd=REPO)
        out, err = await proc.communicate()
        assert proc.returncode == code and said in (out + err).decode(), (out, err)
    # Every session of theirs ended; the password alone logs in again, and two-factor can be set up anew.
    assert (await gateway.http.get("/api/auth/me", headers=account.headers)).status_code == 401
    fresh = await login(gateway.http, account.email)
    assert "access_token" in fresh
    status = (await gateway.http.get("/api/auth/2fa", headers=bearer(fresh["access_token"]))).json()
    assert status["enabled"] is False
    assert await gateway.db.audit_logs.find_one({"user_id": account.user_id, "action": "two_factor_reset_cli"})
