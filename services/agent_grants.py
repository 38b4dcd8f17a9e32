"""Agent grants: what lets an MCP client act for a user, and how far (its tier).

A person mints a grant, always behind a fresh two-factor step-up: an agent token from the dashboard or
the API, or the OAuth consent page (``services.oauth``). Its access token is an RS256 JWT (RFC 9068)
issued for the MCP resource alone: ``aud`` is the MCP URL (RFC 8707), so neither a gateway access token
nor a token for another resource passes, and ``jti`` names the grant, whose record is read on every
call, so a revoked grant stops at once. Only the token's SHA-256 is stored; the token is shown once.
Agents never mint or revoke grants: they are the person's to manage (an agent may list them).
"""

from __future__ import annotations

import re
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, cast

import jwt
from pymongo.asynchronous.database import AsyncDatabase

from core.settings import Settings
from services.auth.audit import record_audit
from services.auth.kit import AuthServices
from services.auth.step_up import require_step_up
from services.auth.tokens import ALGORITHM, LEEWAY_S, token_digest
from services.errors import Forbidden, NotFound, Rejected
from services.principal import TIERS, Principal, Tier

GrantKind = Literal["agent_token", "oauth"]
ACCESS_TOKEN_TYPE = "at+jwt"
SCOPE_PREFIX = "mcp:"
DAY_S = 86_400
_LABEL = re.compile(r"^[\w .,:()@/+-]{1,80}$")
_REQUIRED_CLAIMS = ["iss", "aud", "exp", "iat", "sub", "jti", "scope", "client_id"]
# A used grant's last_used_at is refreshed at most this often: one write per call would double its cost.
LAST_USED_EVERY_S = 60


def tier_scope(tier: Tier) -> str:
    return f"{SCOPE_PREFIX}{tier}"


def scopes_for(tier: Tier) -> list[str]:
    """A tier's scopes: its own and every lower one's, so a scope check needs no tier arithmetic."""
    return [tier_scope(t) for t in TIERS[: TIERS.index(tier) + 1]]


def tier_of_scopes(scope: str) -> Tier | None:
    """The highest tier named in a space-separated OAuth scope (None: no MCP tier named)."""
    named = {part.removeprefix(SCOPE_PREFIX) for part in scope.split() if part.startswith(SCOPE_PREFIX)}
    found = [t for t in TIERS if t in named]
    return found[-1] if found else None


@dataclass(frozen=True)
class Grant:
    grant_id: str
    user_id: str
    kind: GrantKind
    label: str
    tier: Tier
    client_id: str
    created_at: datetime
    expires_at: datetime
    revoked_at: datetime | None = None
    last_used_at: datetime | None = None

    @property
    def active(self) -> bool:
        return self.revoked_at is None and self.expires_at > datetime.now(UTC)

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> Grant:
        def utc(value: datetime | None) -> datetime | None:
            return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value

        return cls(grant_id=doc["grant_id"], user_id=doc["user_id"], kind=doc["kind"], label=doc["label"],
                   tier=doc["tier"], client_id=doc["client_id"], created_at=cast(datetime, utc(doc["created_at"])),
                   expires_at=cast(datetime, utc(doc["expires_at"])), revoked_at=utc(doc.get("revoked_at")),
                   last_used_at=utc(doc.get("last_used_at")))


@dataclass(frozen=True)
class MintedGrant:
    grant: Grant
    # The bearer token: returned once, never stored.
    access_token: str


@dataclass(frozen=True)
class AgentAccess:
    """A verified MCP bearer token: whose it is and how far it reaches."""

    grant_id: str
    user_id: str
    tier: Tier
    client_id: str
    expires_at: int

    def principal(self, ip: str | None = None) -> Principal:
        return Principal(user_id=self.user_id, channel="mcp", human=False, tier=self.tier, ip=ip)


class AgentGrants:
    def __init__(self, settings: Settings, db: AsyncDatabase, auth: AuthServices) -> None:
        self.settings = settings
        self.db = db
        self.keys = auth.tokens.keys

    @property
    def issuer(self) -> str:
        return self.settings.gateway_url

    @property
    def audience(self) -> str:
        return self.settings.mcp_url

    def check_request(self, label: str, tier: str, expires_in_days: int) -> Tier:
        """Refuse a grant request that cannot be honoured, before anything is written."""
        if not _LABEL.match(label):
            raise Rejected("label", "a label of 1 to 80 letters, digits, spaces or .,:()@/+- that names the agent")
        if tier not in TIERS:
            raise Rejected("tier", f"one of {', '.join(TIERS)}")
        most = self.settings.agent_token_max_days
        if not 1 <= expires_in_days <= most:
            raise Rejected("expires_in_days", f"from 1 to {most} days")
        return cast(Tier, tier)

    async def mint(self, principal: Principal, *, label: str, tier: str, expires_in_days: int,
                   kind: GrantKind = "agent_token", client_id: str | None = None) -> MintedGrant:
        """A new grant and its token, for a person who entered a two-factor code in the last minutes."""
        checked = self.check_request(label, tier, expires_in_days)
        require_step_up(principal, self.settings.step_up_window_s,
                        "Granting an agent access" if kind == "oauth" else "Creating an agent token")
        now = int(time.time())
        grant_id = f"grant_{secrets.token_urlsafe(12)}"
        client = client_id or f"agent-token:{grant_id}"
        expires_at = now + expires_in_days * DAY_S
        claims = {"iss": self.issuer, "aud": self.audience, "sub": principal.user_id, "client_id": client,
                  "scope": " ".join(scopes_for(checked)), "iat": now, "nbf": now, "exp": expires_at, "jti": grant_id}
        token = jwt.encode(claims, self.keys.private_key, algorithm=ALGORITHM,
                           headers={"kid": self.keys.kid, "typ": ACCESS_TOKEN_TYPE})
        doc = {"grant_id": grant_id, "user_id": principal.user_id, "kind": kind, "label": label, "tier": checked,
               "client_id": client, "token_hash": token_digest(token), "audience": self.audience,
               "created_at": datetime.fromtimestamp(now, UTC), "expires_at": datetime.fromtimestamp(expires_at, UTC),
               "revoked_at": None, "last_used_at": None, "created_by_session": principal.session_id}
        await self.db.agent_grants.insert_one(doc)
        await record_audit(self.db, "agent_grant_created", user_id=principal.user_id, ip=principal.ip,
                           details={"grant_id": grant_id, "kind": kind, "tier": checked, "label": label,
                                    "expires_in_days": expires_in_days})
        return MintedGrant(Grant.from_doc(doc), token)

    async def list_grants(self, principal: Principal) -> list[Grant]:
        self._require_person(principal, "Listing agent grants")
        return await self._grants_of(principal.user_id)

    async def list_for_agent(self, principal: Principal) -> list[Grant]:
        """What ``list_grants`` answers, for an agent of the user: labels, tiers and dates, never a token (an
        agent still neither mints nor revokes)."""
        principal.require("authenticated")
        return await self._grants_of(principal.user_id)

    async def _grants_of(self, user_id: str) -> list[Grant]:
        cursor = self.db.agent_grants.find({"user_id": user_id}, {"_id": 0, "token_hash": 0})
        return [Grant.from_doc(doc) async for doc in cursor.sort("created_at", -1).limit(500)]

    async def revoke(self, principal: Principal, grant_id: str) -> Grant:
        """End a grant at once; revoking a revoked grant answers it as it is."""
        self._require_person(principal, "Revoking an agent grant")
        found = await self._end(principal.user_id, grant_id, principal.ip, {"grant_id": grant_id})
        if found is None:
            found = await self.db.agent_grants.find_one({"grant_id": grant_id, "user_id": principal.user_id},
                                                        {"_id": 0, "token_hash": 0})
            if found is None:
                raise NotFound("no such agent grant of yours")
        return Grant.from_doc(found)

    async def revoke_compromised(self, user_id: str, grant_id: str, reason: str) -> None:
        """End a grant no person asked to end, because its token may be in other hands (an OAuth code
        presented twice or left unredeemed, RFC 6749 §4.1.2)."""
        await self._end(user_id, grant_id, None, {"grant_id": grant_id, "reason": reason})

    async def _end(self, user_id: str, grant_id: str, ip: str | None, details: dict[str, Any]) -> dict[str, Any] | None:
        """Revoke a live grant of ``user_id`` and audit it; None when there was none to revoke."""
        found = await self.db.agent_grants.find_one_and_update(
            {"grant_id": grant_id, "user_id": user_id, "revoked_at": None}, {"$set": {"revoked_at": datetime.now(UTC)}},
            projection={"_id": 0, "token_hash": 0}, return_document=True)
        if found is not None:
            await record_audit(self.db, "agent_grant_revoked", user_id=user_id, ip=ip, details=details)
        return found

    async def verify(self, token: str) -> AgentAccess | None:
        """The access a bearer token gives on the MCP server, or None for any token that must not pass."""
        claims = self._claims(token)
        if claims is None:
            return None
        doc = await self.db.agent_grants.find_one({"grant_id": claims["jti"]}, {"_id": 0})
        if doc is None or doc.get("token_hash") != token_digest(token) or doc["user_id"] != claims["sub"]:
            return None
        grant = Grant.from_doc(doc)
        if not grant.active or doc.get("audience") != self.audience:
            return None
        if await self.db.users.count_documents({"user_id": grant.user_id, "disabled": {"$ne": True}}, limit=1) == 0:
            return None
        now = datetime.now(UTC)
        if grant.last_used_at is None or (now - grant.last_used_at).total_seconds() > LAST_USED_EVERY_S:
            await self.db.agent_grants.update_one({"grant_id": grant.grant_id}, {"$set": {"last_used_at": now}})
        return AgentAccess(grant_id=grant.grant_id, user_id=grant.user_id, tier=grant.tier,
                           client_id=grant.client_id, expires_at=int(claims["exp"]))

    def _claims(self, token: str) -> dict[str, Any] | None:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            return None
        if header.get("alg") != ALGORITHM or header.get("typ") != ACCESS_TOKEN_TYPE:
            return None
        if any(name in header for name in ("jku", "jwk", "x5u", "x5c")):
            return None
        key = self.keys.verifying.get(str(header.get("kid", "")))
        if key is None:
            return None
        try:
            claims = jwt.decode(token, key, algorithms=[ALGORITHM], audience=self.audience, issuer=self.issuer,
                                leeway=LEEWAY_S, options={"require": _REQUIRED_CLAIMS})
        except jwt.PyJWTError:
            return None
        if not isinstance(claims.get("jti"), str) or not isinstance(claims.get("sub"), str):
            return None
        return claims

    @staticmethod
    def _require_person(principal: Principal, action: str) -> None:
        if not principal.human:
            raise Forbidden(f"{action} is for the account's owner in the dashboard or the API, not for an agent")
