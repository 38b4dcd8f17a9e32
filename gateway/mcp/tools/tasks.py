"""Tasks: your long-running jobs as one list — backtests, price-model training jobs and Grok market analyses,
each a Temporal workflow you own. A task ID is ``<kind>:<id>`` (``backtest:…``, ``training:…``,
``analysis:…``). Reads are AUTHENTICATED; starting and cancelling are SENSITIVE and take an idempotency
key. Each is done by the kind's own service, so another user's task ID finds nothing."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, Field

from gateway.ai_schemas import AiAnalysisOut
from gateway.mcp.registry import IdempotencyKey, current, tool
from gateway.paper.schemas import BacktestIn, BacktestOut, Interval, StrictModel, Symbol
from gateway.routers.ai import analysis_out
from gateway.routers.ai_training import TrainingJobIn, TrainingJobOut
from gateway.routers.ai_training import _out as training_out
from gateway.routers.backtests import _out as backtest_out
from gateway.routers.backtests import _request as backtest_request
from services.ai import AnalyzeRequest
from services.ai_training import TrainingRequest
from services.tasks import KINDS, Task, TaskKind, TaskRequest

TaskId = Annotated[str, Field(pattern=r"^[a-z]{1,20}:[A-Za-z0-9_.-]{1,100}$",
                              description="<kind>:<id> as list_tasks gives it, e.g. backtest:3f2a…")]


class TaskOut(BaseModel):
    task_id: str = Field(description="<kind>:<id>")
    kind: TaskKind
    status: str = Field(description="queued, running, completed, failed or cancelled")
    progress: float = Field(description="0 to 1")
    subject: str | None = Field(description="what it works on: a candle file, or a symbol and interval")
    created_at: datetime | None
    finished_at: datetime | None
    error: str | None = Field(description="why it failed or that it was cancelled")


class TaskResultOut(BaseModel):
    task: TaskOut
    backtest: BacktestOut | None = Field(None, description=(
        "a backtest's record: summary, metrics and report once completed (trades: get_backtest_trades)"))
    training: TrainingJobOut | None = Field(None, description="a training job: folds, scores and model once completed")
    analysis: AiAnalysisOut | None = Field(None, description="a completed analysis's result")


class AnalysisTaskIn(StrictModel):
    kind: Literal["analysis"]
    symbol: Symbol
    interval: Interval = "5m"


class TrainingTaskIn(TrainingJobIn):
    kind: Literal["training"]


class BacktestTaskIn(BacktestIn):
    kind: Literal["backtest"]


TaskSpec = Annotated[AnalysisTaskIn | TrainingTaskIn | BacktestTaskIn, Field(discriminator="kind", description=(
    "what to start: {kind: analysis, symbol, interval} (Grok's analysis of the latest candle, done when this "
    "answers), {kind: training, symbol, interval, horizon, folds, lookback, candles, ridge} (a price model, as "
    "train_price_model) or {kind: backtest, dataset | datasets | market_data, engine_settings, …} (as run_backtest)"))]


def _task_out(task: Task) -> TaskOut:
    return TaskOut.model_validate(task, from_attributes=True)


def _request(spec: AnalysisTaskIn | TrainingTaskIn | BacktestTaskIn) -> TaskRequest:
    if isinstance(spec, BacktestTaskIn):
        return backtest_request(spec)
    if isinstance(spec, TrainingTaskIn):
        return TrainingRequest(symbol=spec.symbol, interval=spec.interval, horizon=spec.horizon, folds=spec.folds,
                               lookback=spec.lookback, candles=spec.candles, ridge=spec.ridge)
    return AnalyzeRequest(spec.symbol, spec.interval)


@tool("Tasks", "sensitive", title="Start a task", idempotent=True)
async def create_task(task: TaskSpec, idempotency_key: IdempotencyKey) -> TaskOut:
    """Start a backtest, a price-model training job or a Grok market analysis, as the kind's own tool would
    (run_backtest, train_price_model, analyze_market), and answer with the task: a backtest or training job
    queued (follow it with get_task_status), an analysis already done (its result: get_task_result)."""
    call = current()
    return _task_out(await call.services.tasks.create(call.principal, _request(task), idempotency_key))


@tool("Tasks", "authenticated", title="Your tasks", read_only=True)
async def list_tasks(
    kind: Annotated[TaskKind | None, Field(description=f"only this kind: {', '.join(KINDS)}")] = None,
    active_only: Annotated[bool, Field(description="only queued or running tasks")] = False,
    limit: Annotated[int, Field(ge=1, le=100)] = 20,
) -> list[TaskOut]:
    """Your backtests, training jobs and analyses as tasks, newest first: kind, status, progress (0-1), what
    each works on, when it was created and finished."""
    call = current()
    return [_task_out(t) for t in await call.services.tasks.list(call.principal, kind, active_only, limit)]


@tool("Tasks", "authenticated", title="A task's status", read_only=True)
async def get_task_status(task_id: TaskId) -> TaskOut:
    """One of your tasks: status (queued, running, completed, failed, cancelled), progress (0-1) and, when it
    failed, why."""
    call = current()
    return _task_out(await call.services.tasks.get(call.principal, task_id))


@tool("Tasks", "authenticated", title="A task's result", read_only=True)
async def get_task_result(task_id: TaskId) -> TaskResultOut:
    """One of your tasks with what it produced: a backtest's summary, metrics and report, a training job's
    scores and model, an analysis's signal and Grok's view (each once completed)."""
    call = current()
    detail = await call.services.tasks.detail(call.principal, task_id)
    backtest = None
    if detail.backtest is not None:
        backtest = backtest_out(detail.backtest).model_copy(
            update={"trades": None, "equity_curve": None, "price_curves": None})
    return TaskResultOut(
        task=_task_out(detail.task), backtest=backtest,
        training=training_out(detail.training) if detail.training is not None else None,
        analysis=analysis_out(detail.analysis) if detail.analysis is not None else None)


@tool("Tasks", "sensitive", title="Cancel a task", destructive=True, idempotent=True)
async def cancel_task(task_id: TaskId, idempotency_key: IdempotencyKey) -> TaskOut:
    """Cancel one of your queued or running tasks and answer once it has ended (usually within seconds; a
    backtest stops at its next progress report, up to ~10 s). A task that already ended is answered as it
    is (a completed result stays), so a repeat changes nothing; the key only marks the call as one intended
    action."""
    call = current()
    return _task_out(await call.services.tasks.cancel(call.principal, task_id))
