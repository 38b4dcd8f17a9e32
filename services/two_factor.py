"""Two-factor authentication (TOTP): enrolment, step-up, recovery codes, the step-up notional and the
admins' policy. Every change lands in ``audit_logs``; neither the secret nor a recovery code is ever
stored in the clear, logged or answered twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase

from core.settings import Settings
from services.auth.audit import record_audit
from services.auth.kit import AuthServices
from services.auth.sessions import mark_stepped_up, revoke_other_sessions
from services.auth.step_up import (
    POLICY_KEY,
    CodeCheck,
    CodeRefused,
    Policy,
    policy_requires,
    read_policy,
    require_step_up,
    two_factor_of,
)
from services.auth.totp import (
    matching_step,
    new_recovery_codes,
    new_secret,
    open_secret,
    provisioning_uri,
    qr_svg_data_uri,
    recovery_code_digest,
    seal_secret,
)
from services.auth.users import find_user
from services.errors import Conflict, Forbidden, Rejected, Unauthenticated
from services.principal import Principal


@dataclass(frozen=True)
class TwoFactorStatus:
    enabled: bool
    enabled_at: datetime | None
    recovery_codes_left: int
    step_up_until: datetime | None
    required: bool
    step_up_notional: float


@dataclass(frozen=True)
class TwoFactorSetup:
    secret: str
    provisioning_uri: str
    qr_svg: str


class TwoFactor:
    def __init__(self, settings: Settings, db: AsyncDatabase, auth: AuthServices, codes: CodeCheck) -> None:
        self.settings = settings
        self.db = db
        self.auth = auth
        self.codes = codes

    async def _user(self, principal: Principal) -> dict[str, Any]:
        user = await find_user(self.db, principal.user_id)
        if user is None:
            raise Unauthenticated("user no longer exists")
        return user

    def _step_up_until(self, principal: Principal) -> datetime | None:
        if principal.stepped_up_at is None or not principal.two_factor:
            return None
        until = datetime.fromtimestamp(principal.stepped_up_at + self.settings.step_up_window_s, UTC)
        return until if until > datetime.now(UTC) else None

    def require_step_up(self, principal: Principal, action: str) -> None:
        require_step_up(principal, self.settings.step_up_window_s, action)

    async def require_step_up_above(self, principal: Principal, notional: float, action: str) -> None:
        """Step-up for ``action`` when ``notional`` is above the user's threshold (real order confirmations)."""
        record = two_factor_of(await self._user(principal))
        threshold = record.get("step_up_notional", self.settings.step_up_notional_default) if record else 0.0
        if notional > threshold:
            self.require_step_up(principal, f"{action} (notional {notional:g} above {threshold:g})")

    # -- reads ---------------------------------------------------------------------------------------
    async def status(self, principal: Principal) -> TwoFactorStatus:
        user = await self._user(principal)
        record = two_factor_of(user) or {}
        return TwoFactorStatus(
            enabled=bool(record), enabled_at=record.get("enabled_at"),
            recovery_codes_left=len(record.get("recovery", [])), step_up_until=self._step_up_until(principal),
            required=policy_requires(await read_policy(self.db), user["role"]),
            step_up_notional=float(record.get("step_up_notional", self.settings.step_up_notional_default)))

    # -- enrolment -----------------------------------------------------------------------------------
    async def setup(self, principal: Principal) -> TwoFactorSetup:
        """A new secret waiting for its first code (replacing an unconfirmed earlier one)."""
        user = await self._user(principal)
        if two_factor_of(user):
            raise Conflict(None, "two-factor authentication is on already; turn it off first to set up a new app")
        secret = new_secret()
        await self.db.users.update_one(
            {"user_id": user["user_id"], "two_factor.enabled": {"$ne": True}},
            {"$set": {"two_factor_pending": {"secret": seal_secret(self.auth.keyring, user["user_id"], secret),
                                             "created_at": datetime.now(UTC)}}})
        await record_audit(self.db, "two_factor_setup_started", user_id=user["user_id"], ip=principal.ip)
        uri = provisioning_uri(secret, user["email"], self.settings.two_factor_issuer)
        return TwoFactorSetup(secret, uri, qr_svg_data_uri(uri))

    async def enable(self, principal: Principal, code: str) -> list[str]:
        """Confirm the set-up with a first code: two-factor is on, the other login sessions end, and
        the ten recovery codes are answered (this once)."""
        if principal.session_id is None:
            raise Forbidden("two-factor authentication is set up in a login session")
        user = await self._user(principal)
        pending = user.get("two_factor_pending")
        if two_factor_of(user):
            raise Conflict(None, "two-factor authentication is on already")
        if not isinstance(pending, dict):
            raise Conflict(None, "no set-up in progress: start one first (POST /api/auth/2fa/setup)")
        await self.codes.check_limits(user["user_id"], principal.ip)
        step = matching_step(open_secret(self.auth.keyring, user["user_id"], pending["secret"]), code)
        if step is None:
            await self.codes.failed(user["user_id"], "wrong code")
            await record_audit(self.db, "two_factor_failed", user_id=user["user_id"], ip=principal.ip,
                               details={"during": "enable"})
            raise Rejected("code", "wrong code: enter the 6 digits your authenticator app shows now")
        codes = new_recovery_codes()
        now = datetime.now(UTC)
        record = {"enabled": True, "secret": pending["secret"], "enabled_at": now, "last_step": step,
                  "recovery": [recovery_code_digest(self.auth.keyring, user["user_id"], c) for c in codes],
                  "step_up_notional": self.settings.step_up_notional_default}
        done = await self.db.users.update_one(
            {"user_id": user["user_id"], "two_factor.enabled": {"$ne": True},
             "two_factor_pending.secret.nonce": pending["secret"]["nonce"]},
            {"$set": {"two_factor": record}, "$unset": {"two_factor_pending": ""}})
        if done.modified_count != 1:
            raise Conflict(None, "the set-up changed meanwhile (another tab?): start again")
        revoked = await revoke_other_sessions(self.db, user["user_id"], principal.session_id, "two_factor_enabled")
        await mark_stepped_up(self.db, principal.session_id, user["user_id"], now)
        await record_audit(self.db, "two_factor_enabled", user_id=user["user_id"], ip=principal.ip,
                           details={"other_sessions_revoked": revoked})
        return codes

    async def step_up(self, principal: Principal, code: str) -> datetime:
        """A fresh code: money and access actions are allowed in this session for the step-up window."""
        if principal.session_id is None or not principal.human:
            raise Forbidden("a step-up is for a person in a login session")
        user = await self._user(principal)
        if not two_factor_of(user):
            raise Conflict(None, "two-factor authentication is not on: set it up first")
        try:
            method = await self.codes.verify(user, code, principal.ip)
        except CodeRefused as refused:
            await record_audit(self.db, "two_factor_failed", user_id=user["user_id"], ip=principal.ip,
                               details={"during": "step_up"})
            raise Rejected("code", refused.reason) from None
        now = datetime.now(UTC)
        if not await mark_stepped_up(self.db, principal.session_id, user["user_id"], now):
            raise Unauthenticated("session ended (logged out or revoked)")
        await record_audit(self.db, "recovery_code_used" if method == "recovery" else "step_up",
                           user_id=user["user_id"], ip=principal.ip, details={"session_id": principal.session_id})
        return now + timedelta(seconds=self.settings.step_up_window_s)

    async def disable(self, principal: Principal) -> None:
        self.require_step_up(principal, "turning two-factor authentication off")
        user = await self._user(principal)
        if policy_requires(await read_policy(self.db), user["role"]):
            raise Forbidden("an administrator requires two-factor authentication for your account")
        await self.db.users.update_one({"user_id": user["user_id"]},
                                       {"$unset": {"two_factor": "", "two_factor_pending": ""}})
        await record_audit(self.db, "two_factor_disabled", user_id=user["user_id"], ip=principal.ip)

    async def regenerate_recovery_codes(self, principal: Principal) -> list[str]:
        """Ten new recovery codes; the old ones stop working."""
        self.require_step_up(principal, "making new recovery codes")
        codes = new_recovery_codes()
        digests = [recovery_code_digest(self.auth.keyring, principal.user_id, c) for c in codes]
        done = await self.db.users.update_one({"user_id": principal.user_id, "two_factor.enabled": True},
                                              {"$set": {"two_factor.recovery": digests}})
        if done.matched_count != 1:
            raise Conflict(None, "two-factor authentication is not on")
        await record_audit(self.db, "recovery_codes_regenerated", user_id=principal.user_id, ip=principal.ip)
        return codes

    async def set_step_up_notional(self, principal: Principal, notional: float) -> TwoFactorStatus:
        self.require_step_up(principal, "changing the step-up notional")
        done = await self.db.users.update_one({"user_id": principal.user_id, "two_factor.enabled": True},
                                              {"$set": {"two_factor.step_up_notional": notional}})
        if done.matched_count != 1:
            raise Conflict(None, "two-factor authentication is not on")
        await record_audit(self.db, "step_up_notional_changed", user_id=principal.user_id, ip=principal.ip,
                           details={"step_up_notional": notional})
        return await self.status(principal)

    # -- the admins' policy --------------------------------------------------------------------------
    async def policy(self, principal: Principal) -> Policy:
        principal.require_admin()
        return await read_policy(self.db)

    async def set_policy(self, principal: Principal, policy: Policy) -> Policy:
        principal.require_admin()
        self.require_step_up(principal, "changing who must use two-factor authentication")
        await self.db.system_config.update_one({"key": POLICY_KEY}, {"$set": {"value": policy}}, upsert=True)
        await record_audit(self.db, "two_factor_policy_changed", user_id=principal.user_id, ip=principal.ip,
                           details={"policy": policy})
        return policy
