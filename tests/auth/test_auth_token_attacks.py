"""RFC 8725 / RFC 9700 attack suite: every forged, misused or replayed token is a 401."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from services.auth.tokens import TOKEN_TYPES


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unsigned(header: dict[str, Any], claims: dict[str, Any], signature: bytes = b"") -> str:
    return ".".join([_b64(json.dumps(header).encode()), _b64(json.dumps(claims).encode()), _b64(signature)])


def _claims_of(token: str) -> dict[str, Any]:
    return jwt.decode(token, options={"verify_signature": False})


def _forge(gateway, kind: str, claims: dict[str, Any], **header: Any) -> str:
    keys = gateway.app.state.services.auth.tokens.keys
    headers = {"kid": keys.kid, "typ": TOKEN_TYPES[kind], **header}
    return jwt.encode(claims, keys.private_key, algorithm="RS256", headers=headers)


async def _me(gateway, token: str):
    return await gateway.http.get("/api/auth/me", headers={"Authorization": f"Bearer {token}"})


async def test_every_forged_or_misused_access_token_is_401(gateway, sign_up):
    account = await sign_up()
    assert (await _me(gateway, account.access)).status_code == 200
    claims = _claims_of(account.access)
    header = jwt.get_unverified_header(account.access)
    public_pem = gateway.app.state.services.auth.tokens.keys.public_pem()
    now = int(time.time())
    other_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)

    head, body, sig = account.access.split(".")
    tampered_claims = {**claims, "sub": "zzzzzzzzzz"}
    # HS256 "signed" with our public key: the classic algorithm-confusion attack.
    hs_header = _b64(json.dumps({**header, "alg": "HS256"}).encode())
    hs_payload = _b64(json.dumps(claims).encode())
    hs_sig = _b64(hmac.new(public_pem, f"{hs_header}.{hs_payload}".encode(), hashlib.sha256).digest())

    attacks = {
        "alg=none": _unsigned({**header, "alg": "none"}, claims),
        "alg=None no signature part": _unsigned({**header, "alg": "None"}, claims)[:-1],
        "HS256 with the public key": f"{hs_header}.{hs_payload}.{hs_sig}",
        "wrong iss": _forge(gateway, "access", {**claims, "iss": "evil"}),
        "wrong aud": _forge(gateway, "access", {**claims, "aud": "another-api"}),
        "no aud": _forge(gateway, "access", {k: v for k, v in claims.items() if k != "aud"}),
        "expired": _forge(gateway, "access", {**claims, "iat": now - 3600, "nbf": now - 3600, "exp": now - 60}),
        "tampered payload": f"{head}.{_b64(json.dumps(tampered_claims).encode())}.{sig}",
        "tampered signature": f"{head}.{body}.{sig[:-4]}{'AAAA' if not sig.endswith('AAAA') else 'BBBB'}",
        "unknown kid": _forge(gateway, "access", claims, kid="not-a-key-we-hold"),
        "no kid": jwt.encode(claims, gateway.app.state.services.auth.tokens.keys.private_key, algorithm="RS256",
                             headers={"typ": "at+jwt"}),
        "signed by another key under our kid": jwt.encode(
            claims, other_key, algorithm="RS256", headers={"kid": header["kid"], "typ": "at+jwt"}),
        "jku header": _forge(gateway, "access", claims, jku="https://evil.example/jwks.json"),
        "refresh token as access token": account.refresh,
        "no typ": jwt.encode(claims, gateway.app.state.services.auth.tokens.keys.private_key, algorithm="RS256",
                             headers={"kid": header["kid"]}),
        "garbage": "not.a.jwt",
    }
    outcomes = {name: (await _me(gateway, token)).status_code for name, token in attacks.items()}
    assert outcomes == dict.fromkeys(attacks, 401), outcomes
    # The genuine token still works: the rejections were about the forgeries.
    assert (await _me(gateway, account.access)).status_code == 200


async def test_forged_or_misused_refresh_tokens_are_401_and_change_nothing(gateway, sign_up):
    account = await sign_up()
    claims = _claims_of(account.refresh)
    header = jwt.get_unverified_header(account.refresh)
    now = int(time.time())
    attacks = {
        "access token as refresh token": account.access,
        "alg=none": _unsigned({**header, "alg": "none"}, claims),
        "wrong iss": _forge(gateway, "refresh", {**claims, "iss": "evil"}),
        "access audience": _forge(gateway, "refresh", {**claims, "aud": "durabot-api"}),
        "expired": _forge(gateway, "refresh", {**claims, "exp": now - 60}),
        "unknown kid": _forge(gateway, "refresh", claims, kid="retired-long-ago"),
    }
    for name, token in attacks.items():
        reply = await gateway.http.post("/api/auth/refresh", json={"refresh_token": token})
        assert reply.status_code == 401, (name, reply.text)
        assert reply.headers["www-authenticate"].startswith("Bearer")
    # None of those revoked the real session: its refresh token still rotates.
    assert (await gateway.http.post("/api/auth/refresh", json={"refresh_token": account.refresh})).status_code == 200


async def test_reusing_a_rotated_refresh_token_revokes_the_whole_chain(gateway, sign_up):
    account = await sign_up()
    first = (await gateway.http.post("/api/auth/refresh", json={"refresh_token": account.refresh})).json()
    second = (await gateway.http.post("/api/auth/refresh", json={"refresh_token": first["refresh_token"]})).json()
    assert second["session_id"] == account.session_id
    stored = await gateway.db.sessions.find_one({"session_id": account.session_id})
    assert stored["refresh_hash"] == hashlib.sha256(second["refresh_token"].encode()).hexdigest()
    assert second["refresh_token"] not in json.dumps(stored, default=str)

    # An attacker replays the first, long-rotated token: refused, and the chain dies with it.
    replay = await gateway.http.post("/api/auth/refresh", json={"refresh_token": account.refresh})
    assert replay.status_code == 401 and "reuse" in replay.json()["detail"]
    latest = await gateway.http.post("/api/auth/refresh", json={"refresh_token": second["refresh_token"]})
    assert latest.status_code == 401
    for access in (account.access, first["access_token"], second["access_token"]):
        assert (await _me(gateway, access)).status_code == 401
    audit = await gateway.db.audit_logs.find_one({"action": "refresh_reuse_detected", "user_id": account.user_id})
    assert audit is not None and audit["details"]["session_id"] == account.session_id
    # Another login of the same user is a separate chain and keeps working.
    again = await gateway.http.post("/api/auth/login", json={"email": account.email, "password": account.password})
    assert again.status_code == 200
    assert (await _me(gateway, again.json()["access_token"])).status_code == 200


async def test_logout_revokes_access_and_refresh_tokens_at_once(gateway, sign_up):
    account = await sign_up()
    assert (await gateway.http.post("/api/auth/logout", headers=account.headers)).status_code == 204
    assert (await _me(gateway, account.access)).status_code == 401
    reply = await gateway.http.post("/api/auth/refresh", json={"refresh_token": account.refresh})
    assert reply.status_code == 401


async def test_tokens_are_rs256_with_kid_typ_and_lifetimes_of_15_minutes_and_7_days(gateway, sign_up):
    account = await sign_up()
    access_header, refresh_header = (jwt.get_unverified_header(t) for t in (account.access, account.refresh))
    keys = gateway.app.state.services.auth.tokens.keys
    assert access_header == {"alg": "RS256", "kid": keys.kid, "typ": "at+jwt"}
    assert refresh_header == {"alg": "RS256", "kid": keys.kid, "typ": "rt+jwt"}
    access, refresh = _claims_of(account.access), _claims_of(account.refresh)
    assert access["exp"] - access["iat"] == 15 * 60
    assert refresh["exp"] - refresh["iat"] == 7 * 86_400
    assert access["iss"] == refresh["iss"] == "durabot"
    assert access["aud"] == "durabot-api" and refresh["aud"] == "durabot-api:refresh"
    assert access["sub"] == account.user_id and len(account.user_id) == 10
    public = serialization.load_pem_public_key(keys.public_pem())
    jwt.decode(account.access, public, algorithms=["RS256"], audience="durabot-api")

