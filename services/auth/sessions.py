"""Login sessions (``sessions``): one per login, holding the hash of its current refresh token.

Refresh tokens rotate on every use (RFC 9700 §4.14). A refresh token that verifies (we signed it)
but is no longer its session's current one was already rotated: someone replayed it, so the whole
session (every token descended from that login) is revoked. Access tokens name their session, so
logout and revocation take effect immediately, not when the 15-minute token expires. The TTL index
on ``expires_at`` removes sessions whose last refresh token has expired.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase

from services.auth.tokens import InvalidTokenError, IssuedToken, TokenService, token_digest


class RefreshReuseError(InvalidTokenError):
    """A rotated refresh token came back; its session is now revoked."""

    def __init__(self, user_id: str, session_id: str) -> None:
        super().__init__("refresh token reuse detected: the session is revoked")
        self.user_id = user_id
        self.session_id = session_id


@dataclass(frozen=True)
class TokenPair:
    session_id: str
    access: IssuedToken
    refresh: IssuedToken


def _at(epoch_s: int) -> datetime:
    return datetime.fromtimestamp(epoch_s, UTC)


async def open_session(
    db: AsyncDatabase, tokens: TokenService, user_id: str, *, ip: str | None, user_agent: str | None,
    stepped_up: bool = False,
) -> TokenPair:
    """``stepped_up``: the login took a two-factor code, which counts as a step-up for a while."""
    session_id = secrets.token_urlsafe(16)
    access = tokens.issue("access", user_id, session_id)
    refresh = tokens.issue("refresh", user_id, session_id)
    now = datetime.now(UTC)
    await db.sessions.insert_one({
        "session_id": session_id, "user_id": user_id, "refresh_hash": refresh.digest, "generation": 0,
        "created_at": now, "last_used_at": now, "expires_at": _at(refresh.expires_at),
        "revoked_at": None, "revoked_reason": None, "ip": ip, "user_agent": (user_agent or "")[:200],
        "step_up_at": now if stepped_up else None,
    })
    return TokenPair(session_id, access, refresh)


async def mark_stepped_up(db: AsyncDatabase, session_id: str, user_id: str, at: datetime) -> bool:
    """Record that the session's user just entered a two-factor code; False when the session ended."""
    done = await db.sessions.update_one({"session_id": session_id, "user_id": user_id, "revoked_at": None},
                                        {"$set": {"step_up_at": at}})
    return done.matched_count == 1


async def revoke_other_sessions(db: AsyncDatabase, user_id: str, keep_session_id: str | None, reason: str) -> int:
    done = await db.sessions.update_many(
        {"user_id": user_id, "session_id": {"$ne": keep_session_id}, "revoked_at": None},
        {"$set": {"revoked_at": datetime.now(UTC), "revoked_reason": reason}, "$unset": {"refresh_hash": ""}},
    )
    return done.modified_count


async def rotate_refresh_token(db: AsyncDatabase, tokens: TokenService, refresh_token: str) -> TokenPair:
    """A new pair for a current refresh token; raises ``InvalidTokenError`` (``RefreshReuseError``)."""
    claims = tokens.verify(refresh_token, "refresh")
    access = tokens.issue("access", claims.user_id, claims.session_id)
    refresh = tokens.issue("refresh", claims.user_id, claims.session_id)
    rotated = await db.sessions.find_one_and_update(
        {"session_id": claims.session_id, "user_id": claims.user_id, "revoked_at": None,
         "refresh_hash": token_digest(refresh_token)},
        # A step-up belongs to the tokens of the moment a code was entered, never to refreshed ones.
        {"$set": {"refresh_hash": refresh.digest, "last_used_at": datetime.now(UTC),
                  "expires_at": _at(refresh.expires_at), "step_up_at": None}, "$inc": {"generation": 1}},
    )
    if rotated is not None:
        return TokenPair(claims.session_id, access, refresh)
    if await revoke_session(db, claims.session_id, claims.user_id, "refresh_token_reuse"):
        raise RefreshReuseError(claims.user_id, claims.session_id)
    raise InvalidTokenError("refresh token revoked")


async def revoke_session(db: AsyncDatabase, session_id: str, user_id: str, reason: str) -> bool:
    """Revoke one of ``user_id``'s live sessions; False when it is not theirs or already revoked."""
    done = await db.sessions.update_one(
        {"session_id": session_id, "user_id": user_id, "revoked_at": None},
        {"$set": {"revoked_at": datetime.now(UTC), "revoked_reason": reason}, "$unset": {"refresh_hash": ""}},
    )
    return done.modified_count == 1


async def active_session(db: AsyncDatabase, session_id: str, user_id: str) -> dict[str, Any] | None:
    return await db.sessions.find_one({
        "session_id": session_id, "user_id": user_id, "revoked_at": None, "expires_at": {"$gt": datetime.now(UTC)},
    })


async def list_sessions(db: AsyncDatabase, user_id: str) -> list[dict[str, Any]]:
    cursor = db.sessions.find({"user_id": user_id, "revoked_at": None}).sort("created_at", -1)
    return [doc async for doc in cursor.limit(100)]
