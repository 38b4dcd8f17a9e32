"""The backtest activities: record a backtest's status, and run it as one heartbeating job.

``run_backtest_job`` loads the candles (a data file of the product or stored ``market_data``),
computes the signals from the first candle loaded (the anchor) and runs ``trading.backtest``; the
Engine, signals and skipping are the CLI's, so the stored report equals ``run_backtest`` on the
same inputs. The CPU work runs on threads so the worker's event loop, which also serves
workflows and heartbeats, never blocks.

One ``backtest_results`` document per ``backtest_id`` (unique index) holds the status, the live
progress and finally the whole report, written in one update together with ``completed``, so a
reader sees either no report or all of it. Every write after the first is conditional on the
workflow run that owns the document (``run_id``) and on the status not being final, so a late
attempt of a dead worker, or a retry after a crash, can neither write twice nor undo a result.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import logging
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError, PyMongoError
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.market_store import read_candles
from core.backtest_contracts import (
    INPUT_ERROR,
    PHASE_ANALYSING,
    PHASE_LOADING,
    PHASE_STORING,
    PHASE_TRADING,
    STATUS_CANCELLED,
    STATUS_COMPLETED,
    STATUS_FAILED,
    STATUS_QUEUED,
    STATUS_RUNNING,
    TERMINAL_STATUSES,
    BacktestInput,
    BacktestJob,
    BacktestMark,
    BacktestResult,
    analysis_settings_of,
    engine_settings_of,
    input_problem,
)
from core.datafiles import load_candles, parse_data_filename
from trading.analysis import compute_signal_series, warmup_candles
from trading.backtest import BacktestResult as EngineRun
from trading.backtest import run_backtest
from trading.candle import Candle

log = logging.getLogger("durabot.backtest")

REPO_CANDLES = Path(__file__).resolve().parents[1] / "data" / "candles"
HEARTBEAT_EVERY_S = 2.0
READ_BATCH = 5000
MAX_EQUITY_POINTS = 1000
# Where each phase starts in the overall fraction; loading moves within its share as batches arrive.
PHASE_START = {PHASE_LOADING: 0.0, PHASE_ANALYSING: 0.3, PHASE_TRADING: 0.5, PHASE_STORING: 0.95}
# Fields a new run of the same backtest_id clears (a rerun after a failure or a cancel).
REPORT_FIELDS = ("summary", "metrics", "trades", "equity_curve", "settings", "data", "candles_in_position",
                 "entries_rejected", "error", "phase", "started_at", "finished_at", "attempt", "duration_s")


class BadInput(ValueError):
    """A request that can never succeed: reported, never retried."""


def downsample(close_times: tuple[int, ...], equity: tuple[float, ...],
               limit: int = MAX_EQUITY_POINTS) -> tuple[list[int], list[float]]:
    """At most ``limit`` points of the curve, evenly spaced, always the first and the last; the
    values are the run's own, never interpolated."""
    n = len(equity)
    if n <= limit:
        return list(close_times), list(equity)
    picks = [k * (n - 1) // (limit - 1) for k in range(limit)]
    return [close_times[i] for i in picks], [equity[i] for i in picks]


def summary_of(backtest_id: str, run: EngineRun, interval: str, loaded: int, duration_s: float) -> BacktestResult:
    return BacktestResult(
        backtest_id=backtest_id, symbol=run.symbol, interval=interval, candles_loaded=loaded,
        candles_traded=len(run.close_times), traded_from=run.close_times[0], traded_to=run.close_times[-1],
        trades=len(run.trades), final_equity=float(run.metrics["final_equity"] or 0.0),
        metrics=dict(run.metrics), duration_s=duration_s,
    )


def stored_summary(doc: dict[str, Any]) -> BacktestResult:
    return BacktestResult(**doc["summary"])


def _now() -> datetime:
    return datetime.now(UTC)


def _owned(backtest_id: str, run_id: str) -> dict[str, Any]:
    """The filter of every write after the first: this run's document, status not final."""
    return {"backtest_id": backtest_id, "run_id": run_id, "status": {"$nin": list(TERMINAL_STATUSES)}}


@dataclass
class _Tracker:
    """The job's live progress, read by the heartbeat loop."""

    phase: str = PHASE_LOADING
    fraction: float = 0.0
    detail: dict[str, Any] = field(default_factory=dict)

    def enter(self, phase: str, **detail: Any) -> None:
        self.phase, self.fraction, self.detail = phase, PHASE_START[phase], detail

    def report(self) -> dict[str, Any]:
        return {"phase": self.phase, "progress": round(self.fraction, 4), **self.detail}


@dataclass(frozen=True)
class _Loaded:
    candles: list[Candle]
    interval: str
    validated: bool  # load_candles validated every row; stored candles run_backtest checks itself
    description: dict[str, Any]


class BacktestActivities:
    def __init__(self, db: AsyncDatabase, candles_dir: Path | None = None) -> None:
        self.db = db
        self.candles_dir = (candles_dir or REPO_CANDLES).resolve()

    # ------------------------------------------------------------------ status records
    @activity.defn
    async def open_backtest(self, job: BacktestJob) -> BacktestResult | None:
        """Record the backtest as queued for this run (a rerun after a failure or cancel starts
        afresh). A completed backtest is final: its stored summary is returned instead."""
        request = job.request
        docs = self.db.backtest_results
        doc = await docs.find_one({"backtest_id": request.backtest_id})
        if doc is not None and doc["status"] == STATUS_COMPLETED:
            return stored_summary(doc)
        if doc is not None and doc.get("run_id") == job.run_id:
            return None  # this activity retried: queued already
        now = _now()
        try:
            await docs.update_one(
                {"backtest_id": request.backtest_id, "status": {"$ne": STATUS_COMPLETED}},
                {
                    "$set": {"user_id": request.user_id, "run_id": job.run_id, "status": STATUS_QUEUED,
                             "progress": 0.0, "request": _request_doc(request), "queued_at": now, "updated_at": now},
                    "$unset": {name: "" for name in REPORT_FIELDS},
                    "$setOnInsert": {"created_at": now},
                },
                upsert=True,
            )
        except DuplicateKeyError:
            # Completed between our read and our write: the filter missed it and the upsert hit the key.
            doc = await docs.find_one({"backtest_id": request.backtest_id})
            if doc is not None and doc["status"] == STATUS_COMPLETED:
                return stored_summary(doc)
            raise
        return None

    @activity.defn
    async def mark_backtest(self, mark: BacktestMark) -> bool:
        """Set a final status the workflow decided (failed, cancelled); a no-op once final."""
        now = _now()
        result = await self.db.backtest_results.update_one(
            _owned(mark.backtest_id, mark.run_id),
            {"$set": {"status": mark.status, "error": mark.error, "finished_at": now, "updated_at": now}},
        )
        return result.modified_count == 1

    # ------------------------------------------------------------------ the job
    @activity.defn
    async def run_backtest_job(self, job: BacktestJob) -> BacktestResult:
        request = job.request
        doc = await self.db.backtest_results.find_one({"backtest_id": request.backtest_id})
        if doc is not None and doc["status"] == STATUS_COMPLETED:
            return stored_summary(doc)  # a retry after the report was written: nothing to redo
        if doc is None or doc.get("run_id") != job.run_id or doc["status"] in TERMINAL_STATUSES:
            raise ApplicationError(f"backtest {request.backtest_id} is not open for run {job.run_id}",
                                   type="BacktestNotOpen", non_retryable=True)
        tracker = _Tracker()
        started = doc.get("started_at") or _now()
        await self._write(job, {"status": STATUS_RUNNING, "attempt": activity.info().attempt,
                                "started_at": started, **tracker.report()})
        beat = asyncio.create_task(self._beat(job, tracker))
        try:
            return await self._run(job, tracker, started)
        except BadInput as exc:
            await self._finish(job, STATUS_FAILED, str(exc))
            raise ApplicationError(str(exc), type=INPUT_ERROR, non_retryable=True) from None
        except asyncio.CancelledError:
            details = activity.cancellation_details()
            if details is not None and details.cancel_requested:
                await self._finish(job, STATUS_CANCELLED, f"cancelled while {tracker.phase}")
                raise
            if activity.is_worker_shutdown():
                # Not the user's cancel: fail this attempt so that another worker retries it now.
                raise ApplicationError("the worker shut down mid-run", type="WorkerShutdown") from None
            raise
        finally:
            beat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await beat

    async def _run(self, job: BacktestJob, tracker: _Tracker, started: datetime) -> BacktestResult:
        request = job.request
        problem = input_problem(request)
        if problem:
            raise BadInput(problem)
        engine_settings = engine_settings_of(request)
        analysis_settings = analysis_settings_of(request)
        clock = time.monotonic()

        loaded = await self._load(request, tracker)
        candles = loaded.candles
        open_times = [c.open_time for c in candles]
        first = bisect.bisect_left(open_times, request.trade_from) if request.trade_from is not None else 0
        stop = bisect.bisect_left(open_times, request.trade_to) if request.trade_to is not None else len(candles)
        if first >= stop:
            raise BadInput(f"empty time range: no candle opens in [{request.trade_from}, {request.trade_to}) "
                           f"of the {len(candles)} loaded ({open_times[0]}..{open_times[-1]})")
        # Signals on a candle depend only on the candles from the anchor up to it (the anchor
        # property), so candles after the last traded one are dropped unanalysed.
        candles = candles[:stop]

        await self._enter(job, tracker, PHASE_ANALYSING, candles=len(candles))
        signals = await asyncio.to_thread(compute_signal_series, candles, analysis_settings)

        await self._enter(job, tracker, PHASE_TRADING, candles=stop - first)
        try:
            run = await asyncio.to_thread(run_backtest, candles, signals, engine_settings,
                                          trade_from=request.trade_from, trade_to=request.trade_to,
                                          candles_validated=loaded.validated)
        except ValueError as exc:  # bad stored candles, or a range run_backtest refuses
            raise BadInput(str(exc)) from None

        await self._enter(job, tracker, PHASE_STORING, trades=len(run.trades))
        duration = round(time.monotonic() - clock, 3)
        summary = summary_of(request.backtest_id, run, loaded.interval, len(loaded.candles), duration)
        times, equity = downsample(run.close_times, run.equity)
        report = {
            "summary": asdict(summary),
            "metrics": dict(run.metrics),
            "trades": [t.to_dict() for t in run.trades],
            "equity_curve": {"close_times": times, "equity": equity, "points_of": len(run.equity)},
            "candles_in_position": run.candles_in_position,
            "entries_rejected": run.entries_rejected,
            "settings": {"engine": engine_settings.to_dict(), "analysis": analysis_settings.to_dict(),
                         "analysis_settings_hash": analysis_settings.settings_hash()},
            "data": {**loaded.description, "symbol": run.symbol, "interval": loaded.interval,
                     "candles_loaded": len(loaded.candles), "anchor": open_times[0],
                     "warmup_candles": warmup_candles(analysis_settings),
                     "trade_from": request.trade_from, "trade_to": request.trade_to,
                     "candles_traded": len(run.close_times), "traded_from": run.close_times[0],
                     "traded_to": run.close_times[-1]},
            "duration_s": duration,
        }
        finished = await self._finish(job, STATUS_COMPLETED, None, {**report, "phase": None, "progress": 1.0})
        if not finished:
            doc = await self.db.backtest_results.find_one({"backtest_id": request.backtest_id})
            if doc is not None and doc["status"] == STATUS_COMPLETED:
                return stored_summary(doc)
            raise ApplicationError(f"backtest {request.backtest_id} was closed by another run",
                                   type="BacktestNotOpen", non_retryable=True)
        return summary

    async def _load(self, request: BacktestInput, tracker: _Tracker) -> _Loaded:
        if request.dataset is not None:
            path = self.candles_dir / request.dataset
            if path.parent != self.candles_dir or not path.is_file():
                known = sorted(p.name for p in self.candles_dir.glob("*.csv*"))
                raise BadInput(f"unknown dataset {request.dataset!r}; known: {', '.join(known)}")
            try:
                symbol, interval = parse_data_filename(path)
                candles = await asyncio.to_thread(load_candles, path)
            except ValueError as exc:  # BadCandleError included: the file has a bad row
                raise BadInput(f"dataset {request.dataset}: {exc}") from None
            if request.warmup_from is not None:
                candles = candles[bisect.bisect_left([c.open_time for c in candles], request.warmup_from):]
            if not candles:
                raise BadInput(f"dataset {request.dataset} has no candle at or after warmup_from {request.warmup_from}")
            return _Loaded(candles, interval, True, {"source": "dataset", "dataset": request.dataset})
        md = request.market_data
        assert md is not None  # input_problem checked there is exactly one source
        start = md.start if request.warmup_from is None else max(md.start, request.warmup_from)
        stored: list[Candle] = []
        cursor = start
        while cursor <= md.end:
            batch = await read_candles(self.db, md.symbol, md.interval, start=cursor, end=md.end,
                                       limit=READ_BATCH, newest=False)
            stored.extend(batch)
            if len(batch) < READ_BATCH:
                break
            cursor = batch[-1].open_time + 1
            tracker.fraction = PHASE_START[PHASE_ANALYSING] * (cursor - start) / max(1, md.end - start + 1)
            tracker.detail = {"candles": len(stored)}
        if not stored:
            raise BadInput(f"empty time range: no stored market_data for {md.symbol} {md.interval} "
                           f"with open time in [{start}, {md.end}]")
        return _Loaded(stored, md.interval, False, {"source": "market_data", "market_data": asdict(md)})

    # ------------------------------------------------------------------ progress and writes
    async def _enter(self, job: BacktestJob, tracker: _Tracker, phase: str, **detail: Any) -> None:
        tracker.enter(phase, **detail)
        activity.heartbeat(tracker.report())
        await self._write(job, tracker.report())

    async def _beat(self, job: BacktestJob, tracker: _Tracker) -> None:
        """Heartbeat (how a cancel reaches the job) and record progress every few seconds."""
        timeout = activity.info().heartbeat_timeout
        every = min(HEARTBEAT_EVERY_S, timeout.total_seconds() / 3) if timeout else HEARTBEAT_EVERY_S
        while True:
            activity.heartbeat(tracker.report())
            try:
                await self._write(job, tracker.report())
            except PyMongoError as exc:
                log.warning("backtest progress not recorded: %s", exc)  # the next beat tries again
            await asyncio.sleep(every)

    async def _write(self, job: BacktestJob, fields: dict[str, Any]) -> bool:
        result = await self.db.backtest_results.update_one(
            _owned(job.request.backtest_id, job.run_id), {"$set": {**fields, "updated_at": _now()}})
        return result.matched_count == 1

    async def _finish(self, job: BacktestJob, status: str, error: str | None,
                      fields: dict[str, Any] | None = None) -> bool:
        now = _now()
        return await self._write(job, {**(fields or {}), "status": status, "error": error, "finished_at": now})


def _request_doc(request: BacktestInput) -> dict[str, Any]:
    data = asdict(request)
    data.pop("backtest_id")
    data.pop("user_id")
    return data

