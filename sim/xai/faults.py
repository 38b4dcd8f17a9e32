"""Fault injection for chat completions, set through ``POST /sim/faults``.

Each ``*_remaining`` counter is spent by one chat completion request. Per request, in this order:
1. delay: ``latency_ms`` always, plus ``slow_ms`` while ``slow_remaining`` lasts;
2. ``down``: 503 until set false (an outage; spends nothing);
3. ``drop_connection_remaining``: the body is read, then the connection closes with no answer;
4. ``http_429_remaining``: 429 ``rate_limit_exceeded`` with ``Retry-After: retry_after_s``;
5. ``http_5xx_remaining``: ``http_5xx_status`` with a ``server_error`` body;
6. then the request is checked (401/400/404 spend nothing further) and answered; a 200 answer spends
   ``malformed_remaining`` first (content that is not JSON), else ``schema_break_remaining`` (valid
   JSON that breaks the requested schema).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

COUNTERS = ("slow", "drop_connection", "http_429", "http_5xx", "malformed", "schema_break")


@dataclass
class Faults:
    down: bool = False
    latency_ms: float = 0.0
    slow_remaining: int = 0
    slow_ms: float = 2000.0
    drop_connection_remaining: int = 0
    http_429_remaining: int = 0
    retry_after_s: int = 1
    http_5xx_remaining: int = 0
    http_5xx_status: int = 500
    malformed_remaining: int = 0
    schema_break_remaining: int = 0

    def update(self, changes: dict[str, Any]) -> None:
        """Apply a JSON body of ``POST /sim/faults``; unknown or ill-typed fields are refused, and then
        nothing changes."""
        known = {f.name for f in fields(self)}
        checked: dict[str, Any] = {}
        for name, value in changes.items():
            if name not in known:
                raise ValueError(f"unknown fault {name!r}; known: {', '.join(sorted(known))}")
            if name == "down":
                if not isinstance(value, bool):
                    raise ValueError("down must be true or false")
            elif name in ("latency_ms", "slow_ms"):
                if not isinstance(value, int | float) or isinstance(value, bool) or not 0 <= value <= 600_000:
                    raise ValueError(f"{name} must be a number of milliseconds from 0 to 600000")
                value = float(value)
            elif not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise ValueError(f"{name} must be a non-negative integer")
            if name == "http_5xx_status" and not 500 <= value <= 599:
                raise ValueError("http_5xx_status must be between 500 and 599")
            if name == "retry_after_s" and value < 1:
                raise ValueError("retry_after_s must be at least 1")
            checked[name] = value
        for name, value in checked.items():
            setattr(self, name, value)

    def take(self, counter: str) -> bool:
        """Spend one of ``<counter>_remaining``; False when none is left."""
        name = f"{counter}_remaining"
        left = getattr(self, name)
        if left <= 0:
            return False
        setattr(self, name, left - 1)
        return True

    def reset(self) -> None:
        for f in fields(self):
            setattr(self, f.name, getattr(Faults, f.name))

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)
