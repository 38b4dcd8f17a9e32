"""Account provisioning outside the API: ``durabot user create [--admin]`` and ``durabot user reset-2fa``."""

from __future__ import annotations

from activities.db import ensure_schema
from core.connect import connect_mongo
from core.settings import Settings
from services.auth.audit import record_audit
from services.auth.passwords import MAX_PASSWORD_CHARS, MIN_PASSWORD_CHARS, PasswordHasher
from services.auth.sessions import revoke_other_sessions
from services.auth.users import EmailTakenError, create_user, find_user_by_email, normalize_email


def check_password_rules(password: str) -> None:
    if not MIN_PASSWORD_CHARS <= len(password) <= MAX_PASSWORD_CHARS:
        raise ValueError(f"the password must have {MIN_PASSWORD_CHARS} to {MAX_PASSWORD_CHARS} characters")


async def create_user_command(settings: Settings, email: str, password: str, *, admin: bool) -> str:
    """Create the user and answer its user ID; bad input raises ``ValueError`` with the reason."""
    normalize_email(email)
    check_password_rules(password)
    mongo = await connect_mongo(settings)
    try:
        db = mongo[settings.mongo_database]
        await ensure_schema(db)
        try:
            doc = await create_user(db, PasswordHasher(), email, password, role="admin" if admin else "user")
        except EmailTakenError:
            raise ValueError(f"{normalize_email(email)} is already registered") from None
        await record_audit(db, "user_created_cli", user_id=doc["user_id"], actor_id="cli",
                           details={"role": doc["role"]})
        return str(doc["user_id"])
    finally:
        await mongo.close()


async def reset_two_factor_command(settings: Settings, email: str) -> str:
    """Turn two-factor off for a user who lost both their app and their recovery codes (an operator with
    database access vouches for them), ending every login session of theirs; answers the user ID."""
    normalize_email(email)
    mongo = await connect_mongo(settings)
    try:
        db = mongo[settings.mongo_database]
        user = await find_user_by_email(db, email)
        if user is None:
            raise ValueError(f"no user {normalize_email(email)}")
        await db.users.update_one({"user_id": user["user_id"]},
                                  {"$unset": {"two_factor": "", "two_factor_pending": ""}})
        ended = await revoke_other_sessions(db, user["user_id"], None, "two_factor_reset")
        await record_audit(db, "two_factor_reset_cli", user_id=user["user_id"], actor_id="cli",
                           details={"sessions_ended": ended})
        return str(user["user_id"])
    finally:
        await mongo.close()
