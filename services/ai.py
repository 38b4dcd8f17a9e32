"""AI market analysis use cases: ask for an analysis of the latest stored candle (technical, then
Grok's view or the fallback with its reason), read recent Grok answers of a symbol, and see what
Grok cost today against the budgets, with the circuit breaker's state.

An analysis is an ``AiAnalysisWorkflow`` (``ai-analysis:{user}:{request}``): the same Idempotency-Key
with the same request returns the first result, whatever happened in between. The caller's analyses
are listed, read and cancelled as those workflows (their memo names the symbol, interval and candle),
always under the caller's own workflow-ID prefix, so another user's request ID finds nothing.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase
from temporalio.client import (
    Client,
    WorkflowExecution,
    WorkflowExecutionStatus,
    WorkflowFailureError,
    WorkflowHandle,
)
from temporalio.service import RPCError, RPCStatusCode

from activities.ai_spend import GLOBAL, Spend, day_of, user_scope
from core.ai_contracts import AiAnalysisInput, AiAnalysisResult, GrokCallPolicy, ai_analysis_workflow_id
from core.contracts import TASK_QUEUE_AI, TASK_QUEUE_TRADING, session_workflow_id, task_queue_name
from core.settings import Settings
from services import paper_reads
from services.errors import Conflict, NotFound, Rejected, Unavailable
from services.idempotency import update_id
from services.principal import Principal
from services.workflow_runs import failure_message, run_once
from trading.ai_analysis import nano_to_usd
from trading.candle import INTERVAL_MS
from workflows.ai_analysis import AiAnalysisWorkflow

SYMBOL = re.compile(r"^[A-Z0-9]{2,20}$")
RESULT_SLACK_S = 30.0  # beyond Grok's deadline: the technical analysis and Temporal's own latency
MAX_SIGNALS = 100
MAX_RUNS = 100
CANCEL_WAIT_S = 5.0  # how long a cancel waits for the analysis to end before answering
REQUEST_ID = re.compile(r"^[A-Za-z0-9-]{1,100}$")
USER_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")  # what may go into a visibility query unquoted
RUN_STATUS = {WorkflowExecutionStatus.RUNNING: "running", WorkflowExecutionStatus.COMPLETED: "completed",
              WorkflowExecutionStatus.CANCELED: "cancelled"}  # any other end: failed


@dataclass(frozen=True)
class AnalyzeRequest:
    symbol: str
    interval: str = "5m"


@dataclass(frozen=True)
class AnalysisRun:
    """One analysis the caller asked for, as its workflow stands."""

    request_id: str
    status: str  # running, completed, failed or cancelled
    symbol: str | None
    interval: str | None
    open_time: int | None
    started_at: datetime | None
    closed_at: datetime | None
    error: str | None = None


@dataclass(frozen=True)
class AnalysisDone:
    request_id: str
    result: AiAnalysisResult


def grok_policy(settings: Settings) -> GrokCallPolicy:
    return GrokCallPolicy(task_queue=task_queue_name(TASK_QUEUE_AI, settings.task_queue_prefix),
                          model=settings.xai_model, deadline_s=settings.ai_deadline_s,
                          call_timeout_s=settings.ai_call_timeout_s, max_attempts=settings.ai_max_attempts,
                          retry_initial_s=settings.ai_retry_initial_s)


def _checked(symbol: str, interval: str) -> tuple[str, str]:
    symbol = symbol.upper()
    if not SYMBOL.match(symbol):
        raise Rejected("symbol", "a symbol is 2 to 20 letters or digits, such as BTCUSDT")
    if interval not in INTERVAL_MS:
        raise Rejected("interval", f"interval must be one of {', '.join(INTERVAL_MS)}")
    return symbol, interval


class AiAnalysis:
    def __init__(self, settings: Settings, temporal: Client, db: AsyncDatabase) -> None:
        self.settings = settings
        self.temporal = temporal
        self.db = db
        self.spend = Spend(db)

    async def analyze(self, principal: Principal, request: AnalyzeRequest, key: str | None) -> AiAnalysisResult:
        """The analysis of the latest stored candle of (symbol, interval), with the caller's session's
        analysis settings, so it matches what their session sees."""
        return (await self.run_analysis(principal, request, key)).result

    async def run_analysis(self, principal: Principal, request: AnalyzeRequest, key: str | None) -> AnalysisDone:
        """``analyze`` with the request ID that names its run (``run``, ``cancel``)."""
        principal.require("authenticated")
        symbol, interval = _checked(request.symbol, request.interval)
        latest = await self.db.market_data.find_one({"symbol": symbol, "interval": interval}, {"open_time": 1},
                                                    sort=[("open_time", -1)])
        if latest is None:
            raise NotFound(f"no stored {symbol} {interval} candles to analyse")
        record = await paper_reads.settings_record(self.db, session_workflow_id(principal.user_id))
        job = AiAnalysisInput(
            user_id=principal.user_id, symbol=symbol, interval=interval, open_time=int(latest["open_time"]),
            analysis_settings=record["analysis_settings"],
            trading_task_queue=task_queue_name(TASK_QUEUE_TRADING, self.settings.task_queue_prefix),
            grok=grok_policy(self.settings))
        request_id = update_id(principal.user_id, "ai.analyze", key, AnalyzeRequest(symbol, interval))
        workflow_id = ai_analysis_workflow_id(principal.user_id, request_id)
        result = await run_once(self.temporal, AiAnalysisWorkflow.run, job, workflow_id=workflow_id,
                                task_queue=task_queue_name(TASK_QUEUE_AI, self.settings.task_queue_prefix),
                                wait_s=self.settings.ai_deadline_s + RESULT_SLACK_S, what="the analysis",
                                memo={"symbol": symbol, "interval": interval, "open_time": job.open_time})
        return AnalysisDone(request_id, result)

    # -- the caller's analyses as workflows ---------------------------------------------------------
    async def runs(self, principal: Principal, limit: int) -> list[AnalysisRun]:
        """The caller's analyses, newest first (Temporal's list shows a run within moments of its start)."""
        principal.require("authenticated")
        if not 1 <= limit <= MAX_RUNS:
            raise Rejected("limit", f"limit must be from 1 to {MAX_RUNS}")
        if not USER_ID.match(principal.user_id):
            return []
        prefix = ai_analysis_workflow_id(principal.user_id, "")
        try:
            found = [await _run_of(w) async for w in self.temporal.list_workflows(
                f"WorkflowId STARTS_WITH '{prefix}' AND WorkflowType = 'AiAnalysisWorkflow'", limit=limit)]
        except RPCError as exc:
            raise Unavailable(f"could not list the analyses: {exc.message}") from None
        far_past = datetime.min.replace(tzinfo=UTC)
        return sorted(found, key=lambda r: r.started_at or far_past, reverse=True)

    async def run(self, principal: Principal, request_id: str) -> AnalysisRun:
        """One of the caller's analyses: its status, what it analyses and, when it failed, why."""
        principal.require("authenticated")
        handle = self._handle(principal, request_id)
        try:
            described = await handle.describe()
            run = await _run_of(described)
            if run.status != "failed":
                return run
            try:
                await handle.result()
            except WorkflowFailureError as exc:
                return replace(run, error=failure_message(exc) or "failed")
            return run
        except RPCError as exc:
            if exc.status == RPCStatusCode.NOT_FOUND:
                raise NotFound("no such analysis") from None
            raise Unavailable(f"could not read the analysis: {exc.message}") from None

    async def result(self, principal: Principal, request_id: str) -> AiAnalysisResult:
        """A completed analysis's result, as ``analyze`` answered it."""
        run = await self.run(principal, request_id)
        if run.status != "completed":
            raise Conflict(None, f"the analysis is {run.status}; its result comes once it completes")
        try:
            return await self._handle(principal, request_id).result()
        except RPCError as exc:
            raise Unavailable(f"could not read the analysis: {exc.message}") from None

    async def cancel(self, principal: Principal, request_id: str) -> AnalysisRun:
        """Cancel a running analysis and answer once it has ended (or after ``CANCEL_WAIT_S``, still
        running); one that already ended is answered as it is."""
        principal.require("sensitive")
        run = await self.run(principal, request_id)
        if run.status != "running":
            return run
        handle = self._handle(principal, request_id)
        try:
            await handle.cancel()
            await asyncio.wait_for(handle.result(), CANCEL_WAIT_S)
        except (WorkflowFailureError, TimeoutError):
            pass  # ended (cancelled, or failed on its own), or still ending: the read below says which
        except RPCError as exc:
            raise Unavailable(f"could not cancel the analysis: {exc.message}") from None
        return await self.run(principal, request_id)

    def _handle(self, principal: Principal, request_id: str) -> WorkflowHandle[Any, AiAnalysisResult]:
        if not REQUEST_ID.match(request_id):
            raise NotFound("no such analysis")
        return self.temporal.get_workflow_handle_for(AiAnalysisWorkflow.run,
                                                     ai_analysis_workflow_id(principal.user_id, request_id))

    async def signals(self, principal: Principal, symbol: str, interval: str | None,
                      limit: int) -> list[dict[str, Any]]:
        """Grok's recent answers about a symbol (market analyses, the same for every user), newest first."""
        principal.require("authenticated")
        symbol, _ = _checked(symbol, interval or "5m")
        if not 1 <= limit <= MAX_SIGNALS:
            raise Rejected("limit", f"limit must be from 1 to {MAX_SIGNALS}")
        query: dict[str, Any] = {"kind": "grok", "symbol": symbol}
        if interval is not None:
            query["interval"] = interval
        fields = {"_id": 0, "symbol": 1, "interval": 1, "open_time": 1, "model": 1, "answer": 1, "technical": 1,
                  "created_at": 1}
        cursor = self.db.ai_analysis_results.find(query, fields).sort([("open_time", -1), ("created_at", -1)])
        return await cursor.limit(limit).to_list()

    async def usage(self, principal: Principal) -> dict[str, Any]:
        """Today's Grok spend (UTC day) of the caller and of everyone, against the budgets, and the
        circuit breaker of the configured model."""
        principal.require("authenticated")
        day = day_of(datetime.now(UTC))
        mine = await self.spend.day(user_scope(principal.user_id), day)
        everyone = await self.spend.day(GLOBAL, day)
        breaker = await self.db.ai_breakers.find_one({"model": self.settings.xai_model}, {"_id": 0})
        return {
            "day": day,
            "model": self.settings.xai_model,
            "configured": self.settings.xai_key is not None,
            "user": {**mine, "cost_usd": nano_to_usd(mine["nano_usd"]),
                     "budget_usd": self.settings.ai_daily_budget_user_usd},
            "global": {"cost_usd": nano_to_usd(everyone["nano_usd"]),
                       "budget_usd": self.settings.ai_daily_budget_global_usd},
            "breaker": breaker_view(breaker),
        }


def breaker_view(doc: dict[str, Any] | None) -> dict[str, Any]:
    if doc is None:
        return {"state": "closed", "failures": 0, "retry_at": None, "last_error": None}
    return {"state": doc["state"], "failures": doc.get("failures", 0), "retry_at": doc.get("retry_at"),
            "last_error": doc.get("last_error")}


async def _run_of(execution: WorkflowExecution) -> AnalysisRun:
    memo = await execution.memo()
    status = RUN_STATUS.get(execution.status, "failed") if execution.status is not None else "running"
    return AnalysisRun(request_id=execution.id.split(":", 2)[2], status=status, symbol=memo.get("symbol"),
                       interval=memo.get("interval"), open_time=memo.get("open_time"),
                       started_at=execution.start_time, closed_at=execution.close_time)
