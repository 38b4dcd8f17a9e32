"""Reads of a session's closed trades in ``paper_trading_trades``: the API's pages, and the config
rules over them (the suggestions page and self-tuning's auto-apply)."""

from __future__ import annotations

from typing import Any

from pymongo.asynchronous.database import AsyncDatabase

from trading.config_rules import RECENT_TRADES, Suggestion, suggest


async def closed_trades(db: AsyncDatabase, session_id: str, limit: int, offset: int,
                        generation: int | None = None) -> list[dict[str, Any]]:
    """Newest first; of one account generation when given."""
    query: dict[str, Any] = {"session_id": session_id, "status": "closed"}
    if generation is not None:
        query["generation"] = generation
    cursor = db.paper_trading_trades.find(query, {"_id": 0}).sort([("exit_time", -1), ("trade_id", -1)])
    return await cursor.skip(offset).limit(limit).to_list()


async def rule_suggestions(db: AsyncDatabase, session_id: str, generation: int, metrics: dict[str, Any] | None,
                           engine: dict[str, Any], analysis: dict[str, Any]) -> tuple[list[Suggestion], int]:
    """The config rules over an account's metrics and last closed trades; and how many trades they saw."""
    rows = await closed_trades(db, session_id, RECENT_TRADES, 0, generation)
    return suggest(metrics or {}, [r["trade"] for r in rows], engine, analysis), len(rows)
