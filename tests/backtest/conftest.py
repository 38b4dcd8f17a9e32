"""Helpers for backtest-workflow tests: an in-process trading worker on a unique queue, starting
backtests, reading their documents, and the direct ``run_backtest`` a stored report must equal."""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import csv
import gzip
import json
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import Client, WorkflowHandle
from temporalio.worker import Worker

from activities.db import ensure_schema
from core.backtest_contracts import BacktestInput, backtest_workflow_id
from core.contracts import TASK_QUEUE_TRADING, task_queue_name
from core.datafiles import load_candles
from trading.analysis import AnalysisSettings, compute_signal_series
from trading.backtest import BacktestResult, run_backtest
from trading.candle import Candle
from trading.models import Trade
from trading.settings import EngineSettings
from workflows.backtest import BacktestWorkflow

from ..conftest import trading_worker_running

REPO = Path(__file__).resolve().parents[2]
CANDLES = REPO / "data" / "candles"
# Two of five strategies agreeing trade often enough to exercise entries and exits on short slices.
ANALYSIS = {"min_agree": 2}


def ms(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp() * 1000)


def canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), allow_nan=False)


def trades_json(trades: Sequence[Trade]) -> str:
    return canonical([t.to_dict() for t in trades])


def from_anchor(candles: list[Candle], anchor: int | None) -> list[Candle]:
    if anchor is None:
        return candles
    return candles[bisect.bisect_left([c.open_time for c in candles], anchor):]


def direct_backtest(candles: list[Candle], request: BacktestInput) -> BacktestResult:
    """What the CLI computes for the same inputs: signals from the anchor over every candle loaded."""
    series = from_anchor(candles, request.warmup_from)
    signals = compute_signal_series(series, AnalysisSettings.from_dict(request.analysis_settings or {}))
    return run_backtest(series, signals, EngineSettings.from_dict(request.engine_settings or {}),
                        trade_from=request.trade_from, trade_to=request.trade_to)


def dataset(name: str) -> list[Candle]:
    return load_candles(CANDLES / name)


def new_id() -> str:
    return f"bt-{uuid.uuid4().hex[:12]}"


@dataclass
class BacktestRig:
    client: Client
    db: Any
    queue_prefix: str

    @property
    def task_queue(self) -> str:
        return task_queue_name(TASK_QUEUE_TRADING, self.queue_prefix)

    @asynccontextmanager
    async def worker(self, name: str = "a", data_dir: Path | None = None) -> AsyncIterator[Worker]:
        from core.settings import Settings

        # No grace at shutdown: a stopped worker drops its running job at once, like a crash.
        settings = Settings(_env_file=None, task_queue_prefix=self.queue_prefix, worker_shutdown_grace_s=0,
                            data_dir=data_dir or REPO / "data")
        async with trading_worker_running(self.client, settings, self.db, f"backtest-test-{name}") as trading:
            yield trading

    async def start(self, request: BacktestInput) -> WorkflowHandle:
        return await self.client.start_workflow(
            BacktestWorkflow.run, request, id=backtest_workflow_id(request.backtest_id), task_queue=self.task_queue)

    async def doc(self, backtest_id: str) -> dict[str, Any] | None:
        return await self.db.backtest_results.find_one({"backtest_id": backtest_id}, projection={"_id": 0})


@pytest.fixture
async def rig(temporal_client, mongo_client, db_name) -> BacktestRig:
    db = mongo_client[db_name]
    await ensure_schema(db)
    return BacktestRig(temporal_client, db, f"bt-{uuid.uuid4().hex[:10]}-")


def write_tiled(directory: Path, source: str, tiles: int) -> str:
    """A large candle file for slow runs: ``source`` repeated ``tiles`` times, later in time each
    tile. Returns the file name (symbol TILE + the source's quote, the source's interval)."""
    candles = dataset(source)
    step = candles[1].open_time - candles[0].open_time
    span = candles[-1].open_time - candles[0].open_time + step
    interval = source.split("-")[1]
    name = f"TILE{candles[0].symbol}-{interval}-tiled.csv.gz"
    directory.mkdir(parents=True, exist_ok=True)
    with gzip.open(directory / name, "wt", newline="", compresslevel=1) as fh:
        out = csv.writer(fh)
        out.writerow(["open_time", "open", "high", "low", "close", "volume"])
        for k in range(tiles):
            out.writerows((c.open_time + k * span, c.open, c.high, c.low, c.close, c.volume) for c in candles)
    return name


@asynccontextmanager
async def recorded_changes(db: Any) -> AsyncIterator[list[dict[str, Any]]]:
    """The fields each write to backtest_results set, in order (a change stream opened first)."""
    changes: list[dict[str, Any]] = []
    stream = await db.backtest_results.watch()

    async def follow() -> None:
        async for change in stream:
            if change["operationType"] == "insert":
                changes.append(change["fullDocument"])
            elif change["operationType"] == "update":
                changes.append(change["updateDescription"]["updatedFields"])

    task = asyncio.create_task(follow())
    try:
        yield changes
    finally:
        await asyncio.sleep(0.5)  # let the last events arrive
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await stream.close()


async def wait_doc(rig: BacktestRig, backtest_id: str, predicate, within_s: float = 20.0) -> dict[str, Any]:
    deadline = asyncio.get_running_loop().time() + within_s
    while True:
        doc = await rig.doc(backtest_id)
        if doc is not None and predicate(doc):
            return doc
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"backtest document never matched: {doc}")
        await asyncio.sleep(0.05)
