"""In-process sliding-window limits (login attempts per IP, failed logins per email).

One gateway process keeps its own counts: enough to stop online guessing through one gateway;
several gateways behind a balancer each allow the configured rate.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable

MAX_TRACKED_KEYS = 100_000


class SlidingWindowLimiter:
    def __init__(self, limit: int, window_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        if limit < 1 or window_s <= 0:
            raise ValueError("limit must be >= 1 and window_s > 0")
        self.limit = limit
        self.window_s = window_s
        self._clock = clock
        self._hits: dict[str, deque[float]] = {}

    def retry_after(self, key: str) -> int | None:
        """Seconds until ``key`` may try again, or None when it may now."""
        hits = self._recent(key)
        if len(hits) < self.limit:
            return None
        return max(1, math.ceil(hits[0] + self.window_s - self._clock()))

    def record(self, key: str) -> None:
        if len(self._hits) >= MAX_TRACKED_KEYS:
            self._forget_idle()
        self._recent(key).append(self._clock())

    def reset(self, key: str) -> None:
        self._hits.pop(key, None)

    def _recent(self, key: str) -> deque[float]:
        hits = self._hits.setdefault(key, deque())
        cutoff = self._clock() - self.window_s
        while hits and hits[0] <= cutoff:
            hits.popleft()
        return hits

    def _forget_idle(self) -> None:
        for key in list(self._hits):
            if not self._recent(key):
                del self._hits[key]
