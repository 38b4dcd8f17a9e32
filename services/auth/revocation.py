"""Which login sessions were live lately, so a validly signed token can still stop or close while
MongoDB is out of reach.

Every successful check of a token's session is remembered with its time, and a background refresh
re-checks every session seen within an access token's lifetime (one query every ``REFRESH_S``),
dropping those revoked meanwhile. Risk-reducing actions (stop, close) may then accept a token whose
session was confirmed live at most ``MAX_STALE_S`` ago when the database does not answer; everything
else needs the database.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import PyMongoError

log = logging.getLogger("durabot.auth.revocation")

MAX_STALE_S = 60.0
REFRESH_S = 20.0


@dataclass
class _Seen:
    user: dict[str, Any]  # the user's document as last read (user_id, email, role, …)
    confirmed_at: float  # monotonic time the session was last confirmed live
    last_used: float


class LiveSessions:
    def __init__(self, db: AsyncDatabase, keep_s: float, clock=time.monotonic) -> None:
        self.db = db
        self.keep_s = keep_s  # how long an unused session is remembered (the access-token lifetime)
        self._clock = clock
        self._seen: dict[str, _Seen] = {}

    def confirmed(self, session_id: str, user: dict[str, Any]) -> None:
        now = self._clock()
        self._seen[session_id] = _Seen(user, now, now)

    def recent(self, session_id: str, user_id: str) -> dict[str, Any] | None:
        """The user of a session confirmed live at most ``MAX_STALE_S`` ago, else None."""
        seen = self._seen.get(session_id)
        if seen is None or seen.user.get("user_id") != user_id or self._clock() - seen.confirmed_at > MAX_STALE_S:
            return None
        seen.last_used = self._clock()
        return seen.user

    async def refresh(self) -> None:
        now = self._clock()
        for session_id in [s for s, seen in self._seen.items() if now - seen.last_used > self.keep_s]:
            del self._seen[session_id]
        if not self._seen:
            return
        live = {d["session_id"] async for d in self.db.sessions.find(
            {"session_id": {"$in": list(self._seen)}, "revoked_at": None, "expires_at": {"$gt": datetime.now(UTC)}},
            {"session_id": 1})}
        for session_id in list(self._seen):
            if session_id in live:
                self._seen[session_id].confirmed_at = now
            else:
                del self._seen[session_id]

    async def run(self) -> None:
        while True:
            await asyncio.sleep(REFRESH_S)
            with contextlib.suppress(PyMongoError):
                await self.refresh()
