"""MongoDB reads of one paper session, always scoped by the caller's session ID."""

from __future__ import annotations

from typing import Any

from pymongo.asynchronous.database import AsyncDatabase

from trading.analysis_settings import AnalysisSettings
from trading.settings import EngineSettings

STRATEGY_KEYS = ("enabled", "min_agree", "weights", "min_vote_weight", "ai_mode", "ai_weight", "ai_min_confidence",
                 "ai_deadline_s")
INDICATOR_KEYS = ("rsi", "macd", "bollinger", "volume", "stochastic", "atr_length")
ANALYSIS_FIELDS = {"_id": 0, "analysis_key": 1, "symbol": 1, "interval": 1, "open_time": 1, "warming_up": 1,
                   "direction": 1, "confidence": 1, "reason": 1, "verdicts": 1, "indicators": 1}


async def settings_record(db: AsyncDatabase, session_id: str) -> dict[str, Any]:
    """The session's settings as last saved; defaults while it has saved none."""
    doc = await db.paper_trading_settings.find_one({"session_id": session_id}, {"_id": 0})
    if doc is None:
        return {"status": "new", "version": None, "source": "", "symbols": [], "interval": "",
                "engine_settings": EngineSettings().to_dict(), "analysis_settings": AnalysisSettings().to_dict(),
                "analysis_settings_hash": AnalysisSettings().settings_hash(), "generation": 0}
    return doc


def strategy_part(analysis: dict[str, Any]) -> dict[str, Any]:
    return {k: analysis.get(k) for k in STRATEGY_KEYS}


def indicator_part(analysis: dict[str, Any]) -> dict[str, Any]:
    return {k: analysis.get(k) for k in INDICATOR_KEYS}


def analysis_patch(strategy: dict[str, Any] | None, indicators: dict[str, Any] | None) -> dict[str, Any] | None:
    """One analysis-settings patch of the strategy and indicator sections (each indicator's
    parameters merge into its current ones where the patch is applied)."""
    return {**(strategy or {}), **(indicators or {})} or None


async def closed_trade(db: AsyncDatabase, session_id: str, trade_id: int) -> dict[str, Any] | None:
    return await db.paper_trading_trades.find_one(
        {"session_id": session_id, "trade_id": trade_id, "status": "closed"}, {"_id": 0})


async def analyses(db: AsyncDatabase, symbols: list[str], interval: str, settings_hash: str, limit: int,
                   before: int | None) -> list[dict[str, Any]]:
    """Stored analyses (signals) of the session's streams under its settings, newest first."""
    if not symbols or not interval:
        return []
    query: dict[str, Any] = {"symbol": {"$in": symbols}, "interval": interval, "settings_hash": settings_hash,
                             "warming_up": False}
    if before is not None:
        query["open_time"] = {"$lt": before}
    cursor = db.ai_analysis_results.find(query, ANALYSIS_FIELDS).sort([("open_time", -1), ("symbol", 1)])
    return await cursor.limit(limit).to_list()


async def latest_analyses(db: AsyncDatabase, symbols: list[str], interval: str,
                          settings_hash: str) -> list[dict[str, Any]]:
    found = []
    for symbol in symbols:
        doc = await db.ai_analysis_results.find_one(
            {"symbol": symbol, "interval": interval, "settings_hash": settings_hash}, ANALYSIS_FIELDS,
            sort=[("open_time", -1)])
        if doc is not None:
            found.append(doc)
    return found


async def decisions(db: AsyncDatabase, user_id: str, session_id: str, limit: int) -> list[dict[str, Any]]:
    """The session's recent ``AISignalReceived`` events (what it made of each signal), newest first."""
    cursor = db.events.find({"user_id": user_id, "type": "AISignalReceived", "data.session_id": session_id},
                            {"_id": 0, "data": 1}).sort([("created_at", -1)])
    return [d["data"] for d in await cursor.limit(limit).to_list()]


def downsample(points: list[dict[str, Any]], most: int) -> list[dict[str, Any]]:
    """At most ``most`` points spread evenly over ``points``, the first and the last always kept."""
    if len(points) <= most:
        return points
    step = (len(points) - 1) / (most - 1)
    return [points[round(i * step)] for i in range(most)]


async def equity_history(db: AsyncDatabase, session_id: str, most: int, since: int | None,
                         generation: int | None) -> list[dict[str, Any]]:
    """The session's committed equity, oldest first, downsampled to at most ``most`` points."""
    query: dict[str, Any] = {"session_id": session_id}
    if since is not None:
        query["time"] = {"$gte": since}
    if generation is not None:
        query["generation"] = generation
    fields = {"_id": 0, "time": 1, "equity": 1, "cash": 1, "unrealised": 1, "generation": 1}
    rows = await db.portfolio_history.find(query, fields).sort([("time", 1)]).to_list()
    return downsample(rows, most)
