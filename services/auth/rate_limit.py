"""Sliding-window limits kept in MongoDB (login attempts per IP, failed logins per email, two-factor
attempts per IP and failures per user), so every gateway process counts the same hits: a guesser
spreading attempts over several gateways behind a balancer meets one limit, not one per process.

A hit is one document of ``rate_limit_hits`` whose TTL index removes it once its window has passed.
Keys (emails, IPs) are stored as SHA-256 digests, never in the clear.
"""

from __future__ import annotations

import hashlib
import math
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from pymongo.asynchronous.database import AsyncDatabase

from core.settings import Settings


class SharedWindowLimiter:
    def __init__(self, db: AsyncDatabase, name: str, limit: int, window_s: float,
                 clock: Callable[[], float] = time.time) -> None:
        if limit < 1 or window_s <= 0:
            raise ValueError("limit must be >= 1 and window_s > 0")
        self.db = db
        self.name = name
        self.limit = limit
        self.window_s = window_s
        self._clock = clock

    def _key(self, key: str) -> str:
        return hashlib.sha256(f"{self.name}:{key}".encode()).hexdigest()

    async def retry_after(self, key: str) -> int | None:
        """Seconds until ``key`` may try again, or None when it may now."""
        now = self._clock()
        cursor = self.db.rate_limit_hits.find(
            {"key": self._key(key), "at": {"$gt": now - self.window_s}}, {"at": 1, "_id": 0}).sort("at", 1)
        hits = [doc["at"] async for doc in cursor.limit(self.limit)]
        if len(hits) < self.limit:
            return None
        return max(1, math.ceil(hits[0] + self.window_s - now))

    async def record(self, key: str) -> None:
        now = self._clock()
        await self.db.rate_limit_hits.insert_one({
            "hit_id": uuid.uuid4().hex, "key": self._key(key), "at": now,
            "expires_at": datetime.fromtimestamp(now + self.window_s, UTC)})


@dataclass(frozen=True)
class RateLimits:
    login_attempts_by_ip: SharedWindowLimiter
    login_failures_by_email: SharedWindowLimiter
    two_factor_failures_by_user: SharedWindowLimiter
    two_factor_attempts_by_ip: SharedWindowLimiter

    @classmethod
    def build(cls, settings: Settings, db: AsyncDatabase) -> RateLimits:
        return cls(
            login_attempts_by_ip=SharedWindowLimiter(db, "login_ip", settings.login_attempts_per_ip,
                                                     settings.login_window_s),
            login_failures_by_email=SharedWindowLimiter(db, "login_email", settings.login_failures_per_email,
                                                        settings.login_window_s),
            two_factor_failures_by_user=SharedWindowLimiter(db, "2fa_user", settings.two_factor_failures_per_user,
                                                            settings.two_factor_window_s),
            two_factor_attempts_by_ip=SharedWindowLimiter(db, "2fa_ip", settings.two_factor_attempts_per_ip,
                                                          settings.two_factor_window_s),
        )
