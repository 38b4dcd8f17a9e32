"""The collections, indexes and TTLs of DESIGN §5, created idempotently on a real SecantusDB."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest
from pymongo.errors import DuplicateKeyError

from activities.db import COLLECTIONS, DAY_S, ensure_schema

SEED_COLLECTIONS = {
    "users", "paper_trading_accounts", "paper_trading_trades", "paper_trading_settings", "trades", "positions",
    "strategy_configs", "market_data", "portfolio_history", "ai_analysis_results", "ai_signals",
    "performance_metrics", "audit_logs", "monitoring_alerts", "risk_metrics", "system_config", "sessions",
    "notifications", "api_keys", "training_jobs", "backtest_results",
}


async def test_creates_every_collection_of_the_design(mongo_client, db_name):
    db = mongo_client[db_name]
    created = await ensure_schema(db)
    names = set(await db.list_collection_names())
    assert SEED_COLLECTIONS <= names, SEED_COLLECTIONS - names
    assert {"events", "feed_subscriptions", "market_prices"} <= names
    assert set(created) == names
    assert len(SEED_COLLECTIONS) == 21


async def test_second_and_concurrent_runs_change_nothing(mongo_client, db_name):
    db = mongo_client[db_name]
    await ensure_schema(db)
    names = await db.list_collection_names()
    before = {c: sorted([i["name"] async for i in await db[c].list_indexes()]) for c in names}
    results = await asyncio.gather(ensure_schema(db), ensure_schema(db))
    assert results == [[], []]
    after = {c: sorted([i["name"] async for i in await db[c].list_indexes()]) for c in await db.list_collection_names()}
    assert after == before


@pytest.mark.parametrize(
    ("collection", "field", "days"),
    [("market_data", "stored_at", 90), ("ai_analysis_results", "created_at", 30), ("audit_logs", "at", 180),
     ("notifications", "created_at", 7)],
)
async def test_ttl_indexes_run_on_wall_clock_fields(mongo_client, db_name, collection, field, days):
    db = mongo_client[db_name]
    await ensure_schema(db)
    indexes = {i["name"]: i async for i in await db[collection].list_indexes()}
    ttl = indexes[f"{field}_ttl"]
    assert ttl["expireAfterSeconds"] == days * DAY_S
    assert list(ttl["key"]) == [field]


async def test_natural_keys_reject_a_second_write(mongo_client, db_name):
    db = mongo_client[db_name]
    await ensure_schema(db)
    candle = {"symbol": "BTCUSDT", "interval": "5m", "open_time": 1, "close": 1.0, "stored_at": datetime.now(UTC)}
    await db.market_data.insert_one(dict(candle))
    with pytest.raises(DuplicateKeyError):
        await db.market_data.insert_one(dict(candle))
    await db.users.insert_one({"user_id": "u1", "email": "a@example.com"})
    with pytest.raises(DuplicateKeyError):
        await db.users.insert_one({"user_id": "u2", "email": "a@example.com"})
    assert await db.market_data.count_documents({}) == 1
    assert await db.users.count_documents({}) == 1


def test_every_collection_has_a_natural_unique_key():
    for spec in COLLECTIONS:
        assert spec.unique, f"{spec.name} has no unique key: a retried activity could write twice"
