"""The gateway as the MCP server's OAuth 2.1 authorization server, against the MCP SDK's own OAuth client
over real HTTP: discovery from the MCP server's 401 (resource metadata → authorization server metadata),
dynamic registration, the authorization request, the consent page's REST routes answered by the
logged-in person (refused without a fresh two-factor step-up), the code redeemed with PKCE, and tools
called with the token at the tier picked; then each refusal a client or an attacker meets: PKCE,
reused, expired and foreign codes, redirect URIs, resource indicators, agent tokens on the person's
routes, revocation."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import secrets
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import httpx2
import jwt
import pytest
from mcp import Client
from mcp.client.auth import AuthorizationCodeResult, OAuthClientProvider
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.auth import OAuthClientInformationFull, OAuthClientMetadata, OAuthToken
from pydantic import AnyUrl, SecretStr

from activities.binance.key_vault import new_master_key_text
from tests.conftest import enrol_two_factor, registered_and_logged_in
from tests.mcp.conftest import PASSWORD, raw_call, structured

REDIRECT = "http://127.0.0.1:53682/callback"
CLIENT_NAME = "Claude Desktop (test)"


@pytest.fixture
def oauth_settings(settings, jwt_private_pem):
    return settings.model_copy(update={
        "jwt_private_key": SecretStr(jwt_private_pem), "master_key": SecretStr(new_master_key_text()),
        "login_attempts_per_ip": 1000, "oauth_code_ttl_s": 4, "oauth_registrations_per_hour": 2})


@dataclass
class Person:
    """A user with two-factor on, and two login sessions' tokens: stepped up, and refreshed (not stepped up)."""

    user_id: str
    access: str
    refresh: str
    totp: Any

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.access}"}


async def new_person(gw: Any) -> Person:
    body = await registered_and_logged_in(gw.http, PASSWORD)
    totp = await enrol_two_factor(gw.http, {"Authorization": f"Bearer {body['access_token']}"})
    return Person(body["user_id"], body["access_token"], body["refresh_token"], totp)


async def without_step_up(gw: Any, person: Person) -> None:
    """A token refresh ends the session's step-up (as an attacker's stolen refresh token would have none)."""
    reply = await gw.http.post("/api/auth/refresh", json={"refresh_token": person.refresh})
    assert reply.status_code == 200, reply.text
    person.access, person.refresh = reply.json()["access_token"], reply.json()["refresh_token"]


async def step_up(gw: Any, person: Person) -> None:
    """What the dashboard's step-up dialog does (a recovery code: the TOTP step of enrolment is used)."""
    reply = await gw.http.post("/api/auth/2fa/step-up", headers=person.headers,
                               json={"code": person.totp.recovery.pop()})
    assert reply.status_code == 200, reply.text


class MemoryStorage:
    def __init__(self) -> None:
        self.tokens: OAuthToken | None = None
        self.client_info: OAuthClientInformationFull | None = None

    async def get_tokens(self) -> OAuthToken | None:
        return self.tokens

    async def set_tokens(self, tokens: OAuthToken) -> None:
        self.tokens = tokens

    async def get_client_info(self) -> OAuthClientInformationFull | None:
        return self.client_info

    async def set_client_info(self, client_info: OAuthClientInformationFull) -> None:
        self.client_info = client_info


@dataclass
class Browser:
    """The person's browser and dashboard: follows ``/oauth/authorize`` to the consent page, answers it
    (first from a session without a step-up, which is refused and grants nothing; then stepped up, as the
    dashboard's dialog does), and hands the client what its redirect URI receives."""

    gw: Any
    person: Person
    tier: str
    days: int
    consent: dict[str, Any] = field(default_factory=dict)
    redirect_to: str = ""

    async def open(self, authorization_url: str) -> None:
        assert authorization_url.startswith(f"{self.gw.settings.gateway_url}/oauth/authorize?")
        async with httpx.AsyncClient() as http:
            reply = await http.get(authorization_url)
        assert reply.status_code == 302, reply.text
        location = reply.headers["location"]
        assert location.startswith("/oauth/consent?request="), location
        request_id = parse_qs(urlsplit(location).query)["request"][0]
        path = f"/api/oauth/consent/{request_id}"
        shown = await self.gw.http.get(path, headers=self.person.headers)
        assert shown.status_code == 200, shown.text
        self.consent = shown.json()

        await without_step_up(self.gw, self.person)
        terms = {"decision": "approve", "tier": self.tier, "expires_in_days": self.days}
        refused = await self.gw.http.post(path, headers=self.person.headers, json=terms)
        assert refused.status_code == 403 and refused.json()["step_up"] == "code", refused.text
        assert await self.gw.db.agent_grants.count_documents({"user_id": self.person.user_id}) == 0
        await step_up(self.gw, self.person)
        answer = await self.gw.http.post(path, headers=self.person.headers, json=terms)
        assert answer.status_code == 200, answer.text
        self.redirect_to = answer.json()["redirect_to"]

    async def callback(self) -> AuthorizationCodeResult:
        assert self.redirect_to.startswith(f"{REDIRECT}?"), self.redirect_to
        query = {k: v[0] for k, v in parse_qs(urlsplit(self.redirect_to).query).items()}
        return AuthorizationCodeResult(code=query["code"], state=query["state"], iss=query["iss"])


async def test_the_sdk_client_authorizes_through_the_consent_page_and_calls_tools(oauth_settings, run_gateway):
    async with run_gateway(oauth_settings.model_copy(update={"oauth_code_ttl_s": 60})) as gw:
        url, issuer = gw.settings.mcp_url, gw.settings.gateway_url
        person = await new_person(gw)

        # The metadata a client discovers: PKCE S256, public clients, no refresh tokens, RFC 9207 `iss`.
        metadata = (await gw.bare.get("/.well-known/oauth-authorization-server")).json()
        assert metadata["issuer"] == issuer and metadata["token_endpoint"] == f"{issuer}/oauth/token"
        assert metadata["authorization_endpoint"] == f"{issuer}/oauth/authorize"
        assert metadata["registration_endpoint"] == f"{issuer}/oauth/register"
        assert metadata["code_challenge_methods_supported"] == ["S256"]
        assert metadata["grant_types_supported"] == ["authorization_code"]
        assert metadata["authorization_response_iss_parameter_supported"] is True
        # Browser-based clients (the MCP Inspector) reach the token endpoint from another origin.
        preflight = await gw.bare.options("/oauth/token", headers={
            "Origin": "http://localhost:6274", "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type"})
        assert preflight.status_code == 200 and preflight.headers["access-control-allow-origin"] == "*"

        browser = Browser(gw, person, tier="sensitive", days=30)
        storage = MemoryStorage()
        auth = OAuthClientProvider(
            url, OAuthClientMetadata(client_name=CLIENT_NAME, redirect_uris=[AnyUrl(REDIRECT)]), storage,
            redirect_handler=browser.open, callback_handler=browser.callback)
        async with httpx2.AsyncClient(auth=auth, timeout=60) as http, \
                Client(streamable_http_client(url, http_client=http)) as client:
            names = {t.name for t in (await client.list_tools()).tools}
            assert {"ping", "get_access_info"} <= names
            assert structured(await client.call_tool("ping", {}))["pong"] is True
            access = structured(await client.call_tool("get_access_info", {}))
        assert access["tier"] == "sensitive" and access["user_id"] == person.user_id

        # What the consent page showed: the client's name, where the code goes, the tiers it may give.
        assert browser.consent["client_name"] == CLIENT_NAME
        assert browser.consent["redirect_host"] == "127.0.0.1:53682" and browser.consent["redirect_is_local"]
        assert browser.consent["requested_tier"] == "critical"
        assert browser.consent["tiers"] == ["public", "authenticated", "sensitive", "critical"]

        # A public client (no secret), bound to the issuer; the token is the MCP resource's, at the tier picked.
        registered = storage.client_info
        assert registered is not None and registered.client_secret is None
        assert registered.token_endpoint_auth_method == "none"
        token = storage.tokens
        assert token is not None and token.refresh_token is None
        assert token.scope == "mcp:public mcp:authenticated mcp:sensitive"
        assert 29 * 86_400 < (token.expires_in or 0) <= 30 * 86_400
        claims = jwt.decode(token.access_token, options={"verify_signature": False})
        assert claims["aud"] == url and claims["iss"] == issuer and claims["client_id"] == registered.client_id

        # The person sees the grant beside agent tokens; the database holds no token, only its hash.
        grants = (await gw.http.get("/api/agent-tokens", headers=person.headers)).json()
        assert [(g["kind"], g["label"], g["tier"], g["client_id"], g["active"]) for g in grants] == [
            ("oauth", CLIENT_NAME, "sensitive", registered.client_id, True)]
        for name in ("agent_grants", "oauth_codes", "oauth_requests", "oauth_clients"):
            async for doc in gw.db[name].find({}):
                assert token.access_token not in str(doc), name

        # The agent's token opens none of the person's routes: not the consent page's, not agent tokens.
        agent = {"Authorization": f"Bearer {token.access_token}"}
        request_id = browser.consent["request_id"]
        for method, path, body in (
                ("GET", f"/api/oauth/consent/{request_id}", None),
                ("POST", f"/api/oauth/consent/{request_id}", {"decision": "approve", "tier": "critical",
                                                              "expires_in_days": 30}),
                ("GET", "/api/agent-tokens", None),
                ("POST", "/api/agent-tokens", {"label": "x", "tier": "critical", "expires_in_days": 1})):
            reply = await gw.http.request(method, path, headers=agent, json=body)
            assert reply.status_code == 401, (path, reply.text)
        # The person's answered request cannot be answered again.
        reply = await gw.http.post(f"/api/oauth/consent/{request_id}", headers=person.headers,
                                   json={"decision": "deny"})
        assert reply.status_code == 409, reply.text

        # Minting an agent token needs a fresh step-up too; nothing is minted without one.
        await without_step_up(gw, person)
        reply = await gw.http.post("/api/agent-tokens", headers=person.headers,
                                   json={"label": "cli", "tier": "public", "expires_in_days": 1})
        assert reply.status_code == 403 and reply.json()["step_up"] == "code", reply.text
        assert await gw.db.agent_grants.count_documents({"user_id": person.user_id}) == 1

        # Revoking the grant stops its token at once.
        assert (await raw_call(url, token.access_token, "ping")).status_code == 200
        reply = await gw.http.delete(f"/api/agent-tokens/{grants[0]['grant_id']}", headers=person.headers)
        assert reply.status_code == 200 and reply.json()["active"] is False, reply.text
        assert (await raw_call(url, token.access_token, "ping")).status_code == 401


def pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")
    return verifier, challenge


@dataclass
class RawClient:
    """An OAuth client speaking plain HTTP, to send what the SDK's client never would."""

    gw: Any
    client_id: str = ""

    async def register(self, redirect_uris: list[str], name: str = "raw client") -> httpx.Response:
        reply = await self.gw.bare.post("/oauth/register", json={"client_name": name, "redirect_uris": redirect_uris})
        if reply.status_code == 201:
            self.client_id = reply.json()["client_id"]
        return reply

    async def authorize(self, challenge: str, **overrides: str | None) -> httpx.Response:
        params = {"response_type": "code", "client_id": self.client_id, "redirect_uri": REDIRECT, "state": "s-1",
                  "code_challenge": challenge, "code_challenge_method": "S256", "scope": "mcp:public mcp:authenticated",
                  "resource": self.gw.settings.mcp_url, **overrides}
        return await self.gw.bare.get(f"/oauth/authorize?{urlencode({k: v for k, v in params.items() if v})}")

    async def approved_code(self, person: Person, challenge: str, tier: str = "authenticated") -> str:
        reply = await self.authorize(challenge)
        assert reply.status_code == 302, reply.text
        request_id = parse_qs(urlsplit(reply.headers["location"]).query)["request"][0]
        answer = await self.gw.http.post(f"/api/oauth/consent/{request_id}", headers=person.headers,
                                         json={"decision": "approve", "tier": tier, "expires_in_days": 1})
        assert answer.status_code == 200, answer.text
        return redirect_query(answer.json()["redirect_to"])["code"]

    async def token(self, code: str, verifier: str, **overrides: str) -> httpx.Response:
        form = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT,
                "client_id": self.client_id, "code_verifier": verifier, "resource": self.gw.settings.mcp_url,
                **overrides}
        return await self.gw.bare.post("/oauth/token", data=form)


def redirect_query(location: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


def oauth_error(reply: httpx.Response) -> str:
    assert reply.status_code == 400, reply.text
    return reply.json()["error"]


async def test_each_refusal_is_the_oauth_error_a_client_expects(oauth_settings, run_gateway):
    async with run_gateway(oauth_settings) as gw:
        url = gw.settings.mcp_url
        person = await new_person(gw)
        client = RawClient(gw)

        # Registration: redirect URIs a code may safely travel to (https, loopback http, an app's scheme).
        for bad in (["http://evil.example/cb"], ["javascript:alert(1)"], ["https://app.example/cb#frag"],
                    [f"https://app.example/{n}" for n in range(11)]):
            reply = await client.register(bad)
            assert reply.status_code == 400 and reply.json()["error"] == "invalid_redirect_uri", (bad, reply.text)
        reply = await client.register([REDIRECT, "https://app.example/cb", "com.example.agent:/cb"])
        assert reply.status_code == 201, reply.text
        assert reply.json()["token_endpoint_auth_method"] == "none" and "client_secret" not in reply.json()

        verifier, challenge = pkce()
        # The resource indicator must be the MCP server: invalid_target, back at the client with its state.
        reply = await client.authorize(challenge, resource="https://other.example/mcp")
        assert reply.status_code == 302
        assert redirect_query(reply.headers["location"]) | {"error_description": ""} == {
            "error": "invalid_target", "state": "s-1", "error_description": ""}
        # A redirect URI it did not register is never redirected to; PKCE is required, and S256 only.
        reply = await client.authorize(challenge, redirect_uri="http://127.0.0.1:1/elsewhere")
        assert oauth_error(reply) == "invalid_request" and "location" not in reply.headers
        for overrides in ({"code_challenge": None}, {"code_challenge_method": "plain"}):
            reply = await client.authorize(challenge, **overrides)
            assert redirect_query(reply.headers["location"])["error"] == "invalid_request", overrides
        assert await gw.db.oauth_requests.count_documents({}) == 0

        # The consent: at most the tier asked for (authenticated here); denying sends access_denied back.
        reply = await client.authorize(challenge)
        request_id = parse_qs(urlsplit(reply.headers["location"]).query)["request"][0]
        path = f"/api/oauth/consent/{request_id}"
        assert (await gw.http.get(path, headers=person.headers)).json()["tiers"] == ["public", "authenticated"]
        reply = await gw.http.post(path, headers=person.headers,
                                   json={"decision": "approve", "tier": "sensitive", "expires_in_days": 1})
        assert reply.status_code == 422 and reply.json()["detail"]["field"] == "tier", reply.text
        reply = await gw.http.post(path, headers=person.headers, json={"decision": "deny"})
        assert reply.status_code == 200, reply.text
        denied = redirect_query(reply.json()["redirect_to"])
        assert (denied["error"], denied["state"], denied["iss"]) == ("access_denied", "s-1", gw.settings.gateway_url)
        assert (await gw.http.get(path, headers=person.headers)).status_code == 409
        assert (await gw.http.get("/api/oauth/consent/oar_nosuchrequest0123456", headers=person.headers)
                ).status_code == 404
        assert await gw.db.agent_grants.count_documents({"user_id": person.user_id}) == 0

        # The code: wrong verifier, another redirect URI, another resource, another client: all refused.
        code = await client.approved_code(person, challenge)
        assert oauth_error(await client.token(code, pkce()[0])) == "invalid_grant"
        assert oauth_error(await client.token(code, verifier, redirect_uri="https://app.example/cb")) == "invalid_grant"
        assert oauth_error(await client.token(code, verifier, resource="https://other.example/mcp")) == "invalid_target"
        other = RawClient(gw)
        assert (await other.register([REDIRECT])).status_code == 201
        assert oauth_error(await other.token(code, verifier)) == "invalid_grant"
        # (Two registrations an hour per address here: the next one waits.)
        reply = await RawClient(gw).register([REDIRECT])
        assert reply.status_code == 429 and int(reply.headers["retry-after"]) > 0, reply.text
        # … and the right one gets the token, once: a second redemption is refused and revokes the grant.
        reply = await client.token(code, verifier)
        assert reply.status_code == 200, reply.text
        issued = reply.json()
        assert issued["token_type"] == "Bearer" and issued["scope"] == "mcp:public mcp:authenticated"
        assert reply.headers["cache-control"] == "no-store"
        assert (await raw_call(url, issued["access_token"], "ping")).status_code == 200
        assert oauth_error(await client.token(code, verifier)) == "invalid_grant"
        assert (await raw_call(url, issued["access_token"], "ping")).status_code == 401

        # A code redeemed too late is refused, and its grant revoked.
        late_verifier, late_challenge = pkce()
        late = await client.approved_code(person, late_challenge, tier="public")
        await asyncio.sleep(gw.settings.oauth_code_ttl_s + 0.5)
        reply = await client.token(late, late_verifier)
        assert oauth_error(reply) == "invalid_grant" and "expired" in reply.json()["error_description"]
        listed = (await gw.http.get("/api/agent-tokens", headers=person.headers)).json()
        assert sorted((g["kind"], g["tier"], g["active"]) for g in listed) == [
            ("oauth", "authenticated", False), ("oauth", "public", False)]
