"""Fault injection settings and the request log, shared by the REST guard and the stream hub."""

from __future__ import annotations

from collections import deque
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class Faults:
    """``drop_ws_every``: close every WebSocket after that many data messages on it.
    ``http_429_remaining``: the next requests answered 429 with ``Retry-After: retry_after_s``; a
    request inside that window is answered 418 and bans the IP for ``ban_s``.
    ``http_5xx_remaining``: the next requests answered ``http_5xx_status``.
    ``latency_ms``: added before every REST reply.
    ``user_stream_down``: user-data streams (``/ws/<listenKey>``) are closed (code 1011) and new
    connections to them refused at the handshake (HTTP 403) until it is cleared; market streams and
    REST are untouched, so what happens meanwhile can only be learnt by REST."""

    drop_ws_every: int | None = None
    http_429_remaining: int = 0
    retry_after_s: int = 1
    ban_s: int = 120
    http_5xx_remaining: int = 0
    http_5xx_status: int = 503
    latency_ms: float = 0.0
    user_stream_down: bool = False

    def update(self, changes: dict[str, Any]) -> None:
        """Apply a JSON body from ``POST /sim/faults``; unknown or ill-typed fields are refused."""
        known = {f: type(v) for f, v in asdict(Faults()).items()}
        for name, value in changes.items():
            if name not in known:
                raise ValueError(f"unknown fault {name!r}; known: {', '.join(sorted(known))}")
            if name == "drop_ws_every":
                if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
                    raise ValueError("drop_ws_every must be a positive integer or null")
            elif name == "user_stream_down":
                if not isinstance(value, bool):
                    raise ValueError("user_stream_down must be true or false")
            elif name == "latency_ms":
                if not isinstance(value, int | float) or isinstance(value, bool) or value < 0:
                    raise ValueError("latency_ms must be a non-negative number")
                value = float(value)
            elif not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise ValueError(f"{name} must be a non-negative integer")
            if name == "http_5xx_status" and not 500 <= value <= 599:
                raise ValueError("http_5xx_status must be between 500 and 599")
            if name in ("retry_after_s", "ban_s") and value < 1:
                raise ValueError(f"{name} must be at least 1")
            setattr(self, name, value)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class LoggedRequest:
    wall_ms: int
    method: str
    path: str
    query: str
    client: str
    status: int
    weight: int


@dataclass
class RequestLog:
    entries: deque[LoggedRequest] = field(default_factory=lambda: deque(maxlen=100_000))

    def add(self, entry: LoggedRequest) -> None:
        self.entries.append(entry)

    def as_list(self) -> list[dict[str, Any]]:
        return [asdict(e) for e in self.entries]
