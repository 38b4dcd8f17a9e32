"""``audit_logs`` (180-day TTL on ``at``): who did what security-relevant thing, from where.

Entries never hold a password, token or exchange key: only IDs, the action and small details.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any, Literal

from pymongo.asynchronous.database import AsyncDatabase

AuditAction = Literal[
    "register", "login", "login_failed", "logout", "refresh_reuse_detected", "session_revoked",
    "api_key_saved", "api_key_deleted", "api_key_tested", "role_changed", "user_created_cli",
    "two_factor_setup_started", "two_factor_enabled", "two_factor_disabled", "two_factor_failed",
    "two_factor_challenge_issued", "recovery_codes_regenerated", "recovery_code_used", "step_up",
    "step_up_notional_changed", "two_factor_policy_changed", "two_factor_reset_cli",
    "agent_grant_created", "agent_grant_revoked",
    "telegram_linked", "telegram_link_refused", "telegram_unlinked", "telegram_refused",
]


async def record_audit(
    db: AsyncDatabase, action: AuditAction, *, user_id: str | None, actor_id: str | None = None,
    ip: str | None = None, details: dict[str, Any] | None = None,
) -> None:
    await db.audit_logs.insert_one({
        "event_id": uuid.uuid4().hex, "at": datetime.now(UTC), "action": action, "user_id": user_id,
        "actor_id": actor_id if actor_id is not None else user_id, "ip": ip, "details": details or {},
    })
