"""The training activities: record a job's status, pin its data, score one fold, fit the final model.

A job is split so that a worker dying mid-training costs at most the fold in flight: ``plan_training``
pins the candle range (the latest ``candles`` stored candles), each ``run_training_fold`` reads that
range, trains on the past and scores the next block, and returns its sums to the workflow, which keeps
them in its state (and so in its history); ``finish_training`` adds the folds up, fits the model on
every sample and stores scores and model. A retried activity reads the same candles and computes the
same bits (``trading.price_model`` is exact), so a job interrupted any number of times reports the
same scores as one that never was. The CPU work runs on a thread so the worker's event loop, which
also serves workflows and heartbeats, never blocks.

One ``training_jobs`` document per ``job_id`` (unique index), created queued by the service. Every
write after ``open_training`` is conditional on the workflow run that owns the document (``run_id``)
and on the status not being final, so a late attempt of a dead worker can neither write twice nor undo
a result; the first final status written stands.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.market_store import read_candles
from core.training_contracts import (
    INPUT_ERROR,
    STATUS_COMPLETED,
    STATUS_QUEUED,
    STATUS_RUNNING,
    TERMINAL_STATUSES,
    FinishInput,
    FoldInput,
    FoldScores,
    TrainingInput,
    TrainingJob,
    TrainingMark,
    TrainingPlan,
    TrainingResult,
    TrainingStep,
    model_version,
)
from trading import price_model
from trading.candle import Candle

log = logging.getLogger("durabot.training")

HEARTBEAT_EVERY_S = 2.0
# Fields a new run of the same job_id clears (a rerun after a failure or a cancel).
RESULT_FIELDS = ("scores", "model", "model_version", "trained_through", "data", "folds", "folds_done",
                 "error", "started_at", "finished_at")


def params_of(request: TrainingInput) -> price_model.ModelParams:
    return price_model.ModelParams(request.lookback, request.horizon, float(request.ridge))


def fold_stats(scores: FoldScores) -> price_model.FoldStats:
    return price_model.FoldStats(**asdict(scores))


def live_progress(folds_done: int, folds_total: int) -> float:
    """The fraction done while running: each fold one part, the final fit the last."""
    return round(folds_done / (folds_total + 1), 4)


def stored_result(doc: dict[str, Any]) -> TrainingResult:
    data = doc["data"]
    return TrainingResult(job_id=doc["job_id"], symbol=doc["request"]["symbol"], interval=doc["request"]["interval"],
                          model_version=doc["model_version"], trained_through=doc["trained_through"],
                          candles=data["candles"], samples=data["samples"], scores=doc["scores"])


def _now() -> datetime:
    return datetime.now(UTC)


def _owned(job_id: str, run_id: str) -> dict[str, Any]:
    """The filter of every write after the first: this run's document, status not final."""
    return {"job_id": job_id, "run_id": run_id, "status": {"$nin": list(TERMINAL_STATUSES)}}


def _request_doc(request: TrainingInput) -> dict[str, Any]:
    data = asdict(request)
    data.pop("job_id")
    data.pop("user_id")
    return data


def _bad(reason: str) -> ApplicationError:
    return ApplicationError(reason, type=INPUT_ERROR, non_retryable=True)


def _gaps(candles: list[Candle]) -> int:
    return sum(1 for a, b in zip(candles, candles[1:], strict=False) if b.open_time - a.open_time != a.interval_ms)


class TrainingActivities:
    def __init__(self, db: AsyncDatabase) -> None:
        self.db = db

    # ------------------------------------------------------------------ status records
    @activity.defn
    async def open_training(self, job: TrainingJob) -> TrainingResult | None:
        """Record the job as queued for this run (a rerun after a failure or cancel starts afresh). A
        completed job is final: its stored result is returned instead."""
        request = job.request
        docs = self.db.training_jobs
        doc = await docs.find_one({"job_id": request.job_id})
        if doc is not None and doc["status"] == STATUS_COMPLETED:
            return stored_result(doc)
        if doc is not None and doc.get("run_id") == job.run_id:
            return None  # this activity retried: queued already
        now = _now()
        try:
            await docs.update_one(
                {"job_id": request.job_id, "status": {"$ne": STATUS_COMPLETED}},
                {
                    "$set": {"user_id": request.user_id, "symbol": request.symbol, "interval": request.interval,
                             "run_id": job.run_id, "status": STATUS_QUEUED,
                             "progress": 0.0, "folds_total": request.folds, "request": _request_doc(request),
                             "queued_at": now, "updated_at": now},
                    "$unset": {name: "" for name in RESULT_FIELDS},
                    "$setOnInsert": {"created_at": now},
                },
                upsert=True,
            )
        except DuplicateKeyError:
            # Completed between our read and our write: the filter missed it and the upsert hit the key.
            doc = await docs.find_one({"job_id": request.job_id})
            if doc is not None and doc["status"] == STATUS_COMPLETED:
                return stored_result(doc)
            raise
        return None

    @activity.defn
    async def record_training_step(self, step: TrainingStep) -> bool:
        """Record the folds done so far (their scores, and the progress they make)."""
        done = [fold_stats(f) for f in step.folds]
        return await self._write(step.job_id, step.run_id, {
            "folds_done": len(done), "folds": price_model.scores(done)["folds"],
            "progress": live_progress(len(done), step.folds_total)})

    @activity.defn
    async def mark_training(self, mark: TrainingMark) -> TrainingResult | None:
        """Set a final status the workflow decided (failed, cancelled); a no-op once final. Returns the
        stored result when the job completed first (a cancel that came too late). A job cancelled
        before ``open_training`` ran for this run is still the service's record: closed here too."""
        now = _now()
        await self.db.training_jobs.update_one(
            {"job_id": mark.job_id, "status": {"$nin": list(TERMINAL_STATUSES)},
             "$or": [{"run_id": mark.run_id}, {"run_id": {"$exists": False}}]},
            {"$set": {"status": mark.status, "error": mark.error, "finished_at": now, "updated_at": now}})
        doc = await self.db.training_jobs.find_one({"job_id": mark.job_id, "run_id": mark.run_id})
        return stored_result(doc) if doc is not None and doc["status"] == STATUS_COMPLETED else None

    # ------------------------------------------------------------------ the work
    @activity.defn
    async def plan_training(self, job: TrainingJob) -> TrainingPlan:
        """Pin the job's data: the latest ``candles`` stored candles, checked and counted."""
        request = job.request
        await self._require_open(job)
        async with self._heartbeating():
            candles = await read_candles(self.db, request.symbol, request.interval, limit=request.candles)
            params = params_of(request)
            needed = price_model.min_candles(params, request.folds)
            where = f"{request.symbol} {request.interval}"
            if not candles:
                raise _bad(f"no stored {where} candles: nothing to train on")
            if len(candles) < needed:
                raise _bad(f"only {len(candles)} stored {where} candles; lookback {request.lookback}, "
                           f"horizon {request.horizon} and {request.folds} folds need at least {needed}")
            try:
                data = await asyncio.to_thread(price_model.dataset, candles, params)
            except ValueError as exc:
                raise _bad(f"bad stored {where} candles: {exc}") from None
            plan = TrainingPlan(candles[0].open_time, candles[-1].open_time, len(candles), len(data.y), _gaps(candles))
            await self._write(request.job_id, job.run_id, {
                "status": STATUS_RUNNING, "started_at": _now(), "data": asdict(plan), "folds_done": 0,
                "progress": live_progress(0, request.folds)})
        return plan

    @activity.defn
    async def run_training_fold(self, task: FoldInput) -> FoldScores:
        """Train on the samples before fold ``task.fold``'s block and score it on that block."""
        request = task.job.request
        fields = {"job_id": request.job_id, "fold": task.fold, "attempt": activity.info().attempt}
        log.info("fold start", extra={"fields": fields})
        async with self._heartbeating():
            candles = await self._pinned(task.job, task.plan)
            stats = await asyncio.to_thread(_score_fold, candles, params_of(request), request.folds, task.fold)
        log.info("fold end", extra={"fields": fields})
        return FoldScores(**asdict(stats))

    @activity.defn
    async def finish_training(self, task: FinishInput) -> TrainingResult:
        """Add the folds up, fit the model on every sample and store scores and model with ``completed``."""
        request = task.job.request
        async with self._heartbeating():
            candles = await self._pinned(task.job, task.plan)
            model = await asyncio.to_thread(_fit_all, candles, params_of(request))
        scores = price_model.scores([fold_stats(f) for f in task.folds])
        trained_through = task.plan.last_open_time
        result = TrainingResult(
            job_id=request.job_id, symbol=request.symbol, interval=request.interval,
            model_version=model_version(request.job_id, trained_through), trained_through=trained_through,
            candles=task.plan.candles, samples=task.plan.samples, scores=scores)
        written = await self._write(request.job_id, task.job.run_id, {
            "status": STATUS_COMPLETED, "progress": 1.0, "scores": scores, "folds": scores["folds"],
            "folds_done": len(task.folds), "model_version": result.model_version,
            "trained_through": trained_through, "error": None, "finished_at": _now(),
            "model": {"features": price_model.feature_names(request.lookback), "lookback": request.lookback,
                      "horizon": request.horizon, "ridge": float(request.ridge), **asdict(model)},
        })
        if not written:
            doc = await self.db.training_jobs.find_one({"job_id": request.job_id, "run_id": task.job.run_id})
            if doc is not None and doc["status"] == STATUS_COMPLETED:
                return stored_result(doc)  # this activity retried after its write
            raise ApplicationError(f"training job {request.job_id} is not open for run {task.job.run_id}",
                                   type="TrainingNotOpen", non_retryable=True)
        return result

    # ------------------------------------------------------------------ helpers
    async def _pinned(self, job: TrainingJob, plan: TrainingPlan) -> list[Candle]:
        request = job.request
        candles = await read_candles(self.db, request.symbol, request.interval, start=plan.first_open_time,
                                     end=plan.last_open_time, limit=plan.candles + 1, newest=False)
        if len(candles) != plan.candles:
            raise _bad(f"the stored {request.symbol} {request.interval} candles of the job changed "
                                 f"({len(candles)} now, {plan.candles} when it started)")
        return candles

    async def _require_open(self, job: TrainingJob) -> None:
        doc = await self.db.training_jobs.find_one(_owned(job.request.job_id, job.run_id), {"_id": 1})
        if doc is None:
            raise ApplicationError(f"training job {job.request.job_id} is not open for run {job.run_id}",
                                   type="TrainingNotOpen", non_retryable=True)

    @contextlib.asynccontextmanager
    async def _heartbeating(self) -> AsyncIterator[None]:
        """Heartbeat while the body runs (how a cancel, or a dead worker, is noticed). A worker shutting
        down fails the attempt at once, so that another worker retries it now."""
        beat = asyncio.create_task(self._beat())
        try:
            yield
        except asyncio.CancelledError:
            details = activity.cancellation_details()
            if (details is None or not details.cancel_requested) and activity.is_worker_shutdown():
                raise ApplicationError("the worker shut down mid-run", type="WorkerShutdown") from None
            raise
        finally:
            beat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await beat

    async def _beat(self) -> None:
        timeout = activity.info().heartbeat_timeout
        every = min(HEARTBEAT_EVERY_S, timeout.total_seconds() / 3) if timeout else HEARTBEAT_EVERY_S
        while True:
            activity.heartbeat()
            await asyncio.sleep(every)

    async def _write(self, job_id: str, run_id: str, fields: dict[str, Any]) -> bool:
        result = await self.db.training_jobs.update_one(_owned(job_id, run_id),
                                                        {"$set": {**fields, "updated_at": _now()}})
        return result.matched_count == 1


def _score_fold(candles: list[Candle], params: price_model.ModelParams, folds: int, fold: int) -> price_model.FoldStats:
    data = price_model.dataset(candles, params)
    span = price_model.fold_spans(len(data.y), folds, params.horizon)[fold - 1]
    return price_model.evaluate_fold(data, span, params.ridge)


def _fit_all(candles: list[Candle], params: price_model.ModelParams) -> price_model.Ridge:
    data = price_model.dataset(candles, params)
    return price_model.fit(data.x, data.y, params.ridge)
