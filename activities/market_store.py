"""MongoDB reads and writes of market data: closed candles, latest prices, feed subscriptions.

Candles are keyed by (symbol, interval, open_time): a retried write changes nothing. ``stored_at``
is wall time and drives the 90-day TTL; candle times are market time and never expire anything.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime

from pymongo import ASCENDING, DESCENDING, UpdateOne
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from core.contracts import FeedSubscription
from trading.candle import INTERVAL_MS, Candle


def candle_doc(candle: Candle, interval: str, source: str, stored_at: datetime) -> dict:
    return {
        "symbol": candle.symbol,
        "interval": interval,
        "open_time": candle.open_time,
        "close_time": candle.close_time,
        "open": candle.open,
        "high": candle.high,
        "low": candle.low,
        "close": candle.close,
        "volume": candle.volume,
        "source": source,
        "stored_at": stored_at,
    }


def doc_candle(doc: dict) -> Candle:
    return Candle(doc["open_time"], doc["open"], doc["high"], doc["low"], doc["close"], doc["volume"],
                  INTERVAL_MS[doc["interval"]], doc["symbol"])


async def store_candles(db: AsyncDatabase, candles: Sequence[Candle], interval: str, source: str) -> int:
    """Insert closed candles that are not stored yet; return how many were new."""
    if not candles:
        return 0
    now = datetime.now(UTC)
    ops = [
        UpdateOne(
            {"symbol": c.symbol, "interval": interval, "open_time": c.open_time},
            {"$setOnInsert": candle_doc(c, interval, source, now)},
            upsert=True,
        )
        for c in candles
    ]
    result = await db.market_data.bulk_write(ops, ordered=True)
    return result.upserted_count


async def last_open_time(db: AsyncDatabase, symbol: str, interval: str) -> int | None:
    doc = await db.market_data.find_one(
        {"symbol": symbol, "interval": interval}, sort=[("open_time", DESCENDING)], projection={"open_time": 1}
    )
    return doc["open_time"] if doc else None


async def read_candles(
    db: AsyncDatabase, symbol: str, interval: str, *, start: int | None = None, end: int | None = None,
    limit: int = 500, newest: bool = True,
) -> list[Candle]:
    """Stored candles with open_time in [start, end], oldest first. ``newest`` picks the last
    ``limit`` of the range rather than the first."""
    query: dict = {"symbol": symbol, "interval": interval}
    span: dict = {}
    if start is not None:
        span["$gte"] = start
    if end is not None:
        span["$lte"] = end
    if span:
        query["open_time"] = span
    cursor = db.market_data.find(query, projection={"_id": 0}).sort(
        "open_time", DESCENDING if newest else ASCENDING
    ).limit(limit)
    docs = [d async for d in cursor]
    if newest:
        docs.reverse()
    return [doc_candle(d) for d in docs]


async def stored_streams(db: AsyncDatabase) -> list[tuple[str, str]]:
    cursor = await db.market_data.aggregate([{"$group": {"_id": {"s": "$symbol", "i": "$interval"}}}])
    rows = await cursor.to_list()
    return sorted((r["_id"]["s"], r["_id"]["i"]) for r in rows)


async def set_latest_price(db: AsyncDatabase, source: str, symbol: str, price: float, market_time: int) -> None:
    """Record the latest price; never moves back in market time, so a late retry changes nothing."""
    try:
        await db.market_prices.update_one(
            {"source": source, "symbol": symbol, "time": {"$lt": market_time}},
            {"$set": {"price": price, "time": market_time, "updated_at": datetime.now(UTC)}},
            upsert=True,
        )
    except DuplicateKeyError:
        pass  # a newer price is already stored: the filter missed it and the upsert hit the unique key


async def latest_prices(db: AsyncDatabase, source: str) -> dict[str, dict]:
    cursor = db.market_prices.find({"source": source}, projection={"_id": 0})
    return {d["symbol"]: d async for d in cursor}


async def subscribe(db: AsyncDatabase, sub: FeedSubscription) -> bool:
    result = await db.feed_subscriptions.update_one(
        {"source": sub.source, "symbol": sub.symbol, "interval": sub.interval, "workflow_id": sub.workflow_id},
        {"$set": {"analysis_settings": sub.analysis_settings}, "$setOnInsert": {"created_at": datetime.now(UTC)}},
        upsert=True,
    )
    return result.upserted_id is not None


async def unsubscribe(db: AsyncDatabase, sub: FeedSubscription) -> bool:
    result = await db.feed_subscriptions.delete_one(
        {"source": sub.source, "symbol": sub.symbol, "interval": sub.interval, "workflow_id": sub.workflow_id}
    )
    return result.deleted_count == 1


async def subscriptions(db: AsyncDatabase, source: str) -> list[FeedSubscription]:
    cursor = db.feed_subscriptions.find({"source": source}, projection={"_id": 0, "created_at": 0})
    return [FeedSubscription(**d) async for d in cursor]


def analysis_settings_by_stream(subs: Iterable[FeedSubscription]) -> dict[tuple[str, str], dict[str, dict]]:
    """Per stream, the analysis settings of each subscriber that asked for its analysis."""
    out: dict[tuple[str, str], dict[str, dict]] = {}
    for sub in subs:
        if sub.analysis_settings is not None:
            out.setdefault((sub.symbol, sub.interval), {})[sub.workflow_id] = sub.analysis_settings
    return out


def group_by_stream(subs: Iterable[FeedSubscription]) -> dict[tuple[str, str], list[str]]:
    out: dict[tuple[str, str], list[str]] = {}
    for sub in subs:
        out.setdefault((sub.symbol, sub.interval), []).append(sub.workflow_id)
    return out
