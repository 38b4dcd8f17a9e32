"""The MCP server's authorization server (OAuth 2.1): what ``/oauth/*`` and the dashboard's consent page do.

Clients register themselves (RFC 7591) as public clients: PKCE (S256) protects their codes, so no client
secret is issued or kept. ``/oauth/authorize`` checks a request and parks it for the consent page
(``oauth_requests``); there the logged-in person picks the highest tier (at most what was asked for) and
the lifetime. Approving needs a fresh two-factor step-up and mints the grant at once (``AgentGrants.mint``,
kind ``oauth``), so a token is only ever made while a stepped-up person is present. The access token
then waits for the client under a one-use code (``oauth_codes``), sealed with a key derived from the
code itself: the database alone never holds a usable token, and the code's hash is its only lookup key.
Redeeming the code (its PKCE verifier checked by the adapter's handler) opens the seal once; a code
presented again, or too late, revokes its grant (RFC 6749 §4.1.2). Tokens are for the MCP server alone
(RFC 8707: ``resource`` must be its URL), and there are no refresh tokens: a token lives as long as the
person chose.
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, cast
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from pymongo import ReturnDocument
from pymongo.asynchronous.database import AsyncDatabase

from core.settings import Settings
from services.agent_grants import AgentGrants, scopes_for, tier_of_scopes
from services.auth.rate_limit import SharedWindowLimiter
from services.auth.step_up import require_step_up
from services.errors import Conflict, DomainError, Forbidden, NotFound, Rejected, TooManyRequests
from services.principal import TIERS, Principal, Tier

CONSENT_PATH = "/oauth/consent"
LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})
# Schemes a browser would run or read locally instead of handing to a client: never a redirect target.
UNSAFE_SCHEMES = frozenset({"javascript", "data", "file", "vbscript", "about", "blob", "filesystem", "view-source"})
# A replayed code must still find its grant to revoke it a while after the code expired.
REPLAY_MEMORY_S = 3600
MAX_REDIRECT_URIS = 10
MAX_URI_CHARS = 2000
MAX_NAME_CHARS = 200


class OAuthRefused(DomainError):
    """An OAuth error answer (RFC 6749 §4.1.2.1, §5.2; RFC 7591 §3.2.2): ``error`` is its code."""

    def __init__(self, error: str, description: str) -> None:
        super().__init__(description)
        self.error = error


@dataclass(frozen=True)
class OAuthClient:
    client_id: str
    client_name: str | None
    client_uri: str | None
    redirect_uris: list[str]
    # The registration record as the adapter stored it (RFC 7591 metadata plus the issued client_id).
    record: dict[str, Any]


@dataclass(frozen=True)
class AuthorizationRequest:
    """A checked ``/oauth/authorize`` request (client, redirect URI and scope already validated)."""

    client_id: str
    redirect_uri: str
    redirect_uri_explicit: bool
    state: str | None
    code_challenge: str
    scopes: list[str] | None
    resource: str | None


@dataclass(frozen=True)
class ConsentRequest:
    """What the consent page shows the person."""

    request_id: str
    client_id: str
    client_name: str
    client_uri: str | None
    redirect_uri: str
    redirect_host: str
    redirect_is_local: bool
    requested_tier: Tier
    # The tiers the person may pick, lowest first (up to the one asked for).
    tiers: list[Tier]
    max_days: int
    expires_at: datetime


@dataclass(frozen=True)
class PendingCode:
    """An authorization code as the token endpoint checks it before redeeming it."""

    client_id: str
    code_challenge: str
    redirect_uri: str
    redirect_uri_explicit: bool
    scopes: list[str]
    resource: str
    user_id: str
    expires_at: float


@dataclass(frozen=True)
class IssuedToken:
    access_token: str
    expires_in: int
    scope: str


def redirect_problem(uri: str) -> str | None:
    """Why ``uri`` cannot be a redirect URI (None: it can): https anywhere, http only to this machine
    (RFC 8252 §7.3), or a native app's private-use scheme (§7.1); never a fragment."""
    parts = urlsplit(uri)
    scheme = parts.scheme.lower()
    if not scheme:
        return f"{uri} is not an absolute URI"
    if parts.fragment or "#" in uri:
        return f"{uri} has a fragment"
    if scheme == "https":
        return None if parts.hostname else f"{uri} names no host"
    if scheme == "http":
        return None if parts.hostname in LOOPBACK_HOSTS else f"{uri}: plain http only to localhost, else https"
    if scheme in UNSAFE_SCHEMES:
        return f"{uri}: the {scheme} scheme is not a redirect target"
    return None


def redirect_host(uri: str) -> tuple[str, bool]:
    """What the consent page names as the code's destination, and whether it is this machine."""
    parts = urlsplit(uri)
    if parts.scheme.lower() in ("http", "https"):
        return parts.netloc.lower(), parts.hostname in LOOPBACK_HOSTS
    return f"{parts.scheme}: (an app on this device)", True


def with_params(uri: str, **params: str | None) -> str:
    """``uri`` with ``params`` added to its query (its own parameters kept, RFC 6749 §3.1.2)."""
    parts = urlsplit(uri)
    query = parse_qsl(parts.query, keep_blank_values=True) + [(k, v) for k, v in params.items() if v is not None]
    return urlunsplit(parts._replace(query=urlencode(query)))


def grant_label(client_name: str | None) -> str:
    """An agent grant's label from a client's self-chosen name, in the characters a label allows."""
    cleaned = re.sub(r"\s+", " ", re.sub(r"[^\w .,:()@/+-]", " ", client_name or "")).strip()[:80].strip()
    return cleaned or "OAuth client"


def _code_hash(code: str) -> str:
    return hashlib.sha256(f"code:{code}".encode()).hexdigest()


def _seal(code: str, token: str) -> bytes:
    nonce = os.urandom(12)
    key = hashlib.sha256(f"seal:{code}".encode()).digest()
    return nonce + AESGCM(key).encrypt(nonce, token.encode(), _code_hash(code).encode())


def _unseal(code: str, sealed: bytes) -> str | None:
    key = hashlib.sha256(f"seal:{code}".encode()).digest()
    try:
        return AESGCM(key).decrypt(sealed[:12], sealed[12:], _code_hash(code).encode()).decode()
    except (InvalidTag, ValueError):
        return None


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


class OAuthAuthorization:
    def __init__(self, settings: Settings, db: AsyncDatabase, grants: AgentGrants) -> None:
        self.settings = settings
        self.db = db
        self.grants = grants
        self.registrations = SharedWindowLimiter(db, "oauth_registrations", settings.oauth_registrations_per_hour,
                                                 3600)

    @property
    def issuer(self) -> str:
        return self.grants.issuer

    @property
    def resource(self) -> str:
        return self.grants.audience

    @property
    def scopes(self) -> list[str]:
        return scopes_for("critical")

    # --- clients (RFC 7591) ---

    async def check_registration_limit(self, ip: str | None) -> None:
        wait = await self.registrations.retry_after(ip or "unknown")
        if wait is not None:
            raise TooManyRequests("too many client registrations from this address; try again later", wait)

    async def register(self, record: dict[str, Any], ip: str | None) -> None:
        """Keep a client's registration; its redirect URIs must be ones a code may safely travel to."""
        uris = [str(u) for u in record.get("redirect_uris") or []]
        if not 1 <= len(uris) <= MAX_REDIRECT_URIS or any(len(u) > MAX_URI_CHARS for u in uris):
            raise OAuthRefused("invalid_redirect_uri", f"register 1 to {MAX_REDIRECT_URIS} redirect URIs of at most "
                                                       f"{MAX_URI_CHARS} characters")
        if len(str(record.get("client_name") or "")) > MAX_NAME_CHARS:
            raise OAuthRefused("invalid_client_metadata", f"a client_name of at most {MAX_NAME_CHARS} characters")
        for uri in uris:
            problem = redirect_problem(uri)
            if problem:
                raise OAuthRefused("invalid_redirect_uri", problem)
        await self.registrations.record(ip or "unknown")
        await self.db.oauth_clients.insert_one({
            "client_id": record["client_id"], "client_name": record.get("client_name"), "record": record,
            "created_at": datetime.now(UTC), "ip": ip})

    async def client(self, client_id: str) -> OAuthClient | None:
        doc = await self.db.oauth_clients.find_one({"client_id": client_id}, {"_id": 0})
        if doc is None:
            return None
        record = doc["record"]
        return OAuthClient(client_id=client_id, client_name=record.get("client_name"),
                           client_uri=record.get("client_uri"),
                           redirect_uris=[str(u) for u in record.get("redirect_uris") or []], record=record)

    # --- the authorization request and its consent ---

    def check_resource(self, resource: str | None) -> None:
        """RFC 8707: tokens are for the MCP server alone (an omitted indicator means it too)."""
        if resource is not None and resource.rstrip("/") != self.resource:
            raise OAuthRefused("invalid_target", f"this server issues tokens only for {self.resource}")

    async def begin(self, request: AuthorizationRequest) -> str:
        """Park a checked authorization request for the consent page; the path the browser goes to."""
        self.check_resource(request.resource)
        requested = tier_of_scopes(" ".join(request.scopes)) if request.scopes else "critical"
        if requested is None:
            raise OAuthRefused("invalid_scope", f"ask for one of {' '.join(self.scopes)}")
        now = datetime.now(UTC)
        expires_at = now + timedelta(seconds=self.settings.oauth_consent_ttl_s)
        request_id = f"oar_{secrets.token_urlsafe(24)}"
        await self.db.oauth_requests.insert_one({
            "request_id": request_id, "client_id": request.client_id, "redirect_uri": request.redirect_uri,
            "redirect_uri_explicit": request.redirect_uri_explicit, "state": request.state,
            "code_challenge": request.code_challenge, "requested_tier": requested, "resource": self.resource,
            "status": "pending", "created_at": now, "expires_at": expires_at, "purge_at": expires_at})
        return f"{CONSENT_PATH}?{urlencode({'request': request_id})}"

    async def consent(self, principal: Principal, request_id: str) -> ConsentRequest:
        """A waiting authorization request, for the person answering it."""
        _require_person(principal)
        doc = await self._waiting(request_id)
        client = await self.client(doc["client_id"])
        if client is None:
            raise NotFound("the client of this request is no longer registered")
        requested = cast(Tier, doc["requested_tier"])
        host, local = redirect_host(doc["redirect_uri"])
        return ConsentRequest(
            request_id=request_id, client_id=client.client_id, client_name=grant_label(client.client_name),
            client_uri=client.client_uri, redirect_uri=doc["redirect_uri"], redirect_host=host,
            redirect_is_local=local, requested_tier=requested, tiers=list(TIERS[: TIERS.index(requested) + 1]),
            max_days=self.settings.agent_token_max_days, expires_at=_utc(doc["expires_at"]))

    async def decide(self, principal: Principal, request_id: str, *, approve: bool, tier: str | None = None,
                     expires_in_days: int | None = None) -> str:
        """Answer a waiting request: the URL that takes the browser back to the client, with a code
        (approved: a new grant, after a two-factor step-up) or ``access_denied``."""
        _require_person(principal)
        doc = await self._waiting(request_id)
        if not approve:
            await self._close(request_id, principal, "denied")
            return with_params(doc["redirect_uri"], error="access_denied", state=doc.get("state"), iss=self.issuer,
                               error_description="the account's owner refused the access")
        client = await self.client(doc["client_id"])
        if client is None:
            raise NotFound("the client of this request is no longer registered")
        if tier is None:
            raise Rejected("tier", "pick the highest tier the agent may reach")
        if expires_in_days is None:
            raise Rejected("expires_in_days", "pick how many days the access lasts")
        label = grant_label(client.client_name)
        checked = self.grants.check_request(label, tier, expires_in_days)
        requested = cast(Tier, doc["requested_tier"])
        if TIERS.index(checked) > TIERS.index(requested):
            raise Rejected("tier", f"at most {requested}: the highest tier {label} asked for")
        # Before the request is closed, so a missing code leaves it waiting for another try.
        require_step_up(principal, self.settings.step_up_window_s, "Granting an agent access")
        await self._close(request_id, principal, "approved")
        minted = await self.grants.mint(principal, label=label, tier=checked, expires_in_days=expires_in_days,
                                        kind="oauth", client_id=client.client_id)
        code = secrets.token_urlsafe(32)
        now = datetime.now(UTC)
        expires_at = now + timedelta(seconds=self.settings.oauth_code_ttl_s)
        await self.db.oauth_codes.insert_one({
            "code_hash": _code_hash(code), "request_id": request_id, "client_id": client.client_id,
            "user_id": principal.user_id, "grant_id": minted.grant.grant_id, "redirect_uri": doc["redirect_uri"],
            "redirect_uri_explicit": doc["redirect_uri_explicit"], "code_challenge": doc["code_challenge"],
            "scopes": scopes_for(checked), "resource": doc["resource"],
            "token_expires_at": minted.grant.expires_at, "sealed": _seal(code, minted.access_token),
            "created_at": now, "expires_at": expires_at, "used_at": None,
            "purge_at": expires_at + timedelta(seconds=REPLAY_MEMORY_S)})
        return with_params(doc["redirect_uri"], code=code, state=doc.get("state"), iss=self.issuer)

    # --- the code at the token endpoint ---

    async def pending_code(self, client_id: str, code: str) -> PendingCode | None:
        """The code for the token endpoint's checks; None when it is unknown, another client's, or used
        already (then its grant is revoked: someone else may hold the token). An expired code is burnt
        and its grant revoked too, and answered so the endpoint says it expired."""
        doc = await self.db.oauth_codes.find_one({"code_hash": _code_hash(code)}, {"_id": 0, "sealed": 0})
        if doc is None or doc["client_id"] != client_id:
            return None
        expired = _utc(doc["expires_at"]) <= datetime.now(UTC)
        if doc["used_at"] is not None or expired:
            await self._burn(doc, "authorization code presented again" if doc["used_at"] else "authorization code "
                             "expired unredeemed")
            if not expired:
                return None
        return PendingCode(client_id=doc["client_id"], code_challenge=doc["code_challenge"],
                           redirect_uri=doc["redirect_uri"], redirect_uri_explicit=doc["redirect_uri_explicit"],
                           scopes=doc["scopes"], resource=doc["resource"], user_id=doc["user_id"],
                           expires_at=_utc(doc["expires_at"]).timestamp())

    async def redeem(self, client_id: str, code: str) -> IssuedToken:
        """The access token behind a code whose PKCE verifier and redirect URI were checked: once."""
        now = datetime.now(UTC)
        doc = await self.db.oauth_codes.find_one_and_update(
            {"code_hash": _code_hash(code), "client_id": client_id, "used_at": None, "expires_at": {"$gt": now}},
            {"$set": {"used_at": now}, "$unset": {"sealed": ""}}, return_document=ReturnDocument.BEFORE)
        token = _unseal(code, bytes(doc["sealed"])) if doc is not None and doc.get("sealed") else None
        if doc is None or token is None:
            raise OAuthRefused("invalid_grant", "the authorization code was used already or has expired")
        expires_in = int((_utc(doc["token_expires_at"]) - now).total_seconds())
        return IssuedToken(access_token=token, expires_in=max(expires_in, 0), scope=" ".join(doc["scopes"]))

    # --- helpers ---

    async def _waiting(self, request_id: str) -> dict[str, Any]:
        doc = await self.db.oauth_requests.find_one({"request_id": request_id}, {"_id": 0})
        if doc is None or _utc(doc["expires_at"]) <= datetime.now(UTC):
            raise NotFound("no such authorization request, or it expired: start again from the agent's app")
        if doc["status"] != "pending":
            raise Conflict(None, f"this authorization request was {doc['status']} already")
        return doc

    async def _close(self, request_id: str, principal: Principal, status: str) -> None:
        closed = await self.db.oauth_requests.find_one_and_update(
            {"request_id": request_id, "status": "pending"},
            {"$set": {"status": status, "user_id": principal.user_id, "decided_at": datetime.now(UTC)}})
        if closed is None:
            raise Conflict(None, "this authorization request was answered already")

    async def _burn(self, doc: dict[str, Any], reason: str) -> None:
        await self.db.oauth_codes.update_one({"code_hash": doc["code_hash"]},
                                             {"$set": {"used_at": doc["used_at"] or datetime.now(UTC)},
                                              "$unset": {"sealed": ""}})
        await self.grants.revoke_compromised(doc["user_id"], doc["grant_id"], reason)


def _require_person(principal: Principal) -> None:
    if not principal.human:
        raise Forbidden("answering an authorization request is for the account's owner, not for an agent")
