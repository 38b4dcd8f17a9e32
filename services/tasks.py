"""Tasks: the caller's long-running jobs (backtests, price-model training, AI market analyses) seen as one
list, each a Temporal workflow the caller owns.

A task ID names its kind and the kind's own ID: ``backtest:{backtest_id}``, ``training:{job_id}``,
``analysis:{request_id}``. Every start, read and cancel is the kind's own service's (``Backtests``,
``AiTraining``, ``AiAnalysis``) with its ownership checks, so another user's task is not found, the
same as one that does not exist. This module only maps what they answer to one shape.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, get_args

from core.ai_contracts import AiAnalysisResult
from services.ai import AiAnalysis, AnalysisRun, AnalyzeRequest
from services.ai_training import AiTraining, TrainingRequest
from services.backtests import BacktestRequest, Backtests
from services.errors import Rejected
from services.principal import Principal

TaskKind = Literal["backtest", "training", "analysis"]
KINDS: tuple[TaskKind, ...] = get_args(TaskKind)
ACTIVE = ("queued", "running")
MAX_TASKS = 100
OWN_ID = re.compile(r"^[A-Za-z0-9_.-]{1,100}$")
TaskRequest = BacktestRequest | TrainingRequest | AnalyzeRequest


@dataclass(frozen=True)
class Task:
    task_id: str
    kind: TaskKind
    status: str  # queued, running, completed, failed or cancelled
    progress: float  # 0 to 1
    subject: str | None  # what it works on: a data file, or a symbol and interval
    created_at: datetime | None
    finished_at: datetime | None
    error: str | None = None


@dataclass(frozen=True)
class TaskDetail:
    """A task with the kind's own record: the backtest or training job as its service reads it, or the
    analysis's result once it has completed."""

    task: Task
    backtest: dict[str, Any] | None = None
    training: dict[str, Any] | None = None
    analysis: AiAnalysisResult | None = None


def parse_task_id(task_id: str) -> tuple[TaskKind, str]:
    kind, _, own = task_id.partition(":")
    if kind not in KINDS or not OWN_ID.match(own):
        raise Rejected("task_id", f"a task ID is <kind>:<id> with kind one of {', '.join(KINDS)}, as list_tasks "
                                  "gives it")
    return kind, own  # type: ignore[return-value]  # checked against KINDS just above


def _backtest_subject(doc: dict[str, Any]) -> str | None:
    request = doc.get("request") or {}  # written when the workflow opens the record
    if request.get("dataset"):
        return str(request["dataset"])
    if request.get("datasets"):
        return ", ".join(request["datasets"])
    stored = request.get("market_data")
    if stored:
        return f"{', '.join(request.get('symbols') or [stored['symbol']])} {stored['interval']} stored candles"
    return None


def _backtest_task(doc: dict[str, Any]) -> Task:
    return Task(f"backtest:{doc['backtest_id']}", "backtest", doc["status"], float(doc.get("progress") or 0.0),
                _backtest_subject(doc), doc.get("created_at"), doc.get("finished_at"), doc.get("error"))


def _training_task(doc: dict[str, Any]) -> Task:
    return Task(f"training:{doc['job_id']}", "training", doc["status"], float(doc.get("progress") or 0.0),
                f"{doc['symbol']} {doc['interval']}", doc.get("created_at"), doc.get("finished_at"), doc.get("error"))


def _analysis_task(run: AnalysisRun) -> Task:
    subject = f"{run.symbol} {run.interval}" if run.symbol else None
    return Task(f"analysis:{run.request_id}", "analysis", run.status, 1.0 if run.status == "completed" else 0.0,
                subject, run.started_at, run.closed_at, run.error)


def _newest_first(task: Task) -> datetime:
    return task.created_at or datetime.min.replace(tzinfo=UTC)


class Tasks:
    def __init__(self, backtests: Backtests, training: AiTraining, analyses: AiAnalysis) -> None:
        self.backtests = backtests
        self.training = training
        self.analyses = analyses

    async def create(self, principal: Principal, request: TaskRequest, key: str | None) -> Task:
        """Start a task of the request's kind through its service (an analysis answers once it is done);
        the same key with the same request answers with the first task."""
        principal.require("sensitive")
        if isinstance(request, BacktestRequest):
            return _backtest_task(await self.backtests.start(principal, request, key))
        if isinstance(request, TrainingRequest):
            return _training_task(await self.training.start(principal, request, key))
        done = await self.analyses.run_analysis(principal, request, key)
        return _analysis_task(await self.analyses.run(principal, done.request_id))

    async def get(self, principal: Principal, task_id: str) -> Task:
        return (await self.detail(principal, task_id)).task

    async def detail(self, principal: Principal, task_id: str) -> TaskDetail:
        principal.require("authenticated")
        kind, own = parse_task_id(task_id)
        if kind == "backtest":
            doc = await self.backtests.get(principal, own)
            return TaskDetail(_backtest_task(doc), backtest=doc)
        if kind == "training":
            doc = await self.training.get(principal, own)
            return TaskDetail(_training_task(doc), training=doc)
        run = await self.analyses.run(principal, own)
        result = await self.analyses.result(principal, own) if run.status == "completed" else None
        return TaskDetail(_analysis_task(run), analysis=result)

    async def cancel(self, principal: Principal, task_id: str) -> Task:
        """Cancel a queued or running task; one that already ended is answered as it is."""
        principal.require("sensitive")
        kind, own = parse_task_id(task_id)
        if kind == "backtest":
            return _backtest_task(await self.backtests.cancel(principal, own))
        if kind == "training":
            return _training_task(await self.training.cancel(principal, own))
        return _analysis_task(await self.analyses.cancel(principal, own))

    # Last: the method's name would hide the builtin ``list`` from the annotations below it.
    async def list(self, principal: Principal, kind: TaskKind | None, active_only: bool, limit: int) -> list[Task]:
        """The caller's newest tasks first, of one kind or all; ``active_only``: queued or running ones."""
        principal.require("authenticated")
        if not 1 <= limit <= MAX_TASKS:
            raise Rejected("limit", f"limit must be from 1 to {MAX_TASKS}")
        if kind is not None and kind not in KINDS:
            raise Rejected("kind", f"kind must be one of {', '.join(KINDS)}")
        # Active tasks are few but need not be among the newest: look further back for them.
        each = MAX_TASKS if active_only else limit
        found: list[Task] = []
        if kind in (None, "backtest"):
            found += [_backtest_task(d) for d in await self.backtests.list(principal, each, 0)]
        if kind in (None, "training"):
            found += [_training_task(d) for d in await self.training.list(principal, each, 0)]
        if kind in (None, "analysis"):
            found += [_analysis_task(r) for r in await self.analyses.runs(principal, each)]
        if active_only:
            found = [t for t in found if t.status in ACTIVE]
        return sorted(found, key=_newest_first, reverse=True)[:limit]
