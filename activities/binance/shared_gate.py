"""One Binance rate-limit gate per exchange IP and per API key, shared by every worker process through
MongoDB (``exchange_gates``), for the signed calls of real trading.

Binance counts request weight per IP and new orders per account, and answers a request sent inside a
429's Retry-After with a 418 ban. So every process reads the same gate before it sends and writes what
each reply said (``X-MBX-USED-WEIGHT-1M``, ``X-MBX-ORDER-COUNT-10S``/``-1M``, Retry-After, bans).
Requests that reduce risk (reduce-only orders, cancels) may use the last ``PRIORITY_RESERVE`` of each
budget; everything else stops short of it, so closing a position still goes out when the budget is
nearly spent. A gate that is closed raises ``RateLimitedError``/``IpBannedError`` at once, with how
long to wait: the caller (an activity, an order workflow) decides whether to wait or to give up.
"""

from __future__ import annotations

import contextlib
import hashlib
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from activities.exchange_errors import IpBannedError, RateLimitedError

PRIORITY_RESERVE = 0.1
# USDⓈ-M defaults: 2,400 weight per minute per IP; 300 orders per 10 s and 1,200 per minute per account.
FUTURES_WEIGHT_PER_MINUTE = 2400
FUTURES_ORDERS_PER_10S = 300
FUTURES_ORDERS_PER_MINUTE = 1200


@dataclass(frozen=True)
class GateLimits:
    weight_per_minute: int = FUTURES_WEIGHT_PER_MINUTE
    orders_per_10s: int = FUTURES_ORDERS_PER_10S
    orders_per_minute: int = FUTURES_ORDERS_PER_MINUTE


def gate_ids(base_url: str, api_key: str) -> tuple[str, str]:
    """The IP gate (one per exchange host: the weight budget of this machine's IP) and the account gate
    (one per API key: its order counts), as IDs that do not reveal the key."""
    return (f"ip:{hashlib.sha256(base_url.encode()).hexdigest()[:16]}",
            f"key:{hashlib.sha256(api_key.encode()).hexdigest()[:16]}")


class SharedRequestGate:
    def __init__(self, db: AsyncDatabase, base_url: str, api_key: str, limits: GateLimits = GateLimits(),
                 wall_clock: Callable[[], float] = time.time) -> None:
        self.db = db
        self.ip_gate, self.key_gate = gate_ids(base_url, api_key)
        self.limits = limits
        self._wall = wall_clock

    async def before(self, weight: int, *, order: bool, priority: bool) -> None:
        """Raise if this request may not go out now: a ban, a Retry-After, or a budget it would pass."""
        now = self._wall()
        share = 1.0 if priority else 1.0 - PRIORITY_RESERVE
        docs = {d["gate_id"]: d async for d in self.db.exchange_gates.find(
            {"gate_id": {"$in": [self.ip_gate, self.key_gate]}})}
        for gate_id in (self.ip_gate, self.key_gate):
            doc = docs.get(gate_id, {})
            if doc.get("banned_until", 0) > now:
                raise IpBannedError(f"the exchange banned this IP: nothing is sent until the ban ends ({gate_id})",
                                    retry_after_s=doc["banned_until"] - now)
            if doc.get("resume_at", 0) > now:
                raise RateLimitedError("rate limited by the exchange: waiting for its Retry-After",
                                       retry_after_s=doc["resume_at"] - now)
        minute, ten_s = int(now // 60), int(now // 10)
        ip, key = docs.get(self.ip_gate, {}), docs.get(self.key_gate, {})
        used = ip.get("weight", 0) if ip.get("minute") == minute else 0
        if used + weight > self.limits.weight_per_minute * share:
            raise RateLimitedError(f"request weight {used} of {self.limits.weight_per_minute} used this minute",
                                   retry_after_s=(minute + 1) * 60 - now)
        if order:
            per_10s = key.get("orders_10s", 0) if key.get("ten_s") == ten_s else 0
            per_minute = key.get("orders_1m", 0) if key.get("minute") == minute else 0
            if per_10s + 1 > self.limits.orders_per_10s * share:
                raise RateLimitedError(f"{per_10s} orders in these 10 s", retry_after_s=(ten_s + 1) * 10 - now)
            if per_minute + 1 > self.limits.orders_per_minute * share:
                raise RateLimitedError(f"{per_minute} orders this minute", retry_after_s=(minute + 1) * 60 - now)

    async def after(self, status: int, headers: Mapping[str, str]) -> None:
        """Record what a reply said about the budgets (the exchange's counts are the truth)."""
        now = self._wall()
        minute, ten_s = int(now // 60), int(now // 10)
        headers = {name.lower(): value for name, value in headers.items()}
        weight = _count(headers, "x-mbx-used-weight-1m")
        if weight is not None:
            await self._count(self.ip_gate, {"minute": minute}, "weight", weight)
        orders_10s = _count(headers, "x-mbx-order-count-10s")
        if orders_10s is not None:
            await self._count(self.key_gate, {"ten_s": ten_s}, "orders_10s", orders_10s)
        orders_1m = _count(headers, "x-mbx-order-count-1m")
        if orders_1m is not None:
            await self._count(self.key_gate, {"minute": minute}, "orders_1m", orders_1m)
        if status in (418, 429):
            retry_after = _count(headers, "retry-after") or 1
            field = "banned_until" if status == 418 else "resume_at"
            await self.db.exchange_gates.update_one({"gate_id": self.ip_gate},
                                                    {"$max": {field: now + retry_after}}, upsert=True)

    async def _count(self, gate_id: str, window: dict[str, int], field: str, value: int) -> None:
        """Keep the largest count the exchange reported in the current window (replies arrive out of order)."""
        ((window_field, window_value),) = window.items()
        moved = await self.db.exchange_gates.update_one(
            {"gate_id": gate_id, window_field: {"$ne": window_value}},
            {"$set": {window_field: window_value, field: value}})
        if moved.matched_count:
            return
        with contextlib.suppress(DuplicateKeyError):  # another process created the gate meanwhile
            await self.db.exchange_gates.update_one({"gate_id": gate_id, window_field: window_value},
                                                    {"$max": {field: value}}, upsert=True)


def _count(headers: Mapping[str, str], name: str) -> int | None:
    value = headers.get(name)
    return int(value) if value is not None and value.strip().isdigit() else None
