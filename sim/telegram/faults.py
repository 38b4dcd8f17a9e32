"""Fault injection for Bot API calls (``POST /sim/faults``): the next ``count`` calls of a method fail so.

Kinds: ``too_many_requests`` (429 "Too Many Requests: retry after S", ``parameters.retry_after`` S and a
``Retry-After`` header), ``blocked`` (403 "Forbidden: bot was blocked by the user"), ``server_error``
(500 "Internal Server Error"), ``bad_gateway`` (502 with an HTML body, as Telegram's front end sends).
``method`` "*" matches every method. Rules are spent in the order they were set.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from sim.telegram.errors import blocked, server_error, too_many_requests

KINDS = ("too_many_requests", "blocked", "server_error", "bad_gateway")


class BadGateway(Exception):
    """Answered with an HTML page, not the Bot API's JSON: clients must survive a body they can't decode."""


@dataclass
class FaultRule:
    method: str
    kind: str
    count: int
    retry_after: int

    def error(self) -> Exception:
        if self.kind == "too_many_requests":
            return too_many_requests(self.retry_after)
        if self.kind == "blocked":
            return blocked()
        if self.kind == "bad_gateway":
            return BadGateway()
        return server_error()


def _positive_int(body: dict[str, Any], name: str, default: int) -> int:
    value = body.get(name, default)
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{name} must be a positive integer")
    return value


class Faults:
    def __init__(self) -> None:
        self.rules: list[FaultRule] = []

    def add(self, body: dict[str, Any]) -> FaultRule:
        """A rule from a ``POST /sim/faults`` body; ValueError names what is wrong (nothing changes then)."""
        unknown = set(body) - {"method", "kind", "count", "retry_after"}
        if unknown:
            raise ValueError(f"unknown field(s) {', '.join(sorted(unknown))}; known: method, kind, count, retry_after")
        method = body.get("method")
        if not isinstance(method, str) or not method:
            raise ValueError('method must name a Bot API method (e.g. "sendMessage") or be "*"')
        kind = body.get("kind")
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {', '.join(KINDS)}")
        rule = FaultRule(method, kind, _positive_int(body, "count", 1), _positive_int(body, "retry_after", 5))
        self.rules.append(rule)
        return rule

    def take(self, method: str) -> FaultRule | None:
        """The rule this call of ``method`` must fail by, one count spent; None when no rule applies."""
        for rule in self.rules:
            if rule.method == "*" or rule.method.lower() == method.lower():
                rule.count -= 1
                if rule.count <= 0:
                    self.rules.remove(rule)
                return rule
        return None

    def clear(self) -> None:
        self.rules.clear()

    def as_list(self) -> list[dict[str, Any]]:
        return [asdict(rule) for rule in self.rules]

