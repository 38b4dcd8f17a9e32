"""Step-up: money and access actions need a two-factor code entered in the same login session
within the last few minutes (``step_up_window_s``). A token refresh clears it, so a stolen refresh
token never carries one. Also the admins' policy of who must have two-factor authentication.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any, Literal, cast

from pymongo.asynchronous.database import AsyncDatabase

from activities.binance.key_vault import MasterKeyring
from services.auth.rate_limit import RateLimits
from services.auth.totp import (
    looks_like_recovery_code,
    matching_step,
    open_secret,
    recovery_code_digest,
)
from services.errors import Forbidden, StepUpRequired, TooManyRequests
from services.principal import Principal

Policy = Literal["off", "admins", "all"]
POLICIES: tuple[Policy, ...] = ("off", "admins", "all")
POLICY_KEY = "two_factor_policy"
CodeMethod = Literal["totp", "recovery"]


class CodeRefused(Exception):
    """A wrong, reused or malformed code; ``reason`` is safe to show."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def require_step_up(principal: Principal, window_s: int, action: str, now_s: float | None = None) -> None:
    """Refuse ``action`` unless this person entered a two-factor code in this session within ``window_s``."""
    if not principal.human or principal.session_id is None:
        raise Forbidden(f"{action} needs a person in a login session")
    if not principal.two_factor:
        raise StepUpRequired(f"{action} needs two-factor authentication: set it up first "
                             "(Settings → Two-factor authentication)", "enrol")
    now = time.time() if now_s is None else now_s
    if principal.stepped_up_at is None or now - principal.stepped_up_at > window_s:
        raise StepUpRequired(f"{action} needs a two-factor code from the last {window_s // 60} minutes: "
                             "enter one and try again", "code")


def policy_requires(policy: str, role: str) -> bool:
    return policy == "all" or (policy == "admins" and role == "admin")


async def read_policy(db: AsyncDatabase) -> Policy:
    doc = await db.system_config.find_one({"key": POLICY_KEY})
    value = doc.get("value") if doc else None
    return cast(Policy, value) if value in POLICIES else "off"


def two_factor_of(user: dict[str, Any]) -> dict[str, Any] | None:
    """The user's two-factor record when it is on."""
    record = user.get("two_factor")
    return record if isinstance(record, dict) and record.get("enabled") else None


class CodeCheck:
    """Checks a user's two-factor code (TOTP or recovery), each usable once, under rate limits: wrong
    codes per user, attempts per IP."""

    def __init__(self, db: AsyncDatabase, keyring: MasterKeyring, limits: RateLimits) -> None:
        self.db = db
        self.keyring = keyring
        self.limits = limits

    async def check_limits(self, user_id: str, ip: str | None) -> None:
        wait = (await self.limits.two_factor_attempts_by_ip.retry_after(ip or "unknown")
                or await self.limits.two_factor_failures_by_user.retry_after(user_id))
        if wait:
            raise TooManyRequests("too many two-factor attempts; try again later", wait)
        await self.limits.two_factor_attempts_by_ip.record(ip or "unknown")

    async def failed(self, user_id: str, reason: str) -> CodeRefused:
        await self.limits.two_factor_failures_by_user.record(user_id)
        return CodeRefused(reason)

    async def verify(self, user: dict[str, Any], code: str, ip: str | None) -> CodeMethod:
        """Accept ``code`` once for ``user`` (raises ``CodeRefused`` or ``TooManyRequests``)."""
        user_id = user["user_id"]
        await self.check_limits(user_id, ip)
        record = two_factor_of(user)
        if record is None:
            raise CodeRefused("two-factor authentication is not on for this account")
        if looks_like_recovery_code(code):
            digest = recovery_code_digest(self.keyring, user_id, code)
            used = await self.db.users.update_one({"user_id": user_id, "two_factor.recovery": digest},
                                                  {"$pull": {"two_factor.recovery": digest}})
            if used.modified_count != 1:
                raise await self.failed(user_id, "wrong or already used recovery code")
            return "recovery"
        step = matching_step(open_secret(self.keyring, user_id, record["secret"]), code)
        if step is None:
            raise await self.failed(user_id, "wrong code: enter the 6 digits your authenticator app shows now "
                                       "(or a recovery code)")
        # The step is taken atomically: the same code sent twice (a replay, or a race) counts once.
        taken = await self.db.users.update_one(
            {"user_id": user_id, "two_factor.enabled": True, "two_factor.last_step": {"$lt": step}},
            {"$set": {"two_factor.last_step": step, "two_factor.last_used_at": datetime.now(UTC)}})
        if taken.modified_count != 1:
            raise await self.failed(user_id, "this code was used already: wait for the next one")
        return "totp"
