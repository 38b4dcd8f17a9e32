"""Price-prediction models: start a ``TrainingWorkflow`` (``training:{user}:{job_id}``), follow it,
cancel it, and serve predictions of the caller's latest completed model.

A start is checked as the workflow would (``input_refusal``), plus that the parameters fit in the
candles asked for and that enough candles of the stream are stored, so a bad request is refused naming
the field and writes nothing. The job is recorded as the caller's before the workflow starts, so a read
right after the start finds it. With an ``Idempotency-Key`` the job ID derives from the user and the
key: a repeat of the same request answers with the first job and starts nothing; the same key with
another request is refused. Every read names the caller's ``user_id``: another user's job is not
found, the same as one that does not exist.
"""

from __future__ import annotations

import asyncio
import math
import uuid
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from pymongo import DESCENDING
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError
from temporalio.client import Client, WorkflowFailureError
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from activities.market_store import read_candles
from core.contracts import TASK_QUEUE_AI, task_queue_name
from core.idempotency import body_hash, write_key
from core.settings import Settings
from core.training_contracts import (
    DEFAULT_CANDLES,
    DEFAULT_FOLDS,
    DEFAULT_HORIZON,
    DEFAULT_LOOKBACK,
    DEFAULT_RIDGE,
    STATUS_CANCELLED,
    STATUS_COMPLETED,
    STATUS_QUEUED,
    TERMINAL_STATUSES,
    TrainingInput,
    input_refusal,
    training_workflow_id,
)
from services.errors import Conflict, NotFound, Rejected, Unavailable
from services.idempotency import checked_key, request_body
from services.principal import Principal
from trading import price_model
from trading.candle import INTERVAL_MS
from workflows.training import TrainingWorkflow

ROUTE = "ai.training.start"
HIDDEN = {"_id": 0, "run_id": 0, "request_hash": 0}
LIST_HIDDEN = {**HIDDEN, "model": 0, "folds": 0, "scores.folds": 0}
# A cancel reaches a running fold with its next heartbeat (the SDK sends one at most every 0.8 x the
# timeout), and a dead worker's fold moves on after one timeout: 10 s keeps both short.
HEARTBEAT_TIMEOUT_S = 10.0
CANCEL_WAIT_S = 10.0  # how long a cancel waits for the job to end before answering


@dataclass(frozen=True)
class TrainingRequest:
    symbol: str
    interval: str
    horizon: int = DEFAULT_HORIZON
    folds: int = DEFAULT_FOLDS
    lookback: int = DEFAULT_LOOKBACK
    candles: int = DEFAULT_CANDLES
    ridge: float = DEFAULT_RIDGE


class AiTraining:
    def __init__(self, settings: Settings, temporal: Client, db: AsyncDatabase,
                 heartbeat_timeout_s: float = HEARTBEAT_TIMEOUT_S, cancel_wait_s: float = CANCEL_WAIT_S) -> None:
        self.settings = settings
        self.temporal = temporal
        self.db = db
        self.heartbeat_timeout_s = heartbeat_timeout_s
        self.cancel_wait_s = cancel_wait_s

    # -- start --------------------------------------------------------------------------------------
    async def start(self, principal: Principal, request: TrainingRequest, key: str | None) -> dict[str, Any]:
        principal.require("sensitive")
        checked = checked_key(key, required=False)
        job_id = f"tj-{write_key(principal.user_id, ROUTE, checked)[:32]}" if checked else f"tj-{uuid.uuid4().hex}"
        request_hash = body_hash(request_body(request))
        if checked and (repeated := await self._repeat(principal, job_id, request_hash)) is not None:
            return repeated
        job = TrainingInput(job_id=job_id, user_id=principal.user_id, **asdict(request),
                            heartbeat_timeout_s=self.heartbeat_timeout_s)
        refusal = input_refusal(job)
        if refusal is not None:
            raise Rejected(refusal.field, refusal.reason)
        await self._check_data(request)
        now = datetime.now(UTC)
        doc = {"job_id": job_id, "user_id": principal.user_id, "symbol": request.symbol, "interval": request.interval,
               "status": STATUS_QUEUED, "progress": 0.0, "folds_total": request.folds, "request": asdict(request),
               "request_hash": request_hash, "created_at": now, "queued_at": now, "updated_at": now}
        try:
            await self.db.training_jobs.insert_one(doc)
        except DuplicateKeyError:  # the same key, concurrently (or a 128-bit collision)
            repeated = await self._repeat(principal, job_id, request_hash) if checked else None
            if repeated is None:
                raise Unavailable("try again") from None
            return repeated
        try:
            await self.temporal.start_workflow(
                TrainingWorkflow.run, job, id=training_workflow_id(principal.user_id, job_id),
                task_queue=task_queue_name(TASK_QUEUE_AI, self.settings.task_queue_prefix))
        except WorkflowAlreadyStartedError:
            pass  # started by the repeat we raced with
        except RPCError as exc:
            await self.db.training_jobs.delete_one({"job_id": job_id, "status": STATUS_QUEUED})
            raise Unavailable(f"could not start: {exc.message}") from None
        return _shown(doc)

    async def _repeat(self, principal: Principal, job_id: str, request_hash: str) -> dict[str, Any] | None:
        """The job a keyed start made before (None: the key is new); the key with another request is refused."""
        doc = await self.db.training_jobs.find_one({"job_id": job_id, "user_id": principal.user_id}, {"_id": 0})
        if doc is None:
            return None
        if doc.get("request_hash") != request_hash:
            raise Rejected("Idempotency-Key", "this Idempotency-Key started another training job with other "
                                              "parameters; use a new key for a new job")
        return _shown(doc)

    async def _check_data(self, request: TrainingRequest) -> None:
        params = price_model.ModelParams(request.lookback, request.horizon, float(request.ridge))
        needed = price_model.min_candles(params, request.folds)
        if request.candles < needed:
            raise Rejected("candles", f"lookback {request.lookback}, horizon {request.horizon} and {request.folds} "
                                      f"folds need at least {needed} candles; candles is {request.candles}")
        stream = {"symbol": request.symbol, "interval": request.interval}
        stored = await self.db.market_data.count_documents(stream, limit=needed)
        where = f"{request.symbol} {request.interval}"
        if stored == 0:
            raise Rejected("symbol", f"no stored {where} candles: nothing to train on (GET /api/market/streams "
                                     "lists what is stored)")
        if stored < needed:
            raise Rejected("symbol", f"only {stored} stored {where} candles; these parameters need at least {needed}")

    # -- reads --------------------------------------------------------------------------------------
    async def _record(self, principal: Principal, job_id: str, hidden: dict[str, int] = HIDDEN) -> dict[str, Any]:
        doc = await self.db.training_jobs.find_one({"job_id": job_id, "user_id": principal.user_id}, hidden)
        if doc is None:
            raise NotFound("no such training job")
        return doc

    async def get(self, principal: Principal, job_id: str) -> dict[str, Any]:
        """Progress (status, folds done, fraction) and, once completed, the scores and the model."""
        return await self._record(principal, job_id)

    # -- cancel -------------------------------------------------------------------------------------
    async def cancel(self, principal: Principal, job_id: str) -> dict[str, Any]:
        """Cancel a queued or running job and answer once it has ended (or after ``cancel_wait_s``, still
        cancelling: a job no worker has taken yet is closed by the first that does). A job already ended
        is answered as it is: a completed model stays."""
        principal.require("sensitive")
        doc = await self._record(principal, job_id)
        if doc["status"] in TERMINAL_STATUSES:
            return doc
        handle = self.temporal.get_workflow_handle(training_workflow_id(principal.user_id, job_id))
        try:
            await handle.cancel()
            await asyncio.wait_for(handle.result(), self.cancel_wait_s)
        except WorkflowFailureError:
            pass  # ended: cancelled, or failed on its own
        except TimeoutError:
            pass  # still cancelling: the answer says running, a later read says cancelled
        except RPCError as exc:
            if exc.status != RPCStatusCode.NOT_FOUND:
                raise Unavailable(f"could not cancel: {exc.message}") from None
            # No workflow (its start failed): nothing runs, so the record is closed here.
            await self.db.training_jobs.update_one(
                {"job_id": job_id, "user_id": principal.user_id, "status": {"$nin": list(TERMINAL_STATUSES)}},
                {"$set": {"status": STATUS_CANCELLED, "error": "cancelled", "updated_at": datetime.now(UTC)}})
        return await self._record(principal, job_id)

    # -- predict ------------------------------------------------------------------------------------
    async def predict(self, principal: Principal, symbol: str, interval: str) -> dict[str, Any]:
        """The caller's latest completed model of ``symbol``/``interval`` applied to the latest stored
        candles: the predicted return and close ``horizon`` candles ahead, with the model's version and
        its walk-forward scores."""
        if interval not in INTERVAL_MS:
            raise Rejected("interval", f"interval {interval!r} unknown; known: {', '.join(INTERVAL_MS)}")
        doc = await self.db.training_jobs.find_one(
            {"user_id": principal.user_id, "symbol": symbol, "interval": interval, "status": STATUS_COMPLETED},
            {"_id": 0, "job_id": 1, "model": 1, "model_version": 1, "trained_through": 1, "scores": 1},
            sort=[("finished_at", DESCENDING)])
        if doc is None:
            raise NotFound(f"no trained model of yours for {symbol} {interval}: train one with "
                           "POST /api/ai/training-jobs")
        model = doc["model"]
        lookback, horizon = model["lookback"], model["horizon"]
        candles = await read_candles(self.db, symbol, interval, limit=lookback + 1)
        ridge = price_model.Ridge(model["mean"], model["scale"], model["weights"], model["intercept"])
        try:
            log_return = price_model.predict_latest(ridge, candles, lookback)
        except ValueError as exc:
            raise Conflict(None, f"the latest stored {symbol} {interval} candles cannot be predicted from: "
                                 f"{exc}") from None
        last = candles[-1]
        step = INTERVAL_MS[interval]
        return {
            "symbol": symbol, "interval": interval, "job_id": doc["job_id"], "model_version": doc["model_version"],
            "trained_through": doc["trained_through"], "horizon": horizon,
            "from_open_time": last.open_time, "from_close": last.close,
            "target_close_time": last.close_time + horizon * step,
            "predicted_log_return": log_return, "predicted_return": math.expm1(log_return),
            "predicted_close": last.close * math.exp(log_return),
            "candles_since_training": (last.open_time - doc["trained_through"]) // step,
            "scores": doc["scores"],
        }

    # Last: the method's name would hide the builtin ``list`` from the annotations below it.
    async def list(self, principal: Principal, limit: int, offset: int) -> list[dict[str, Any]]:
        """The caller's training jobs, newest first, with progress and overall scores (no model, no folds)."""
        cursor = self.db.training_jobs.find({"user_id": principal.user_id}, LIST_HIDDEN).sort([("created_at", -1)])
        return [d async for d in cursor.skip(offset).limit(limit)]


def _shown(doc: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in doc.items() if k not in HIDDEN}
