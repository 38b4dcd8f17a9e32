"""Shared pieces of the session tests that take their candles from the market feed and the sim
exchange at speed `max`: the feed settings, the sim's rebased series computed independently of the
server, waiting for a session to drain, and what the session stored, read back for comparison."""

from __future__ import annotations

import asyncio
import json
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowHandle

from core.contracts import (
    TASK_QUEUE_MARKET,
    MarketFeedInput,
    SessionStatus,
    feed_workflow_id,
    stream_key,
    task_queue_name,
)
from core.datafiles import load_candles
from sim.exchange import SimExchangeServer
from sim.exchange.series import replay_series
from trading.backtest import BacktestResult
from trading.candle import Candle
from workflows.market_feed import MarketFeedWorkflow
from workflows.trading_session import TradingSessionWorkflow

from ..sim.conftest import sim_state
from .conftest import CANDLES, session_backtest

INTERVAL = "5m"


@dataclass(frozen=True)
class FeedSlice:
    """A real data file served by the sim: its first ``served`` candles, ``closed_at_start`` of them
    closed before the feed connects (the feed's backfill; the session trades the rest).

    With tiling off, the last served candle is proven closed only by its `x: true` kline, which a
    feed that reconnects after it never sees (REST shows no newer row): the checked slice ends one
    candle before; the session may or may not trade that last one."""

    file_name: str
    served: int
    closed_at_start: int

    def __post_init__(self) -> None:
        if not 0 < self.closed_at_start < self.served <= 2000:
            raise ValueError(f"need 0 < closed_at_start < served <= 2000, got {self}")

    @property
    def symbol(self) -> str:
        return self.file_name.split("-")[0]

    def sim_options(self) -> dict[str, Any]:
        return {"symbols": (self.symbol,), "speed": "max", "tiling": False,
                "max_candles_per_series": self.served, "start_offset_candles": self.closed_at_start}


async def expected_series(sim: SimExchangeServer, feed_slice: FeedSlice) -> list[Candle]:
    """The sim's rebased series (every served candle), computed here from the file, independently
    of the server."""
    origin = (await sim_state(sim))["origin_ms"]
    series = replay_series(load_candles(CANDLES / feed_slice.file_name), origin, tiling=False, cap=feed_slice.served)
    return series.candles(0, feed_slice.served)


def feed_settings(settings: Any, sim: SimExchangeServer, feed_slice: FeedSlice, queue_prefix: str) -> Any:
    """``settings`` pointed at the sim, following the slice's stream, on its own source and queues.
    The feed is started by the test (never autostarted), after the session subscribed."""
    return settings.model_copy(update={
        "exchange_rest_url": sim.rest_url, "exchange_futures_url": sim.rest_url, "exchange_ws_url": sim.ws_url,
        "feed_streams": f"{feed_slice.symbol}@{INTERVAL}", "feed_backfill_candles": feed_slice.served,
        "feed_source": f"test-{uuid.uuid4().hex[:8]}", "feed_autostart": False, "task_queue_prefix": queue_prefix,
    })


async def start_feed(client: Client, settings: Any, heartbeat_s: float = 30.0) -> WorkflowHandle:
    return await client.start_workflow(
        MarketFeedWorkflow.run, MarketFeedInput(source=settings.market_source, heartbeat_timeout_s=heartbeat_s),
        id=feed_workflow_id(settings.market_source),
        task_queue=task_queue_name(TASK_QUEUE_MARKET, settings.task_queue_prefix),
        execution_timeout=timedelta(minutes=15))


async def wait_drained(handle: WorkflowHandle, symbol: str, last_open_time: int, within_s: float,
                       describe: Any = None) -> SessionStatus:
    """Poll the status query (riding out server restarts) until the session processed
    ``last_open_time`` (or later) and its queue is empty."""
    key = stream_key(symbol, INTERVAL)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within_s
    status: SessionStatus | None = None
    while True:
        try:
            status = await handle.query(TradingSessionWorkflow.status)
            if status.last_open_time.get(key, -1) >= last_open_time and status.queued == 0:
                return status
        except Exception as exc:  # noqa: BLE001 - a query fails while the worker or a server restarts
            if loop.time() > deadline:
                raise AssertionError(f"session status unavailable: {exc!r}") from exc
        if loop.time() > deadline:
            detail = describe() if describe else ""
            raise AssertionError(f"session stuck at {status} (want {key} at {last_open_time}){detail}")
        await asyncio.sleep(0.25)


async def drain_and_stop_feed(handle: WorkflowHandle, feed: WorkflowHandle, series: list[Candle], within_s: float,
                              describe: Any = None) -> SessionStatus:
    """Wait until the session traded the checked slice, stop the feed, then let the session finish
    whatever the feed delivered last, so the status read is final."""
    symbol = series[0].symbol
    await wait_drained(handle, symbol, series[-2].open_time, within_s, describe)
    await feed.terminate("test over")
    await asyncio.sleep(1.0)
    return await wait_drained(handle, symbol, series[-2].open_time, 60, describe)


def canonical(trades: list[dict]) -> str:
    return json.dumps(trades, sort_keys=True, separators=(",", ":"), allow_nan=False)


@dataclass(frozen=True)
class SessionOutcome:
    """What a session stored, read back from MongoDB."""

    rows: list[dict]
    history_times: list[int]

    @property
    def closed_trades(self) -> list[dict]:
        return [r["trade"] for r in self.rows if r["status"] == "closed"]

    @property
    def open_trade_ids(self) -> list[int]:
        return [r["trade_id"] for r in self.rows if r["status"] == "open"]


async def session_outcome(db: Any, session_id: str) -> SessionOutcome:
    rows = await db.paper_trading_trades.find({"session_id": session_id}).sort("trade_id", 1).to_list()
    history = await db.portfolio_history.find({"session_id": session_id}, {"time": 1}).sort("time", 1).to_list()
    return SessionOutcome(rows, [h["time"] for h in history])


def first_traded(series: list[Candle], outcome: SessionOutcome) -> Candle:
    """The session's first traded candle: the one whose close its first portfolio point is stamped with."""
    assert outcome.history_times, "the session committed nothing"
    [candle] = [c for c in series if c.close_time == outcome.history_times[0]]
    return candle


def backtest_for(series: list[Candle], status: SessionStatus, outcome: SessionOutcome, engine: dict,
                 analysis: dict, funding_series: dict[str, list[tuple[int, float]]] | None = None,
                 ) -> tuple[BacktestResult, list[Candle]]:
    """The backtest the session must equal over the candles it processed, and those candles."""
    key = stream_key(series[0].symbol, INTERVAL)
    first = first_traded(series, outcome)
    traded = [c for c in series if first.open_time <= c.open_time <= status.last_open_time[key]]
    upto = [c for c in series if c.open_time <= status.last_open_time[key]]
    return session_backtest(upto, status.analysis_anchor[key], first.open_time, engine, analysis,
                            funding_series), traded


async def analysis_calls(client: Client, workflow_id: str) -> tuple[int, int]:
    """Over every run of a session: (analyses it asked for with a local activity, candles it received
    with the feed's analysis attached)."""
    asked = sent = 0
    async for run in client.list_workflows(f'WorkflowId = "{workflow_id}"'):
        history = await client.get_workflow_handle(workflow_id, run_id=run.run_id).fetch_history()
        for event in history.events:
            marker = event.event_type == EventType.EVENT_TYPE_MARKER_RECORDED
            if marker and b"analyze_candle" in event.SerializeToString():
                asked += 1
            elif event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED:
                payloads = event.workflow_execution_signaled_event_attributes.input.payloads
                sent += bool(payloads) and json.loads(payloads[0].data).get("analysis") is not None
    return asked, sent
