"""Object-level authorisation (OWASP API1): user B aims every ID-taking endpoint at user A's objects.

Routes come from the OpenAPI schema, so a new route with an ``..._id`` path parameter joins the suite
by itself (and fails it loudly until the suite knows which of A's objects to aim it at). A success is a
2xx reply or any change to A's documents in any collection; a 5xx fails the suite as well.
"""

from __future__ import annotations

import re
from typing import Any

from tests.conftest import enrol_two_factor

PATH_PARAM = re.compile(r"\{([^}]+)\}")
ADMIN_ONLY = {("put", "/api/auth/users/{user_id}/role")}
BODIES: dict[tuple[str, str], dict[str, Any]] = {
    ("put", "/api/auth/users/{user_id}/role"): {"role": "user"},
}


async def _state_of(db, user_id: str) -> dict[str, list[dict[str, Any]]]:
    """Every document of the user in every collection (audit entries excepted: B's attempts add none of A's)."""
    state = {}
    for name in sorted(await db.list_collection_names()):
        if name in ("audit_logs", "events"):
            continue
        docs = [doc async for doc in db[name].find({"user_id": user_id}, {"_id": 0}).sort("created_at", 1)]
        if docs:
            state[name] = docs
    return state


async def _objects_of(gateway, account) -> dict[str, str]:
    await enrol_two_factor(gateway.http, account.headers)  # keys need a step-up; enrolling is one
    key = await gateway.http.post("/api/settings/api-keys", headers=account.headers,
                                  json={"label": "a", "api_key": "A" * 64, "api_secret": "B" * 64})
    push = await gateway.http.post("/api/settings/push-subscriptions", headers=account.headers, json={
        "endpoint": f"https://push.example.com/send/{account.user_id}",
        "keys": {"p256dh": "BNcRdreALRFXTkOOUHK1EtK2wtaz5Ry4YfYCA_0QTpQtUbVlUls0VJXg7A8u-Ts1XbjhazAkj7I99e8QcYP7DkM",
                 "auth": "tBHItJI5svbpez7KI4CCXg"}})
    grant = await gateway.http.post("/api/agent-tokens", headers=account.headers,
                                    json={"label": "an agent", "tier": "public", "expires_in_days": 1})
    assert key.status_code == 201 and push.status_code == 201 and grant.status_code == 201, \
        (key.text, push.text, grant.text)
    return {"key_id": key.json()["key_id"], "subscription_id": push.json()["subscription_id"],
            "session_id": account.session_id, "user_id": account.user_id,
            "grant_id": grant.json()["grant"]["grant_id"]}


def _id_routes(schema: dict[str, Any]) -> list[tuple[str, str]]:
    routes = []
    for path, operations in schema["paths"].items():
        if path.startswith(("/api/paper-trading", "/api/backtests", "/api/tuning", "/api/ai/training-jobs",
                            "/api/ai/trade-reviews")):
            continue  # covered by tests/paper_api/test_paper_cross_user.py (needs trading and ai workers)
        if path.startswith("/api/real-trading"):
            continue  # covered by tests/real/test_real_cross_user.py (needs the real worker and a trading sim)
        if path.startswith("/api/oauth/consent"):
            # A waiting OAuth request is no one's until a person answers it: its unguessable ID is the
            # capability the consent page is opened with (tests/mcp/test_oauth.py).
            continue
        params = PATH_PARAM.findall(path)
        if any(p.endswith("_id") for p in params):
            routes.extend((method, path) for method in operations if method in ("get", "post", "put", "patch",
                                                                                 "delete"))
    # Deleting the session last keeps A's token usable for the positive controls.
    return sorted(routes, key=lambda r: (r[0] == "delete", "session" in r[1], r))


async def test_no_user_can_read_or_act_on_another_users_objects(gateway, sign_up, sim):
    gateway.settings.exchange_rest_url = sim.rest_url
    alice, bob = await sign_up(), await sign_up()
    await sign_up()  # a bystander, so "the only other user" is never a shortcut
    alice_ids = await _objects_of(gateway, alice)
    await _objects_of(gateway, bob)
    routes = _id_routes((await gateway.http.get("/openapi.json")).json())
    assert len(routes) >= 4, routes

    before = await _state_of(gateway.db, alice.user_id)
    outcomes = {}
    for method, path in routes:
        unknown = [p for p in PATH_PARAM.findall(path) if p not in alice_ids]
        assert not unknown, f"{method.upper()} {path}: teach this suite which object {unknown} names"
        url = PATH_PARAM.sub(lambda m: alice_ids[m.group(1)], path)
        reply = await gateway.http.request(method, url, headers=bob.headers, json=BODIES.get((method, path)))
        outcomes[f"{method.upper()} {path}"] = reply.status_code
        assert reply.status_code < 500, (method, path, reply.text)
        assert not 200 <= reply.status_code < 300, (method, path, reply.status_code, reply.text)
        assert await _state_of(gateway.db, alice.user_id) == before, f"{method.upper()} {path} changed A's state"
    assert set(outcomes.values()) <= {403, 404}, outcomes

    # Positive controls: the same requests by their owner succeed, so the 404s above were about ownership.
    for method, path in routes:
        if (method, path) in ADMIN_ONLY:
            continue
        url = PATH_PARAM.sub(lambda m: alice_ids[m.group(1)], path)
        reply = await gateway.http.request(method, url, headers=alice.headers, json=BODIES.get((method, path)))
        assert 200 <= reply.status_code < 300, (method, path, reply.status_code, reply.text)


async def test_roles_change_only_through_admins_and_are_audited(gateway, sign_up):
    alice, bob = await sign_up(), await sign_up()
    reply = await gateway.http.post("/api/auth/register", json={
        "email": "mallory@example.com", "password": "correct horse battery staple", "role": "admin"})
    assert reply.status_code == 422
    assert await gateway.db.users.find_one({"email": "mallory@example.com"}) is None
    patch = await gateway.http.patch("/api/auth/me", headers=bob.headers, json={"display_name": "b", "role": "admin"})
    assert patch.status_code == 422
    assert (await gateway.http.put(f"/api/auth/users/{bob.user_id}/role", headers=bob.headers,
                                   json={"role": "admin"})).status_code == 403
    assert (await gateway.http.get("/api/auth/users", headers=bob.headers)).status_code == 403
    assert (await gateway.db.users.find_one({"user_id": bob.user_id}))["role"] == "user"

    await gateway.db.users.update_one({"user_id": alice.user_id}, {"$set": {"role": "admin"}})
    promoted = await gateway.http.put(f"/api/auth/users/{bob.user_id}/role", headers=alice.headers,
                                      json={"role": "admin"})
    assert promoted.status_code == 200 and promoted.json()["role"] == "admin"
    assert (await gateway.http.get("/api/auth/users", headers=bob.headers)).status_code == 200
    entry = await gateway.db.audit_logs.find_one({"action": "role_changed", "user_id": bob.user_id})
    assert entry["actor_id"] == alice.user_id and entry["details"] == {"from": "user", "to": "admin"}
    self_demote = await gateway.http.put(f"/api/auth/users/{alice.user_id}/role", headers=alice.headers,
                                         json={"role": "user"})
    assert self_demote.status_code == 409
