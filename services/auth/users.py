"""The ``users`` collection: creation with a short immutable user ID, lookups, role changes.

``user_id`` (10 base32 characters) names the user everywhere, including workflow IDs; the email can
change without touching any of them. ``role`` changes only through ``set_role`` (admins, the CLI).
"""

from __future__ import annotations

import re
import secrets
from datetime import UTC, datetime
from typing import Any, Literal

from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from services.auth.passwords import PasswordHasher

Role = Literal["user", "admin"]
ROLES: tuple[Role, ...] = ("user", "admin")
USER_ID_ALPHABET = "abcdefghijklmnopqrstuvwxyz234567"
USER_ID_LENGTH = 10
EMAIL_PATTERN = r"^[^@\s]{1,64}@[^@\s.]+(\.[^@\s.]+)+$"
_EMAIL = re.compile(EMAIL_PATTERN)


class EmailTakenError(Exception):
    pass


def new_user_id() -> str:
    return "".join(secrets.choice(USER_ID_ALPHABET) for _ in range(USER_ID_LENGTH))


def normalize_email(email: str) -> str:
    normalized = email.strip().lower()
    if len(normalized) > 254 or not _EMAIL.match(normalized):
        raise ValueError(f"{email!r} is not an email address")
    return normalized


async def create_user(
    db: AsyncDatabase, hasher: PasswordHasher, email: str, password: str, *, role: Role = "user",
    display_name: str | None = None,
) -> dict[str, Any]:
    email = normalize_email(email)
    if await db.users.find_one({"email": email}, {"_id": 1}):
        raise EmailTakenError(email)
    password_hash = await hasher.hash(password)
    now = datetime.now(UTC)
    for _ in range(5):
        doc = {"user_id": new_user_id(), "email": email, "password_hash": password_hash, "role": role,
               "display_name": display_name or email.split("@")[0], "created_at": now, "updated_at": now,
               "notification_preferences": None}
        try:
            await db.users.insert_one(doc)
            return doc
        except DuplicateKeyError:
            # Either the email was registered meanwhile, or (1 in 2^50) the random user ID collided.
            if await db.users.find_one({"email": email}, {"_id": 1}):
                raise EmailTakenError(email) from None
    raise RuntimeError("could not allocate a unique user ID in 5 attempts")


async def find_user(db: AsyncDatabase, user_id: str) -> dict[str, Any] | None:
    return await db.users.find_one({"user_id": user_id})


async def find_user_by_email(db: AsyncDatabase, email: str) -> dict[str, Any] | None:
    try:
        return await db.users.find_one({"email": normalize_email(email)})
    except ValueError:
        return None


async def set_role(db: AsyncDatabase, user_id: str, role: Role) -> Role | None:
    """Set the role; answers the previous one, or None when no such user exists."""
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}")
    before = await db.users.find_one_and_update(
        {"user_id": user_id}, {"$set": {"role": role, "updated_at": datetime.now(UTC)}}, projection={"role": 1})
    return before["role"] if before else None
