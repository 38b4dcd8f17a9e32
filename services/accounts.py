"""Accounts: register, log in, refresh, log out, the profile, login sessions, and (admins) users and
roles; and who a bearer token stands for.

Logins are rate-limited per IP and per email; unknown emails take as long as wrong passwords. Every
security-relevant action lands in ``audit_logs``.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from pymongo import ReturnDocument
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import PyMongoError

from core.settings import Settings
from services.auth.audit import record_audit
from services.auth.kit import AuthServices
from services.auth.rate_limit import RateLimits
from services.auth.revocation import LiveSessions
from services.auth.sessions import (
    RefreshReuseError,
    TokenPair,
    active_session,
    list_sessions,
    open_session,
    revoke_session,
    rotate_refresh_token,
)
from services.auth.step_up import CodeCheck, CodeRefused, Policy, policy_requires, read_policy, two_factor_of
from services.auth.tokens import InvalidTokenError, token_digest
from services.auth.users import EmailTakenError, Role, create_user, find_user, find_user_by_email, set_role
from services.errors import Conflict, NotFound, StepUpRequired, TooManyRequests, Unauthenticated
from services.principal import Channel, Principal


@dataclass(frozen=True)
class Caller:
    """Where an unauthenticated request comes from (for limits and the audit log)."""

    ip: str
    user_agent: str | None = None


@dataclass(frozen=True)
class Authenticated:
    principal: Principal
    token_expires_at: int


@dataclass(frozen=True)
class LoginChallenge:
    """The password was right and the account has two-factor on: the code step must follow, with this."""

    challenge: str
    expires_in: int


POLICY_CACHE_S = 5.0


def _too_many(retry_after: int) -> TooManyRequests:
    return TooManyRequests("too many attempts; try again later", retry_after)


class Accounts:
    def __init__(self, settings: Settings, db: AsyncDatabase, auth: AuthServices, limits: RateLimits,
                 codes: CodeCheck) -> None:
        self.settings = settings
        self.db = db
        self.auth = auth
        self.limits = limits
        self.live_sessions = LiveSessions(db, keep_s=settings.access_token_ttl_s)
        self.codes = codes
        self._policy: tuple[float, Policy] = (0.0, "off")

    async def _two_factor_policy(self) -> Policy:
        # Read on every request otherwise; an admin's change reaches every gateway within seconds.
        read_at, policy = self._policy
        if time.monotonic() - read_at > POLICY_CACHE_S:
            policy = await read_policy(self.db)
            self._policy = (time.monotonic(), policy)
        return policy

    # -- who a token stands for ----------------------------------------------------------------------
    async def authenticate(self, token: str, channel: Channel, *, reduces_risk: bool = False,
                           ip: str | None = None, enrolling: bool = False) -> Authenticated:
        """The principal of a valid access token of a live session. ``reduces_risk``: an action that
        only lowers risk (stop, close), which a session confirmed live within the last minute may
        take while the database does not answer. Where an admin requires two-factor authentication,
        a user without it may only set it up (``enrolling``) until they have."""
        try:
            claims = self.auth.tokens.verify(token, "access")
        except InvalidTokenError as exc:
            raise Unauthenticated(exc.reason) from None
        session: dict[str, Any] | None = None
        try:
            session = await active_session(self.db, claims.session_id, claims.user_id)
            user = await find_user(self.db, claims.user_id) if session is not None else None
        except PyMongoError:
            user = self.live_sessions.recent(claims.session_id, claims.user_id) if reduces_risk else None
            if user is None:
                raise
            # Reducing risk through an outage: no step-up (nothing that needs one reduces risk), and
            # the two-factor policy, unreadable now, never stands in the way of a stop or a close.
            return Authenticated(Principal(user_id=user["user_id"], channel=channel, role=user["role"],
                                           session_id=claims.session_id, human=True, ip=ip), claims.expires_at)
        else:
            if session is None:
                raise Unauthenticated("session ended (logged out or revoked)")
            if user is None:
                raise Unauthenticated("user no longer exists")
            self.live_sessions.confirmed(claims.session_id, user)
        two_factor = two_factor_of(user) is not None
        stepped_up = session.get("step_up_at") if two_factor else None
        if not two_factor and not enrolling and policy_requires(await self._two_factor_policy(), user["role"]):
            raise StepUpRequired("an administrator requires two-factor authentication for your account: set it "
                                 "up first (Settings → Two-factor authentication)", "enrol")
        principal = Principal(user_id=user["user_id"], channel=channel, role=user["role"],
                              session_id=claims.session_id, human=True, ip=ip, two_factor=two_factor,
                              stepped_up_at=stepped_up.timestamp() if stepped_up else None)
        return Authenticated(principal, claims.expires_at)

    # -- registration and login ----------------------------------------------------------------------
    async def register(self, caller: Caller, email: str, password: str, display_name: str | None) -> dict[str, Any]:
        """Create an account with the `user` role (admins come from `durabot user create --admin`)."""
        # Each registration costs a bcrypt hash: the per-IP login budget bounds that work too.
        wait = await self.limits.login_attempts_by_ip.retry_after(caller.ip)
        if wait:
            raise _too_many(wait)
        await self.limits.login_attempts_by_ip.record(caller.ip)
        try:
            doc = await create_user(self.db, self.auth.hasher, email, password, display_name=display_name)
        except EmailTakenError:
            raise Conflict("email", "email already registered") from None
        await record_audit(self.db, "register", user_id=doc["user_id"], ip=caller.ip)
        return doc

    async def login(self, caller: Caller, email: str, password: str) -> TokenPair | LoginChallenge:
        """Tokens, or with two-factor on, a challenge for the code step (``login_with_code``)."""
        email_key = email.strip().lower()
        wait = (await self.limits.login_attempts_by_ip.retry_after(caller.ip)
                or await self.limits.login_failures_by_email.retry_after(email_key))
        if wait:
            raise _too_many(wait)
        await self.limits.login_attempts_by_ip.record(caller.ip)
        user = await find_user_by_email(self.db, email)
        if not await self.auth.hasher.verify(password, user["password_hash"] if user else None):
            await self.limits.login_failures_by_email.record(email_key)
            await record_audit(self.db, "login_failed", user_id=user["user_id"] if user else None, ip=caller.ip,
                               details={"email": email_key})
            raise Unauthenticated("wrong email or password")
        assert user is not None
        if two_factor_of(user):
            return await self._challenge(caller, user)
        pair = await open_session(self.db, self.auth.tokens, user["user_id"], ip=caller.ip,
                                  user_agent=caller.user_agent)
        await record_audit(self.db, "login", user_id=user["user_id"], ip=caller.ip,
                           details={"session_id": pair.session_id})
        return pair

    async def _challenge(self, caller: Caller, user: dict[str, Any]) -> LoginChallenge:
        challenge = secrets.token_urlsafe(32)
        now = datetime.now(UTC)
        ttl = self.settings.login_challenge_ttl_s
        await self.db.login_challenges.insert_one({
            "challenge_hash": token_digest(challenge), "user_id": user["user_id"], "ip": caller.ip,
            "created_at": now, "expires_at": now + timedelta(seconds=ttl)})
        await record_audit(self.db, "two_factor_challenge_issued", user_id=user["user_id"], ip=caller.ip)
        return LoginChallenge(challenge, ttl)

    async def login_with_code(self, caller: Caller, challenge: str, code: str) -> TokenPair:
        """The code step of a two-factor login: a TOTP code (each accepted once) or a recovery code."""
        digest = token_digest(challenge)
        pending = await self.db.login_challenges.find_one({"challenge_hash": digest,
                                                           "expires_at": {"$gt": datetime.now(UTC)}})
        user = await find_user(self.db, pending["user_id"]) if pending else None
        if pending is None or user is None:
            raise Unauthenticated("this login expired or is unknown: enter your email and password again")
        try:
            method = await self.codes.verify(user, code, caller.ip)
        except CodeRefused as refused:
            await record_audit(self.db, "two_factor_failed", user_id=user["user_id"], ip=caller.ip,
                               details={"during": "login"})
            raise Unauthenticated(refused.reason) from None
        # One challenge, one login: of two right codes sent at once, only one opens a session.
        if await self.db.login_challenges.find_one_and_delete({"challenge_hash": digest}) is None:
            raise Unauthenticated("this login was completed already: enter your email and password again")
        pair = await open_session(self.db, self.auth.tokens, user["user_id"], ip=caller.ip,
                                  user_agent=caller.user_agent, stepped_up=True)
        if method == "recovery":
            await record_audit(self.db, "recovery_code_used", user_id=user["user_id"], ip=caller.ip,
                               details={"session_id": pair.session_id})
        await record_audit(self.db, "login", user_id=user["user_id"], ip=caller.ip,
                           details={"session_id": pair.session_id, "two_factor": method})
        return pair

    async def refresh(self, caller: Caller, refresh_token: str) -> TokenPair:
        """A new pair for a current refresh token; presenting a rotated one revokes its session."""
        try:
            return await rotate_refresh_token(self.db, self.auth.tokens, refresh_token)
        except RefreshReuseError as reuse:
            await record_audit(self.db, "refresh_reuse_detected", user_id=reuse.user_id, ip=caller.ip,
                               details={"session_id": reuse.session_id})
            raise Unauthenticated(reuse.reason) from None
        except InvalidTokenError as exc:
            raise Unauthenticated(exc.reason) from None

    async def logout(self, principal: Principal) -> None:
        """End this login session: its access and refresh tokens stop working at once."""
        if principal.session_id is not None:
            await revoke_session(self.db, principal.session_id, principal.user_id, "logout")
        await record_audit(self.db, "logout", user_id=principal.user_id, ip=principal.ip,
                           details={"session_id": principal.session_id})

    # -- profile and sessions ------------------------------------------------------------------------
    async def me(self, principal: Principal) -> dict[str, Any]:
        doc = await find_user(self.db, principal.user_id)
        if doc is None:
            raise Unauthenticated("user no longer exists")
        return doc

    async def update_me(self, principal: Principal, display_name: str | None) -> dict[str, Any]:
        doc = await self.db.users.find_one_and_update(
            {"user_id": principal.user_id}, {"$set": {"display_name": display_name, "updated_at": datetime.now(UTC)}},
            return_document=ReturnDocument.AFTER)
        if doc is None:
            raise Unauthenticated("user no longer exists")
        return doc

    async def sessions(self, principal: Principal) -> list[dict[str, Any]]:
        return await list_sessions(self.db, principal.user_id)

    async def end_session(self, principal: Principal, session_id: str) -> None:
        """Sign out one of the caller's sessions (e.g. a lost device)."""
        if not await revoke_session(self.db, session_id, principal.user_id, "revoked_by_user"):
            raise NotFound("no such session")
        await record_audit(self.db, "session_revoked", user_id=principal.user_id, ip=principal.ip,
                           details={"session_id": session_id})

    # -- administration ------------------------------------------------------------------------------
    async def users(self, principal: Principal) -> list[dict[str, Any]]:
        principal.require_admin()
        return [d async for d in self.db.users.find().sort("created_at", 1).limit(1000)]

    async def change_role(self, principal: Principal, user_id: str, role: Role) -> dict[str, Any]:
        """The only way to change a role. Audited with the acting admin."""
        principal.require_admin()
        if user_id == principal.user_id and role != "admin":
            raise Conflict("role", "admins cannot remove their own admin role")
        previous = await set_role(self.db, user_id, role)
        if previous is None:
            raise NotFound("no such user")
        await record_audit(self.db, "role_changed", user_id=user_id, actor_id=principal.user_id, ip=principal.ip,
                           details={"from": previous, "to": role})
        doc = await find_user(self.db, user_id)
        if doc is None:
            raise NotFound("no such user")
        return doc
