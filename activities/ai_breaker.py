"""Grok's circuit breaker, one per model, in MongoDB (``ai_breakers``) so every worker shares it and
it outlives restarts.

closed → (``failures_to_open`` failed calls in a row) → open → (``cooldown_s`` later, the first
caller claims the one trial call) → half_open → closed on success, open again on failure. A trial
whose caller died is reclaimed once ``trial_s`` passed. Only the transitions are atomic documents
updates; counting a failure is one ``$inc``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from pymongo import ReturnDocument
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

CLOSED, OPEN, HALF_OPEN = "closed", "open", "half_open"


@dataclass(frozen=True)
class BreakerVerdict:
    allowed: bool
    trial: bool = False  # this call is the half-open trial
    detail: str | None = None


class CircuitBreaker:
    def __init__(self, db: AsyncDatabase, failures_to_open: int, cooldown_s: float, trial_s: float) -> None:
        self.db = db
        self.failures_to_open = failures_to_open
        self.cooldown = timedelta(seconds=cooldown_s)
        self.trial = timedelta(seconds=trial_s)

    async def state(self, model: str) -> dict[str, Any] | None:
        return await self.db.ai_breakers.find_one({"model": model}, {"_id": 0})

    async def check(self, model: str, now: datetime) -> BreakerVerdict:
        doc = await self.state(model)
        if doc is None or doc["state"] == CLOSED:
            return BreakerVerdict(True)
        if doc["state"] == OPEN and now < doc["retry_at"]:
            return BreakerVerdict(False, detail=f"open after {doc['failures']} failures; next trial at "
                                                f"{doc['retry_at'].isoformat()}")
        if doc["state"] == HALF_OPEN and now < doc["retry_at"]:
            return BreakerVerdict(False, detail="half-open: a trial call is in flight")
        # Cooled down (or a trial's caller vanished): one caller wins the trial.
        claimed = await self.db.ai_breakers.find_one_and_update(
            {"model": model, "state": doc["state"], "retry_at": doc["retry_at"]},
            {"$set": {"state": HALF_OPEN, "retry_at": now + self.trial, "changed_at": now}},
            return_document=ReturnDocument.AFTER)
        if claimed is None:
            return BreakerVerdict(False, detail="half-open: another worker makes the trial call")
        return BreakerVerdict(True, trial=True)

    async def succeeded(self, model: str, now: datetime) -> None:
        await self.db.ai_breakers.update_one(
            {"model": model, "$or": [{"state": {"$ne": CLOSED}}, {"failures": {"$ne": 0}}]},
            {"$set": {"state": CLOSED, "failures": 0, "retry_at": None, "changed_at": now, "last_error": None}})

    async def failed(self, model: str, now: datetime, error: str) -> None:
        try:
            doc = await self.db.ai_breakers.find_one_and_update(
                {"model": model},
                {"$inc": {"failures": 1}, "$set": {"last_error": error[:300], "last_failure_at": now},
                 "$setOnInsert": {"state": CLOSED, "retry_at": None, "changed_at": now}},
                upsert=True, return_document=ReturnDocument.AFTER)
        except DuplicateKeyError:  # two first failures raced on the upsert: count again on the doc
            doc = await self.db.ai_breakers.find_one_and_update(
                {"model": model}, {"$inc": {"failures": 1}, "$set": {"last_error": error[:300]}},
                return_document=ReturnDocument.AFTER)
        assert doc is not None
        if doc["state"] == HALF_OPEN or (doc["state"] == CLOSED and doc["failures"] >= self.failures_to_open):
            await self.db.ai_breakers.update_one(
                {"model": model, "state": doc["state"]},
                {"$set": {"state": OPEN, "retry_at": now + self.cooldown, "changed_at": now}})
