"""The market feed activity: exchange → ``market_data`` → events and ``candle_closed`` signals.

One long-running, heartbeating activity per feed source. For every followed (symbol, interval):

1. closed candles come from the kline stream; after every (re)connection and whenever a candle
   arrives with a gap before it, the missing ones are fetched by REST, so the stored series has no
   hole the exchange does not have;
2. each closed candle is stored idempotently, then published (ChartUpdate, MarketData) and
   signalled to every subscribed workflow, in open-time order;
3. a cursor (the last candle fully delivered) is saved after delivery. A retried activity resumes
   from the cursor, so delivery is at-least-once and receivers deduplicate by open time.

A subscriber the feed cannot signal (an error other than not-found: a signal limit reached, a
timeout) never holds the others up: its failure is counted, it is skipped for a growing pause
(``SKIP_S``, doubling up to ``MAX_SKIP_S``) and tried again after it, a ``monitoring_alerts`` entry is
raised once per episode, and the failing subscribers are listed under ``system_config`` for
``/api/health``. It misses the candles it was skipped for; its own gap filling reads them from
``market_data`` once it receives again.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import deque
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Literal

from pymongo.asynchronous.database import AsyncDatabase
from temporalio import activity
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from activities import events, market_store
from activities.binance import (
    BadDataCounter,
    BanAlert,
    BinanceRestClient,
    BinanceStreamClient,
    ClosedKline,
    StreamConnected,
    StreamEvent,
    kline_stream,
)
from activities.exchange_errors import PermanentExchangeError, RateLimitedError, TemporaryExchangeError
from activities.session_analysis import SessionAnalysisActivities
from core.contracts import (
    SIGNAL_CANDLE_CLOSED,
    AnalyzeCandleInput,
    CandleClosed,
    FeedSubscription,
    MarketFeedInput,
    MarketFeedResult,
)
from trading.candle import INTERVAL_MS, Candle

log = logging.getLogger("durabot.feed")

SUBSCRIPTION_REFRESH_S = 2.0
SIGNAL_CONCURRENCY = 64
FETCH_ATTEMPTS = 8
CURSOR_FLUSH_S = 0.5
MAX_REDELIVERY = 5000
# Candles a catch-up delivers between cursor saves.
CATCH_UP_FLUSH_EVERY = 100
DAY_MS = 86_400_000
# A signal that takes longer fails (and its subscriber is skipped for a while).
SIGNAL_TIMEOUT = timedelta(seconds=5)
SKIP_S = 5.0
MAX_SKIP_S = 300.0


@dataclass
class FeedConfig:
    """What the feed activity needs from settings (the worker builds it)."""

    rest_url: str
    futures_url: str
    ws_url: str
    streams: tuple[tuple[str, str], ...]
    market: Literal["spot", "usdm"] = "spot"
    # How many candles a stream fetches on first sight, when nothing of it is stored yet.
    initial_backfill: int = 1000


@dataclass
class StreamState:
    symbol: str
    interval: str
    cursor: int | None  # open time of the last candle fully delivered
    last_stored: int | None  # open time of the newest candle in market_data
    day: deque[Candle] = field(default_factory=deque)  # the last 24 h of market time, for MarketData

    @property
    def step(self) -> int:
        return INTERVAL_MS[self.interval]


def cursor_key(source: str, symbol: str, interval: str) -> str:
    return f"feed_cursor:{source}:{symbol}:{interval}"


def subscribers_config_key(source: str) -> str:
    """``system_config`` key of the feed's failing subscribers: workflow ID -> failures, error, since."""
    return f"feed_failing_subscribers:{source}"


@dataclass
class Failing:
    since: datetime
    failures: int
    error: str
    retry_at: float  # loop time before which the subscriber is skipped
    skip_s: float


class MarketFeedActivities:
    def __init__(self, db: AsyncDatabase, temporal: Client, config: FeedConfig,
                 analyzer: SessionAnalysisActivities | None = None) -> None:
        self.db = db
        self.temporal = temporal
        self.config = config
        # Computes the shared analysis the feed sends with each candle (None: candles only).
        self.analyzer = analyzer

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
        self.analysis_settings: dict[tuple[str, str], dict[str, dict]] = {}
        self.analyzer = owner.analyzer
        self.stored = 0
        self.signalled = 0
        self.resumed_from: dict[str, int] = {}
        # One metric for everything refused from the exchange, REST and stream alike.
        self.bad_data = BadDataCounter()
        self.rest = BinanceRestClient(owner.config.rest_url, futures_base_url=owner.config.futures_url,
                                      on_ban=self._alert_ban, bad_data=self.bad_data)
        self.stream = BinanceStreamClient(owner.config.ws_url, bad_data=self.bad_data)
        self._signal_gate = asyncio.Semaphore(SIGNAL_CONCURRENCY)
        self._dirty: set[tuple[str, str]] = set()
        self.failing: dict[str, Failing] = {}

    async def run(self) -> MarketFeedResult:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.feed.run_seconds
        await self._save_failing()  # a new attempt knows of no failing subscriber yet
        await self._refresh_subscriptions()
        refresh_at = loop.time() + SUBSCRIPTION_REFRESH_S
        flush_at = loop.time() + CURSOR_FLUSH_S
        # A small queue: when we fall behind, the stream stops reading and the exchange's socket
        # back-pressure paces it (the sim at speed `max` relies on that).
        inbox: asyncio.Queue[StreamEvent] = asyncio.Queue(maxsize=16)
        reader = asyncio.create_task(self._read_stream(inbox))
        try:
            # A worker shutting down (a deploy) hands the feed on at once, as at the run's deadline.
            while loop.time() < deadline and not activity.is_worker_shutdown():
                # Shown as the pending activity's heartbeat details in the Temporal UI.
                activity.heartbeat({"cursors": {key: st.cursor for key, st in self._cursor_view().items()},
                                    "bad_exchange_data": dict(self.bad_data.by_category)})
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
                now = loop.time()
                if now >= refresh_at:
                    await self._refresh_subscriptions()
                    refresh_at = now + SUBSCRIPTION_REFRESH_S
                if now >= flush_at:
                    await self._flush()
                    flush_at = now + CURSOR_FLUSH_S
            await self._flush()
        finally:
            reader.cancel()
            await self.stream.close()
            await asyncio.gather(reader, return_exceptions=True)
            await self.rest.aclose()
        return MarketFeedResult(candles_stored=self.stored, candles_signalled=self.signalled,
                                resumed_from=self.resumed_from, bad_exchange_data=dict(self.bad_data.by_category))

    async def _read_stream(self, inbox: asyncio.Queue[StreamEvent]) -> None:
        async for event in self.stream.events():
            await inbox.put(event)

    def _cursor_view(self) -> dict[str, StreamState]:
        return {f"{s}@{i}": st for (s, i), st in self.states.items()}

    async def _flush(self) -> None:
        """Save cursors and latest prices. Batched: a crash before a flush only means candles are
        delivered again, which receivers drop by open time."""
        for key in sorted(self._dirty):
            state = self.states[key]
            if state.cursor is None or not state.day:
                continue
            last = state.day[-1]
            await self.db.system_config.update_one(
                {"key": cursor_key(self.source, state.symbol, state.interval)},
                {"$set": {"value": state.cursor, "updated_at": datetime.now(UTC)}}, upsert=True)
            await market_store.set_latest_price(self.db, self.source, state.symbol, last.close, last.close_time)
        self._dirty.clear()

    # -- streams and subscriptions -----------------------------------------------------------------
    async def _refresh_subscriptions(self) -> None:
        subs = await market_store.subscriptions(self.db, self.source)
        self.subscribers = market_store.group_by_stream(subs)
        self.analysis_settings = market_store.analysis_settings_by_stream(subs)
        wanted = set(self.config.streams) | set(self.subscribers)
        new = [key for key in sorted(wanted) if key not in self.states]
        for symbol, interval in new:
            doc = await self.db.system_config.find_one({"key": cursor_key(self.source, symbol, interval)})
            cursor = doc["value"] if doc else None
            last = await market_store.last_open_time(self.db, symbol, interval)
            self.states[(symbol, interval)] = StreamState(symbol, interval, cursor, last)
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
        try:
            fetched = await self._fetch(state, state.last_stored, until)
        except PermanentExchangeError as exc:
            log.error("feed cannot follow stream", extra={"fields": {
                "stream": f"{state.symbol}@{state.interval}", "error": str(exc)}})
            return
        await self._store(state, fetched)
        if state.cursor is None:
            # First sight of this stream: history is stored for charts; delivery starts at its end,
            # and that start is saved at once so a retried attempt continues from it.
            newest = fetched[-1:] or await market_store.read_candles(self.db, state.symbol, state.interval, limit=1)
            if newest:
                await self._deliver(state, newest[0])
                await self._flush()
            return
        pending = [c for c in fetched if c.open_time > state.cursor]
        behind = pending[0].open_time if pending else (state.last_stored or 0) + state.step
        if behind > state.cursor + state.step and state.last_stored is not None:
            # Stored but never delivered (the previous attempt died in between): deliver from the store.
            pending = await market_store.read_candles(self.db, state.symbol, state.interval,
                                                      start=state.cursor + 1, limit=MAX_REDELIVERY, newest=False)
        for delivered, candle in enumerate(pending, 1):
            await self._deliver(state, candle)
            # A long catch-up must prove it is alive and keep its place: a retried attempt starts
            # from the last saved cursor, not from the start of the catch-up again.
            activity.heartbeat()
            if delivered % CATCH_UP_FLUSH_EVERY == 0:
                await self._flush()

    async def _fetch(self, state: StreamState, last: int | None, until: int | None) -> list[Candle]:
        """REST klines after ``last``. Rate limits are waited out here, in this activity: the
        client's gate holds every request until Retry-After has passed, and a retried activity
        would start with a fresh gate that knows nothing of the limit."""
        for attempt in range(1, FETCH_ATTEMPTS + 1):
            activity.heartbeat()
            try:
                if last is None:
                    return await self.rest.klines(state.symbol, state.interval, limit=self.config.initial_backfill,
                                                  market=self.config.market)
                return await self.rest.klines(state.symbol, state.interval, start_ms=last + state.step,
                                              end_ms=until, market=self.config.market)
            except RateLimitedError as exc:
                log.warning("exchange rate limit; waiting", extra={"fields": {"retry_after_s": exc.retry_after_s}})
            except TemporaryExchangeError as exc:
                if attempt == FETCH_ATTEMPTS:
                    raise
                log.warning("exchange error; retrying", extra={"fields": {"error": str(exc)[:200]}})
                await asyncio.sleep(min(2.0**attempt * 0.1, 5.0))
        raise TemporaryExchangeError(f"still rate limited after {FETCH_ATTEMPTS} attempts")

    async def _store(self, state: StreamState, candles: list[Candle]) -> None:
        if not candles:
            return
        self.stored += await market_store.store_candles(self.db, candles, state.interval, self.source)
        state.last_stored = max(state.last_stored or 0, candles[-1].open_time)

    async def _on_closed(self, event: ClosedKline) -> None:
        state = self.states.get((event.symbol, event.interval))
        if state is None:
            return
        candle = event.candle
        if state.cursor is not None and candle.open_time <= state.cursor:
            return  # already delivered (a replayed or duplicated kline)
        if state.last_stored is not None and candle.open_time > state.last_stored + state.step:
            # A gap: fetch the hole by REST (up to the candle before this one), delivering it first.
            await self._catch_up(state, until=candle.open_time - state.step)
        await self._store(state, [candle])
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
        now = asyncio.get_running_loop().time()
        targets = [wid for wid in self.subscribers.get((state.symbol, state.interval), [])
                   if wid not in self.failing or self.failing[wid].retry_at <= now]
        if targets:
            message = CandleClosed(self.source, state.symbol, state.interval, candle.open_time, candle.close_time,
                                   candle.open, candle.high, candle.low, candle.close, candle.volume)
            messages = await self._with_analyses(message, targets)
            await asyncio.gather(*(self._signal(wid, messages.get(wid, message), state) for wid in targets))
        state.cursor = candle.open_time
        self._dirty.add((state.symbol, state.interval))

    async def _with_analyses(self, message: CandleClosed, targets: list[str]) -> dict[str, CandleClosed]:
        """The candle with its shared analysis for each target that asked for one: computed once per
        analysis settings here, so a session decides without an analysis call of its own. A failed
        analysis only leaves the candle bare (the session then asks for it and says why it fails)."""
        wanted = self.analysis_settings.get((message.symbol, message.interval), {})
        if self.analyzer is None or not wanted:
            return {}
        by_settings: dict[str, CandleClosed] = {}
        out: dict[str, CandleClosed] = {}
        for wid in targets:
            settings = wanted.get(wid)
            if settings is None:
                continue
            text = json.dumps(settings, sort_keys=True)
            if text not in by_settings:
                request = AnalyzeCandleInput(message.symbol, message.interval, message.open_time, settings)
                try:
                    result = await self.analyzer.analysis_of(request)
                except Exception as exc:  # noqa: BLE001 (the session's own call reports the failure)
                    log.warning("no shared analysis to send with the candle", extra={"fields": {
                        "symbol": message.symbol, "open_time": message.open_time, "error": repr(exc)}})
                    by_settings[text] = message
                else:
                    by_settings[text] = replace(message, analysis=asdict(result))
            out[wid] = by_settings[text]
        return out

    async def _signal(self, workflow_id: str, message: CandleClosed, state: StreamState) -> None:
        async with self._signal_gate:
            try:
                await self.temporal.get_workflow_handle(workflow_id).signal(
                    SIGNAL_CANDLE_CLOSED, message, rpc_timeout=SIGNAL_TIMEOUT)
                self.signalled += 1
            except RPCError as exc:
                if exc.status != RPCStatusCode.NOT_FOUND:
                    await self._failed(workflow_id, f"{exc.status.name if exc.status else 'RPC'}: {exc.message}")
                    return
                # The subscriber is gone for good (completed or terminated): stop signalling it.
                await market_store.unsubscribe(self.db, FeedSubscription(
                    self.source, state.symbol, state.interval, workflow_id))
                log.info("dropped subscription of a closed workflow", extra={"fields": {"workflow_id": workflow_id}})
                return
            if workflow_id in self.failing:
                await self._recovered(workflow_id)

    async def _failed(self, workflow_id: str, error: str) -> None:
        """Count the failure, skip the subscriber for a while, alert once per episode."""
        now = asyncio.get_running_loop().time()
        known = self.failing.get(workflow_id)
        if known is None:
            known = self.failing[workflow_id] = Failing(datetime.now(UTC), 0, error, now, SKIP_S / 2)
            log.warning("a subscriber cannot be signalled; skipping it for now",
                        extra={"fields": {"workflow_id": workflow_id, "error": error[:300]}})
            await self.db.monitoring_alerts.update_one(
                {"alert_id": f"feed-subscriber:{self.source}:{workflow_id}:{known.since.isoformat()}"},
                {"$setOnInsert": {"kind": "feed_subscriber_failing", "severity": "warning", "source": self.source,
                                  "workflow_id": workflow_id, "message": f"the market feed cannot signal "
                                  f"{workflow_id}: {error}"[:500], "created_at": known.since}},
                upsert=True)
        known.failures += 1
        known.error = error[:300]
        known.skip_s = min(known.skip_s * 2, MAX_SKIP_S)
        known.retry_at = now + known.skip_s
        await self._save_failing()

    async def _recovered(self, workflow_id: str) -> None:
        known = self.failing.pop(workflow_id)
        log.info("a failing subscriber receives again", extra={"fields": {"workflow_id": workflow_id}})
        await self.db.monitoring_alerts.update_one(
            {"alert_id": f"feed-subscriber:{self.source}:{workflow_id}:{known.since.isoformat()}"},
            {"$set": {"resolved_at": datetime.now(UTC), "failures": known.failures}})
        await self._save_failing()

    async def _save_failing(self) -> None:
        value = {wid: {"failures": f.failures, "error": f.error, "since": f.since}
                 for wid, f in sorted(self.failing.items())}
        await self.db.system_config.update_one(
            {"key": subscribers_config_key(self.source)},
            {"$set": {"value": value, "updated_at": datetime.now(UTC)}}, upsert=True)

    async def _alert_ban(self, alert: BanAlert) -> None:
        await self.db.monitoring_alerts.update_one(
            {"alert_id": f"exchange-ban:{alert.until_wall_ms}"},
            {"$setOnInsert": {"kind": "exchange_ip_ban", "severity": "critical", "message": alert.message,
                              "code": alert.code, "retry_after_s": alert.retry_after_s,
                              "created_at": datetime.now(UTC)}},
            upsert=True)
