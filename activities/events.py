"""The event bus: workers insert into ``events``; the gateway follows a change stream and fans out.

Each event has a natural ``event_key`` (what happened, to what, at which market time), so a retried
activity publishes nothing twice. ``created_at`` is wall time and drives the TTL.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError, DuplicateKeyError

from core.event_types import (
    ACCOUNT_TYPES,
    AI_SIGNAL_RECEIVED,
    BOT_STATUS_UPDATE,
    CHART_UPDATE,
    MARKET_DATA,
    POSITION_UPDATE,
    PUBLIC_TYPES,
    TRADE_EXECUTED,
    TUNING_UPDATE,
)

__all__ = ["ACCOUNT_TYPES", "AI_SIGNAL_RECEIVED", "BOT_STATUS_UPDATE", "CHART_UPDATE", "MARKET_DATA",
           "POSITION_UPDATE", "PUBLIC_TYPES", "TRADE_EXECUTED", "TUNING_UPDATE", "event_doc", "publish"]


def event_doc(event_type: str, key: str, data: dict[str, Any], *, symbol: str | None = None,
              user_id: str | None = None) -> dict[str, Any]:
    if event_type not in PUBLIC_TYPES | ACCOUNT_TYPES:
        raise ValueError(f"unknown event type {event_type!r}")
    if event_type in ACCOUNT_TYPES and not user_id:
        raise ValueError(f"{event_type} is an account event and needs a user_id")
    return {"event_key": f"{event_type}:{key}", "type": event_type, "symbol": symbol, "user_id": user_id,
            "data": data, "created_at": datetime.now(UTC)}


async def publish(db: AsyncDatabase, docs: list[dict[str, Any]]) -> int:
    """Insert events, skipping any already published; return how many were new."""
    if not docs:
        return 0
    if len(docs) == 1:
        try:
            await db.events.insert_one(docs[0])
            return 1
        except DuplicateKeyError:
            return 0
    try:
        result = await db.events.insert_many(docs, ordered=False)
        return len(result.inserted_ids)
    except BulkWriteError as err:
        if any(e.get("code") != 11000 for e in err.details.get("writeErrors", [])):
            raise
        return err.details.get("nInserted", 0)
