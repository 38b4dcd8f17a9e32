"""The market feed activity: exchange → ``market_data`` → events and ``candle_closed`` signals.

One long-running, heartbeating activity per feed source. For every followed (symbol, interval):

1. closed candles come from the kline stream; after every (re)connection and whenever a candle
   arrives with a gap before it, the missing ones are fetched by REST, so the stored series has no
   hole the exchange does not have;
2. each closed candle is stored idempotently, then published (ChartUpdate, MarketData) and
   signalled to every subscribed workflow, in open-time order;
3. a cursor (the last candle fully delivered) is saved after delivery. A retried activity resumes
   from the cursor, so delivery is at-least-once and receivers deduplicate by open time.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal

from pymongo.asynchronous.database import AsyncDatabase
from temporalio import activity
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from activities import events, market_store
from activities.binance import (
    BanAlert,
    BinanceRestClient,
    BinanceStreamClient,
    ClosedKline,
    StreamConnected,
    StreamEvent,
    kline_stream,
)
from activities.exchange_errors import PermanentExchangeError
from trading.candle import INTERVAL_MS, Candle
from workflows.contracts import (
    SIGNAL_CANDLE_CLOSED,
    CandleClosed,
    FeedSubscription,
    MarketFeedInput,
    MarketFeedResult,
)

log = logging.getLogger("durabot.feed")

# How many candles a stream fetches on first sight when nothing is stored yet.
INITIAL_BACKFILL = 500
SUBSCRIPTION_REFRESH_S = 2.0
SIGNAL_CONCURRENCY = 64
DAY_MS = 86_400_000


@dataclass
class FeedConfig:
    """What the feed activity needs from settings (the worker builds it)."""

    rest_url: str
    futures_url: str
    ws_url: str
    streams: tuple[tuple[str, str], ...]
    market: Literal["spot", "usdm"] = "spot"


@dataclass
class StreamState:
    symbol: str
    interval: str
    cursor: int | None  # open time of the last candle fully delivered
    day: deque[Candle] = field(default_factory=deque)  # the last 24 h of market time, for MarketData

    @property
    def step(self) -> int:
        return INTERVAL_MS[self.interval]


def cursor_key(source: str, symbol: str, interval: str) -> str:
    return f"feed_cursor:{source}:{symbol}:{interval}"


class MarketFeedActivities:
    def __init__(self, db: AsyncDatabase, temporal: Client, config: FeedConfig) -> None:
        self.db = db
        self.temporal = temporal
        self.config = config

    @activity.defn
    async def run_market_feed(self, feed: MarketFeedInput) -> MarketFeedResult:
        run = FeedRun(self, feed)
        return await run.run()


class FeedRun:
    def __init__(self, owner: MarketFeedActivities, feed: MarketFeedInput) -> None:
        self.db = owner.db
        self.temporal = owner.temporal
        self.config = owner.config
        self.feed = feed
        self.source = feed.source
        self.states: dict[tuple[str, str], StreamState] = {}
        self.subscribers: dict[tuple[str, str], list[str]] = {}
        self.stored = 0
        self.signalled = 0
        self.resumed_from: dict[str, int] = {}
        self.rest = BinanceRestClient(owner.config.rest_url, futures_base_url=owner.config.futures_url,
                                      on_ban=self._alert_ban)
        self.stream = BinanceStreamClient(owner.config.ws_url)
        self._signal_gate = asyncio.Semaphore(SIGNAL_CONCURRENCY)

    async def run(self) -> MarketFeedResult:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.feed.run_seconds
        await self._refresh_subscriptions()
        refresh_at = loop.time() + SUBSCRIPTION_REFRESH_S
        # A small queue: when we fall behind, the stream stops reading and the exchange's socket
        # back-pressure paces it (the sim at speed `max` relies on that).
        inbox: asyncio.Queue[StreamEvent] = asyncio.Queue(maxsize=16)
        reader = asyncio.create_task(self._read_stream(inbox))
        try:
            while loop.time() < deadline:
                activity.heartbeat({key: st.cursor for key, st in self._cursor_view().items()})
                if reader.done():
                    reader.result()  # the stream client never ends by itself: surface its failure
                try:
                    event = await asyncio.wait_for(inbox.get(), timeout=max(0.01, min(1.0, deadline - loop.time())))
                except TimeoutError:
                    event = None
                if isinstance(event, StreamConnected):
                    await self._catch_up_all()
                elif isinstance(event, ClosedKline):
                    await self._on_closed(event)
                if loop.time() >= refresh_at:
                    await self._refresh_subscriptions()
                    refresh_at = loop.time() + SUBSCRIPTION_REFRESH_S
        finally:
            reader.cancel()
            await self.stream.close()
            await asyncio.gather(reader, return_exceptions=True)
            await self.rest.aclose()
        return MarketFeedResult(candles_stored=self.stored, candles_signalled=self.signalled,
                                resumed_from=self.resumed_from)

    async def _read_stream(self, inbox: asyncio.Queue[StreamEvent]) -> None:
        async for event in self.stream.events():
            await inbox.put(event)

    def _cursor_view(self) -> dict[str, StreamState]:
        return {f"{s}@{i}": st for (s, i), st in self.states.items()}

    # -- streams and subscriptions -----------------------------------------------------------------
    async def _refresh_subscriptions(self) -> None:
        subs = await market_store.subscriptions(self.db, self.source)
        self.subscribers = market_store.group_by_stream(subs)
        wanted = set(self.config.streams) | set(self.subscribers)
        new = [key for key in sorted(wanted) if key not in self.states]
        for symbol, interval in new:
            doc = await self.db.system_config.find_one({"key": cursor_key(self.source, symbol, interval)})
            cursor = doc["value"] if doc else None
            self.states[(symbol, interval)] = StreamState(symbol, interval, cursor)
            if cursor is not None:
                self.resumed_from[f"{symbol}@{interval}"] = cursor
        if new:
            await self.stream.subscribe(kline_stream(s, i) for s, i in new)
            if self.stream.connections_made:
                for key in new:
                    await self._catch_up(self.states[key])

    async def _catch_up_all(self) -> None:
        for state in list(self.states.values()):
            await self._catch_up(state)

    async def _catch_up(self, state: StreamState, until: int | None = None) -> None:
        """Fetch what the exchange has after our last stored candle, then deliver past the cursor."""
        last = await market_store.last_open_time(self.db, state.symbol, state.interval)
        try:
            if last is None:
                fetched = await self.rest.klines(state.symbol, state.interval, limit=INITIAL_BACKFILL,
                                                 market=self.config.market)
            else:
                fetched = await self.rest.klines(state.symbol, state.interval, start_ms=last + state.step,
                                                 end_ms=until, market=self.config.market)
        except PermanentExchangeError as exc:
            log.error("feed cannot follow stream", extra={"fields": {
                "stream": f"{state.symbol}@{state.interval}", "error": str(exc)}})
            return
        self.stored += await market_store.store_candles(self.db, fetched, state.interval, self.source)
        await self._deliver_stored(state)

    async def _on_closed(self, event: ClosedKline) -> None:
        state = self.states.get((event.symbol, event.interval))
        if state is None:
            return
        candle = event.candle
        if state.cursor is not None and candle.open_time <= state.cursor:
            return  # already delivered (a replayed or duplicated kline)
        last = await market_store.last_open_time(self.db, state.symbol, state.interval)
        if last is not None and candle.open_time > last + state.step:
            # A gap: the REST catch-up fetches the hole (it stops before this candle's successor).
            await self._catch_up(state, until=candle.open_time - state.step)
        self.stored += await market_store.store_candles(self.db, [candle], state.interval, self.source)
        await self._deliver_stored(state)

    async def _deliver_stored(self, state: StreamState) -> None:
        if state.cursor is None:
            # First run for this stream: history is stored for charts, delivery starts at its end.
            last = await market_store.last_open_time(self.db, state.symbol, state.interval)
            if last is None:
                return
            pending = await market_store.read_candles(self.db, state.symbol, state.interval, end=last, limit=1)
        else:
            pending = await market_store.read_candles(self.db, state.symbol, state.interval,
                                                      start=state.cursor + 1, limit=1000, newest=False)
        for candle in pending:
            await self._deliver(state, candle)

    async def _deliver(self, state: StreamState, candle: Candle) -> None:
        state.day.append(candle)
        while state.day and state.day[0].open_time <= candle.open_time - DAY_MS:
            state.day.popleft()
        first = state.day[0]
        stream_key = f"{self.source}:{state.symbol}:{state.interval}:{candle.open_time}"
        candle_json = {"open_time": candle.open_time, "close_time": candle.close_time, "open": candle.open,
                       "high": candle.high, "low": candle.low, "close": candle.close, "volume": candle.volume}
        await events.publish(self.db, [
            events.event_doc(events.CHART_UPDATE, stream_key, {
                "symbol": state.symbol, "timeframe": state.interval, "candle": candle_json,
                "latest_price": candle.close}, symbol=state.symbol),
            events.event_doc(events.MARKET_DATA, stream_key, {
                "symbol": state.symbol, "price": candle.close, "time": candle.close_time,
                "price_change_24h": candle.close - first.open,
                "price_change_pct_24h": 100 * (candle.close - first.open) / first.open,
                "volume_24h": sum(c.volume for c in state.day)}, symbol=state.symbol),
        ])
        await market_store.set_latest_price(self.db, self.source, state.symbol, candle.close, candle.close_time)
        targets = self.subscribers.get((state.symbol, state.interval), [])
        if targets:
            message = CandleClosed(self.source, state.symbol, state.interval, candle.open_time, candle.close_time,
                                   candle.open, candle.high, candle.low, candle.close, candle.volume)
            await asyncio.gather(*(self._signal(wid, message, state) for wid in targets))
        state.cursor = candle.open_time
        await self.db.system_config.update_one(
            {"key": cursor_key(self.source, state.symbol, state.interval)},
            {"$set": {"value": candle.open_time, "updated_at": datetime.now(UTC)}}, upsert=True)

    async def _signal(self, workflow_id: str, message: CandleClosed, state: StreamState) -> None:
        async with self._signal_gate:
            try:
                await self.temporal.get_workflow_handle(workflow_id).signal(SIGNAL_CANDLE_CLOSED, message)
                self.signalled += 1
            except RPCError as exc:
                if exc.status != RPCStatusCode.NOT_FOUND:
                    raise
                # The subscriber is gone for good (completed or terminated): stop signalling it.
                await market_store.unsubscribe(self.db, FeedSubscription(
                    self.source, state.symbol, state.interval, workflow_id))
                log.info("dropped subscription of a closed workflow", extra={"fields": {"workflow_id": workflow_id}})

    async def _alert_ban(self, alert: BanAlert) -> None:
        await self.db.monitoring_alerts.update_one(
            {"alert_id": f"exchange-ban:{alert.until_wall_ms}"},
            {"$setOnInsert": {"kind": "exchange_ip_ban", "severity": "critical", "message": alert.message,
                              "code": alert.code, "retry_after_s": alert.retry_after_s,
                              "created_at": datetime.now(UTC)}},
            upsert=True)
