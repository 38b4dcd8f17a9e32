"""What Grok costs: every call that reported token usage is logged once (``ai_usage``, keyed by the
call's attempt), and only a first log adds to the day's spend of its user and of everyone
(``ai_spend``), so a retried activity never counts a call twice. Costs are integer nano-dollars.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

GLOBAL = "global"


def user_scope(user_id: str) -> str:
    return f"user:{user_id}"


def day_of(now: datetime) -> str:
    return now.strftime("%Y-%m-%d")


@dataclass(frozen=True)
class CallUsage:
    call_id: str
    user_id: str
    model: str
    purpose: str
    outcome: str  # answered | invalid_answer
    prompt_tokens: int
    completion_tokens: int
    cost_nano_usd: int


class Spend:
    def __init__(self, db: AsyncDatabase) -> None:
        self.db = db

    async def spent_nano_usd(self, scope: str, day: str) -> int:
        doc = await self.db.ai_spend.find_one({"scope": scope, "day": day}, {"nano_usd": 1})
        return int(doc["nano_usd"]) if doc else 0

    async def record(self, usage: CallUsage, now: datetime) -> None:
        day = day_of(now)
        try:
            await self.db.ai_usage.insert_one({
                "call_id": usage.call_id, "user_id": usage.user_id, "model": usage.model, "purpose": usage.purpose,
                "outcome": usage.outcome, "prompt_tokens": usage.prompt_tokens,
                "completion_tokens": usage.completion_tokens, "cost_nano_usd": usage.cost_nano_usd, "day": day,
                "created_at": now,
            })
        except DuplicateKeyError:
            return  # this attempt was booked before its activity was retried
        change = {"$inc": {"nano_usd": usage.cost_nano_usd, "calls": 1, "prompt_tokens": usage.prompt_tokens,
                           "completion_tokens": usage.completion_tokens,
                           "invalid_answers": int(usage.outcome != "answered")},
                  "$setOnInsert": {"created_at": now}}
        for scope in (user_scope(usage.user_id), GLOBAL):
            try:
                await self.db.ai_spend.update_one({"scope": scope, "day": day}, change, upsert=True)
            except DuplicateKeyError:  # the day's first two calls raced to create it: it exists now
                await self.db.ai_spend.update_one({"scope": scope, "day": day}, change)

    async def day(self, scope: str, day: str) -> dict[str, Any]:
        doc = await self.db.ai_spend.find_one({"scope": scope, "day": day}, {"_id": 0}) or {}
        return {"nano_usd": int(doc.get("nano_usd", 0)), "calls": int(doc.get("calls", 0)),
                "prompt_tokens": int(doc.get("prompt_tokens", 0)),
                "completion_tokens": int(doc.get("completion_tokens", 0)),
                "invalid_answers": int(doc.get("invalid_answers", 0))}
