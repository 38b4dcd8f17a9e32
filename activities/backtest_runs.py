"""The backtest activities: record a backtest's status, and run it as one heartbeating job.

``run_backtest_job`` loads each symbol's candles (data files of the product or stored
``market_data``), computes its signals from its first candle loaded (the anchor) and runs
``trading.backtest_multi.backtest_symbols`` (the single-symbol fast path for one symbol, one Engine
over the candles merged by time for several); the report is ``trading.backtest_report``'s. The CLI
does the same with the same functions, so both give the same report for the same settings and
candles. The CPU work runs on threads so the worker's event loop, which also serves workflows and
heartbeats, never blocks.

One ``backtest_results`` document per ``backtest_id`` (unique index) holds the status, the live
progress and finally the report, written in one update together with ``completed``, so a reader
sees either no report or all of it. The trades go first into ``backtest_trades``, 500 to a document
(``chunk`` k holds trades 500k to 500k + 499), keyed by backtest, run and chunk, so a retry inserts
nothing twice; readers take only the trades of the run the completed document names. Every write to
``backtest_results`` after the first is conditional on the workflow run that owns the document
(``run_id``) and on the status not being final, so a late attempt of a dead worker, or a retry
after a crash, can neither write twice nor undo a result; an attempt that cannot complete removes
the trades it wrote.
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
from pymongo.errors import BulkWriteError, DuplicateKeyError, PyMongoError
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.ai_replay import ReplayCount, decided_signals, replayed
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
    TRADES_PER_CHUNK,
    BacktestInput,
    BacktestJob,
    BacktestMark,
    BacktestResult,
    analysis_settings_of,
    dataset_names,
    document_of,
    engine_settings_of,
    input_problem,
)
from core.datafiles import load_candles, parse_data_filename
from core.settings_document import SettingsDocument
from trading.ai_modes import TRADING_MODES
from trading.analysis import compute_signal_series, warmup_candles
from trading.backtest import BacktestResult as EngineRun
from trading.backtest_multi import MultiBacktestResult, backtest_symbols, symbols_of
from trading.backtest_report import downsample, report_for, report_parameters
from trading.candle import Candle

log = logging.getLogger("durabot.backtest")

REPO_CANDLES = Path(__file__).resolve().parents[1] / "data" / "candles"
HEARTBEAT_EVERY_S = 2.0
READ_BATCH = 5000
# Where each phase starts in the overall fraction; loading moves within its share as batches arrive.
PHASE_START = {PHASE_LOADING: 0.0, PHASE_ANALYSING: 0.3, PHASE_TRADING: 0.5, PHASE_STORING: 0.95}
# Fields a new run of the same backtest_id clears (a rerun after a failure or a cancel).
REPORT_FIELDS = ("summary", "metrics", "report", "trades", "trades_total", "equity_curve", "price_curves", "settings",
                 "data", "candles_in_position", "entries_rejected", "error", "phase", "started_at", "finished_at",
                 "attempt", "duration_s")
PROGRESS_DETAIL = ("candles", "trades_found")  # what a phase adds to the progress (``_Tracker.detail``)


class BadInput(ValueError):
    """A request that can never succeed: reported, never retried."""


def summary_of(backtest_id: str, run: EngineRun | MultiBacktestResult, interval: str, loaded: int,
               duration_s: float) -> BacktestResult:
    symbols = list(symbols_of(run))
    return BacktestResult(
        backtest_id=backtest_id, symbol=symbols[0], interval=interval, candles_loaded=loaded,
        candles_traded=len(run.close_times), traded_from=run.close_times[0], traded_to=run.close_times[-1],
        trades=len(run.trades), final_equity=float(run.metrics["final_equity"] or 0.0),
        metrics=dict(run.metrics), duration_s=duration_s, symbols=symbols,
    )


def price_curves(candles: dict[str, list[Candle]], start: int | None, stop: int | None
                 ) -> dict[str, dict[str, list[Any]]]:
    """Each symbol's closes over the traded window, at most 1,000 points: the chart behind the
    entries and exits of a report, whatever the candles' source."""
    curves: dict[str, dict[str, list[Any]]] = {}
    for symbol, series in candles.items():
        window = [c for c in series if (start is None or c.open_time >= start) and (stop is None or c.open_time < stop)]
        times, closes = downsample([c.open_time + c.interval_ms for c in window], [c.close for c in window])
        curves[symbol] = {"close_times": times, "close": closes}
    return curves


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
    candles: dict[str, list[Candle]]  # symbol → its candles from its anchor on
    interval: str
    validated: bool  # load_candles validated every row; stored candles the backtester checks itself
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
                    "$unset": {name: "" for name in REPORT_FIELDS + PROGRESS_DETAIL},
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
        # Trades an earlier run of this ID wrote before it failed or was cancelled.
        await self.db.backtest_trades.delete_many({"backtest_id": request.backtest_id, "run_id": {"$ne": job.run_id}})
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
        candles: dict[str, list[Candle]] = {}
        for symbol, series in loaded.candles.items():
            open_times = [c.open_time for c in series]
            stop = bisect.bisect_left(open_times, request.trade_to) if request.trade_to is not None else len(series)
            # Signals on a candle depend only on the candles from the anchor up to it (the anchor
            # property), so candles after the last traded one are dropped unanalysed; the first
            # stays, so every symbol keeps its anchor, as in the CLI.
            candles[symbol] = series[:max(stop, 1)]
        if not any(_in_window(c.open_time, request.trade_from, request.trade_to)
                   for series in candles.values() for c in series):
            spans = ", ".join(f"{s} {series[0].open_time}..{series[-1].open_time}"
                              for s, series in loaded.candles.items())
            raise BadInput(f"empty time range: no candle opens in [{request.trade_from}, {request.trade_to}) "
                           f"of the {sum(map(len, loaded.candles.values()))} loaded ({spans})")

        await self._enter(job, tracker, PHASE_ANALYSING, candles=sum(map(len, candles.values())))
        signals: dict[str, Any] = {}
        for symbol, series in candles.items():
            signals[symbol] = await asyncio.to_thread(compute_signal_series, series, analysis_settings)
        replay = None
        if request.ai_decisions_of is not None and analysis_settings.ai_mode in TRADING_MODES:
            replay = ReplayCount(request.ai_decisions_of)
            for symbol, series in candles.items():
                decided = await decided_signals(self.db, request.ai_decisions_of, symbol, loaded.interval,
                                                series[0].open_time, series[-1].open_time)
                signals[symbol] = replayed(signals[symbol].signals(), decided, replay, request.trade_from,
                                           request.trade_to)

        await self._enter(job, tracker, PHASE_TRADING)
        try:
            run = await asyncio.to_thread(backtest_symbols, candles, signals, engine_settings,
                                          trade_from=request.trade_from, trade_to=request.trade_to,
                                          candles_validated=loaded.validated)
        except ValueError as exc:  # bad stored candles, or a range the backtester refuses
            raise BadInput(str(exc)) from None

        await self._enter(job, tracker, PHASE_STORING, trades_found=len(run.trades))
        document = document_of(request) or SettingsDocument(
            tuple(loaded.candles), loaded.interval, engine_settings, analysis_settings)
        parameters = report_parameters(document.to_dict(), analysis_settings, warmup_from=request.warmup_from,
                                       trade_from=request.trade_from, trade_to=request.trade_to)
        full = report_for(run, candles, loaded.interval, parameters)
        trades = full.pop("trades")
        equity_curve = full.pop("equity_curve")
        await self._store_trades(job, trades)
        duration = round(time.monotonic() - clock, 3)
        loaded_count = sum(map(len, loaded.candles.values()))
        summary = summary_of(request.backtest_id, run, loaded.interval, loaded_count, duration)
        first_anchor = min(series[0].open_time for series in loaded.candles.values())
        report = {
            "summary": asdict(summary),
            "metrics": dict(run.metrics),
            "report": full,
            "trades_total": len(trades),
            "equity_curve": equity_curve,
            "price_curves": price_curves(candles, request.trade_from, request.trade_to),
            "candles_in_position": run.candles_in_position,
            "entries_rejected": run.entries_rejected,
            "settings": {"engine": engine_settings.to_dict(), "analysis": analysis_settings.to_dict(),
                         "analysis_settings_hash": analysis_settings.settings_hash(),
                         "document": document.to_dict()},
            "data": {**loaded.description, "symbol": summary.symbol, "symbols": summary.symbols,
                     "interval": loaded.interval, "candles_loaded": loaded_count, "anchor": first_anchor,
                     "warmup_candles": warmup_candles(analysis_settings),
                     "trade_from": request.trade_from, "trade_to": request.trade_to,
                     "candles_traded": len(run.close_times), "traded_from": run.close_times[0],
                     "traded_to": run.close_times[-1],
                     "ai_replay": replay.to_dict() if replay is not None else None},
            "duration_s": duration,
        }
        finished = await self._finish(job, STATUS_COMPLETED, None, {**report, "phase": None, "progress": 1.0})
        if not finished:
            doc = await self.db.backtest_results.find_one({"backtest_id": request.backtest_id})
            if doc is not None and doc["status"] == STATUS_COMPLETED and doc.get("run_id") == job.run_id:
                return stored_summary(doc)  # another attempt of this run completed it first
            # Closed by another run, or deleted: the trades this attempt wrote belong to nothing.
            await self.db.backtest_trades.delete_many({"backtest_id": request.backtest_id, "run_id": job.run_id})
            if doc is not None and doc["status"] == STATUS_COMPLETED:
                return stored_summary(doc)
            raise ApplicationError(f"backtest {request.backtest_id} was closed by another run",
                                   type="BacktestNotOpen", non_retryable=True)
        return summary

    async def _store_trades(self, job: BacktestJob, trades: list[dict[str, Any]]) -> None:
        """Insert the run's trades in chunks; chunks an earlier attempt of this run inserted are skipped
        by the unique key (the same run gives the same trades)."""
        request = job.request
        rows = [{"backtest_id": request.backtest_id, "run_id": job.run_id, "user_id": request.user_id,
                 "chunk": k // TRADES_PER_CHUNK, "trades": trades[k:k + TRADES_PER_CHUNK]}
                for k in range(0, len(trades), TRADES_PER_CHUNK)]
        if not rows:
            return
        try:
            await self.db.backtest_trades.insert_many(rows, ordered=False)
        except BulkWriteError as exc:
            if any(e.get("code") != 11000 for e in exc.details.get("writeErrors", [])):
                raise

    async def _load(self, request: BacktestInput, tracker: _Tracker) -> _Loaded:
        names = dataset_names(request)
        if names:
            candles: dict[str, list[Candle]] = {}
            intervals: set[str] = set()
            for name in names:
                symbol, interval, series = await self._load_file(name, request.warmup_from)
                if symbol in candles:
                    raise BadInput(f"datasets: two files of {symbol}")
                candles[symbol] = series
                intervals.add(interval)
            if len(intervals) != 1:
                raise BadInput(f"datasets hold different intervals ({', '.join(sorted(intervals))})")
            description: dict[str, Any] = {"source": "dataset", "dataset": names[0]}
            if request.datasets is not None:
                description["datasets"] = names
            return _Loaded(candles, intervals.pop(), True, description)
        md = request.market_data
        assert md is not None  # input_problem checked there is exactly one source
        start = md.start if request.warmup_from is None else max(md.start, request.warmup_from)
        symbols = list(request.symbols or [md.symbol])
        stored: dict[str, list[Candle]] = {}
        for n, symbol in enumerate(symbols):
            rows: list[Candle] = []
            cursor = start
            while cursor <= md.end:
                batch = await read_candles(self.db, symbol, md.interval, start=cursor, end=md.end,
                                           limit=READ_BATCH, newest=False)
                rows.extend(batch)
                if len(batch) < READ_BATCH:
                    break
                cursor = batch[-1].open_time + 1
                done = (n + (cursor - start) / max(1, md.end - start + 1)) / len(symbols)
                tracker.fraction = PHASE_START[PHASE_ANALYSING] * done
                tracker.detail = {"candles": len(rows) + sum(map(len, stored.values()))}
            if not rows:
                raise BadInput(f"empty time range: no stored market_data for {symbol} {md.interval} "
                               f"with open time in [{start}, {md.end}]")
            stored[symbol] = rows
        description = {"source": "market_data", "market_data": asdict(md)}
        if request.symbols is not None:
            description["symbols"] = symbols
        return _Loaded(stored, md.interval, False, description)

    async def _load_file(self, name: str, warmup_from: int | None) -> tuple[str, str, list[Candle]]:
        path = self.candles_dir / name
        if path.parent != self.candles_dir or not path.is_file():
            known = sorted(p.name for p in self.candles_dir.glob("*.csv*"))
            raise BadInput(f"unknown dataset {name!r}; known: {', '.join(known)}")
        try:
            symbol, interval = parse_data_filename(path)
            candles = await asyncio.to_thread(load_candles, path)
        except (ValueError, OSError, EOFError) as exc:  # BadCandleError included: the file has a bad row
            raise BadInput(f"dataset {name}: {exc}") from None
        if warmup_from is not None:
            candles = candles[bisect.bisect_left([c.open_time for c in candles], warmup_from):]
        if not candles:
            raise BadInput(f"dataset {name} has no candle at or after warmup_from {warmup_from}")
        return symbol, interval, candles

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


def _in_window(open_time: int, start: int | None, stop: int | None) -> bool:
    return (start is None or open_time >= start) and (stop is None or open_time < stop)


def _request_doc(request: BacktestInput) -> dict[str, Any]:
    data = asdict(request)
    data.pop("backtest_id")
    data.pop("user_id")
    return data

