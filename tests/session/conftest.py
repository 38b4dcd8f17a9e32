"""Helpers for trading-session tests: the schema, an in-process trading worker on a unique queue,
update-with-start, feeding candles by signal, and the backtest a session must equal."""

from __future__ import annotations

import asyncio
import bisect
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import Client, WithStartWorkflowOperation, WorkflowHandle
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.service import RPCError, RPCStatusCode
from temporalio.worker import Worker

from activities.db import ensure_schema
from activities.market_store import store_candles
from core.contracts import (
    SIGNAL_CANDLE_CLOSED,
    TASK_QUEUE_TRADING,
    CandleClosed,
    SessionStatus,
    StartSessionInput,
    session_workflow_id,
    stream_key,
    task_queue_name,
)
from core.datafiles import load_candles
from trading.analysis import AnalysisSettings, compute_signal_series, warmup_candles
from trading.backtest import BacktestResult, run_backtest
from trading.candle import Candle
from trading.settings import EngineSettings
from workflows.trading_session import TradingSessionWorkflow

from ..conftest import trading_worker_running

REPO = Path(__file__).resolve().parents[2]
CANDLES = REPO / "data" / "candles"
SOURCE = "test"
# Two of five strategies agreeing trade often enough to exercise entries and exits on short slices.
ANALYSIS = {"min_agree": 2}


def closed(candle: Candle, interval: str) -> CandleClosed:
    return CandleClosed(SOURCE, candle.symbol, interval, candle.open_time, candle.close_time, candle.open,
                        candle.high, candle.low, candle.close, candle.volume)


@dataclass
class SessionRig:
    client: Client
    db: Any
    queue_prefix: str

    @asynccontextmanager
    async def worker(self, exchange_url: str | None = None) -> AsyncIterator[Worker]:
        """The trading worker; ``exchange_url``: the exchange it asks for prices and funding rates."""
        from core.settings import Settings

        settings = Settings(_env_file=None, task_queue_prefix=self.queue_prefix)
        if exchange_url is not None:
            settings = settings.model_copy(update={"exchange_rest_url": exchange_url,
                                                   "exchange_futures_url": exchange_url})
        async with trading_worker_running(self.client, settings, self.db,
                                          f"session-test-{self.queue_prefix}") as trading:
            assert trading.task_queue == task_queue_name(TASK_QUEUE_TRADING, self.queue_prefix)
            yield trading

    async def start(self, user: str, request: StartSessionInput) -> tuple[WorkflowHandle, SessionStatus]:
        operation = WithStartWorkflowOperation(
            TradingSessionWorkflow.run, None, id=session_workflow_id(user),
            task_queue=task_queue_name(TASK_QUEUE_TRADING, self.queue_prefix),
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        )
        status = await self.client.execute_update_with_start_workflow(
            TradingSessionWorkflow.start, request, start_workflow_operation=operation)
        return await operation.workflow_handle(), status

    async def store(self, candles: Sequence[Candle], interval: str) -> None:
        await store_candles(self.db, candles, interval, SOURCE)

    async def store_warm_slice(self, file_name: str, traded: int) -> tuple[list[Candle], list[Candle]]:
        """Store one warm-up plus ``traded`` 5m candles of a real file; return (stored, traded part)."""
        data = load_candles(CANDLES / file_name)[: warmup_candles(AnalysisSettings.from_dict(ANALYSIS)) + traded]
        await self.store(data, "5m")
        return data, data[-traded:]


async def feed(handle: WorkflowHandle, candles: Sequence[Candle], interval: str) -> None:
    for candle in candles:
        await handle.signal(SIGNAL_CANDLE_CLOSED, closed(candle, interval))


async def wait_processed(handle: WorkflowHandle, symbol: str, interval: str, open_time: int,
                         within_s: float = 240) -> SessionStatus:
    """Poll the status query until the session processed ``open_time`` and its queue is empty."""
    key = stream_key(symbol, interval)
    deadline = asyncio.get_running_loop().time() + within_s
    while True:
        try:
            status = await handle.query(TradingSessionWorkflow.status)
        except RPCError as exc:
            # The server fails a busy workflow task once more than 100 signals wait behind it (to
            # hand them over); until its retry completes, queries are refused.
            if exc.status != RPCStatusCode.FAILED_PRECONDITION or asyncio.get_running_loop().time() > deadline:
                raise
            await asyncio.sleep(0.2)
            continue
        if status.last_open_time.get(key) == open_time and status.queued == 0:
            return status
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"session stuck at {status}")
        await asyncio.sleep(0.2)


def session_backtest(candles: Sequence[Candle], anchor: int, first_traded: int, engine: dict[str, Any],
                     analysis: dict[str, Any],
                     funding_series: dict[str, list[tuple[int, float]]] | None = None) -> BacktestResult:
    """The backtest a session must equal: warm up from its anchor, trade from its first candle (paying
    ``funding_series`` when the engine funds from a series)."""
    start = bisect.bisect_left([c.open_time for c in candles], anchor)
    assert candles[start].open_time == anchor, "the anchor is not a candle of the slice"
    series = candles[start:]
    signals = compute_signal_series(series, AnalysisSettings.from_dict(analysis))
    return run_backtest(series, signals, EngineSettings.from_dict(engine), trade_from=first_traded,
                        funding_series=funding_series)


@pytest.fixture
async def rig(temporal_client, mongo_client, db_name) -> SessionRig:
    db = mongo_client[db_name]
    await ensure_schema(db)
    return SessionRig(temporal_client, db, f"sess-{uuid.uuid4().hex[:10]}-")


def new_user() -> str:
    return f"u{uuid.uuid4().hex[:10]}"


@pytest.fixture(scope="session")
async def eager_can_client(tmp_path_factory) -> AsyncIterator[Client]:
    """A client of a second dev server that suggests continue-as-new after 200 history events."""
    from worker.main import ensure_search_attributes

    from ..conftest import TemporalServer

    server = TemporalServer(tmp_path_factory.mktemp("temporal-can"), extra_args=[
        "--dynamic-config-value", "limit.historyCount.suggestContinueAsNew=200"])
    server.start()
    try:
        client = await Client.connect(server.address)
        await ensure_search_attributes(client, "default")
        yield client
    finally:
        server.stop()
