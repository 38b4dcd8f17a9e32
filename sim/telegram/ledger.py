"""The bot's Bot API calls in order, for tests and people: method, parameters (never the token), status and
Telegram's description of a refusal. Kept in memory (the newest ``max_entries``); ``DELETE`` clears it."""

from __future__ import annotations

import time
from collections import deque
from typing import Any


class RequestLog:
    def __init__(self, max_entries: int) -> None:
        self.entries: deque[dict[str, Any]] = deque(maxlen=max_entries)
        self.seq = 0

    def record(self, *, method: str, params: dict[str, Any], status: int, description: str | None,
               fault: str | None, started: float) -> None:
        self.seq += 1
        self.entries.append({"seq": self.seq, "wall_ms": int(started * 1000), "method": method, "params": params,
                             "status": status, "description": description, "fault": fault,
                             "duration_ms": round((time.time() - started) * 1000, 1)})

    def clear(self) -> None:
        self.entries.clear()
