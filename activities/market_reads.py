"""Activities that workflows use to read market data and manage their feed subscriptions. Each call
waits for MongoDB a bounded time (``activities.db.bounded``), so an outage fails it quickly."""

from __future__ import annotations

from pymongo.asynchronous.database import AsyncDatabase
from temporalio import activity

from activities import market_store
from activities.db import bounded
from core.contracts import CandleClosed, FeedSubscription, ReadCandlesInput, ReadCandlesResult
from trading.candle import INTERVAL_MS

MAX_READ = 5000


class MarketReadActivities:
    def __init__(self, db: AsyncDatabase) -> None:
        self.db = db

    @activity.defn
    async def read_market_candles(self, request: ReadCandlesInput) -> ReadCandlesResult:
        """Stored candles with open time in [start, end], oldest first (fills a receiver's gap)."""
        if request.interval not in INTERVAL_MS:
            raise ValueError(f"unknown interval {request.interval!r}")
        with bounded():
            candles = await market_store.read_candles(self.db, request.symbol, request.interval,
                                                      start=request.start, end=request.end, limit=MAX_READ,
                                                      newest=False)
        source = "market_data"
        return ReadCandlesResult(tuple(
            CandleClosed(source, c.symbol, request.interval, c.open_time, c.close_time, c.open, c.high, c.low,
                         c.close, c.volume)
            for c in candles
        ))

    @activity.defn
    async def subscribe_feed(self, sub: FeedSubscription) -> bool:
        with bounded():
            return await market_store.subscribe(self.db, sub)

    @activity.defn
    async def unsubscribe_feed(self, sub: FeedSubscription) -> bool:
        with bounded():
            return await market_store.unsubscribe(self.db, sub)
