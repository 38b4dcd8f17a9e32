"""``/api/backtests``: start a ``BacktestWorkflow`` (``backtest:{id}``) and follow its progress.

POST checks the request as the workflow would (``input_problem``) plus that the dataset exists, so
a bad request is a 422 naming the field rather than a failed run; it records the backtest as the
caller's before the workflow starts, so a GET right after the POST finds it. Every read names the
caller's ``user_id``: another user's backtest is a 404, the same as one that does not exist.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Query, status
from pymongo.errors import DuplicateKeyError
from temporalio.service import RPCError

from gateway.auth.deps import AUTH_ERRORS, CurrentUser, Responses
from gateway.deps import DbDep, SettingsDep, TemporalDep
from gateway.paper import reads
from gateway.paper.route import RejectingRoute
from gateway.paper.schemas import BacktestIn, BacktestOut, ErrorOut, RejectedOut
from gateway.paper.session import rejection
from trading.analysis_settings import AnalysisSettings
from workflows.backtest import BacktestWorkflow
from workflows.backtest_contracts import (
    STATUS_QUEUED,
    BacktestInput,
    MarketDataRange,
    backtest_workflow_id,
    input_problem,
)
from workflows.contracts import TASK_QUEUE_TRADING, task_queue_name

router = APIRouter(prefix="/api/backtests", tags=["backtests"], route_class=RejectingRoute)

BAD_BODY: Responses = {400: {"model": ErrorOut, "description": "The body is not valid JSON"}}
REJECTED: Responses = {422: {"model": RejectedOut, "description": "Invalid request (the field and the reason)"}}
NOT_FOUND: Responses = {404: {"model": ErrorOut, "description": "No such backtest of yours"}}
UNAVAILABLE: Responses = {503: {"model": ErrorOut, "description": "The backtest could not be started"}}
BacktestId = Annotated[str, Path(pattern=r"^[A-Za-z0-9_.-]{1,100}$")]
LIST_FIELDS = {"_id": 0, "trades": 0, "equity_curve": 0, "run_id": 0}


def _field_of(problem: str) -> str | None:
    if "candle source" in problem:
        return "dataset"
    for name in ("market_data", "dataset", "warmup_from", "trade_from", "trade_to"):
        if problem.startswith(name) or f" {name}" in problem:
            return name
    if problem.startswith("setting ") or problem.startswith("unknown settings"):
        return "engine_settings"
    if "AnalysisSettings" in problem or "Params." in problem or "analysis settings" in problem:
        return "analysis_settings"
    return None


def _request(body: BacktestIn, backtest_id: str, user_id: str) -> BacktestInput:
    engine = body.engine_settings.model_dump(exclude_none=True) if body.engine_settings else None
    analysis = None
    if body.analysis_settings is not None:
        given = body.analysis_settings.model_dump(exclude_none=True)
        strategy = {k: v for k, v in given.items() if k in reads.STRATEGY_KEYS}
        indicators = {k: v for k, v in given.items() if k in reads.INDICATOR_KEYS}
        analysis = reads.analysis_changes(AnalysisSettings().to_dict(), strategy, indicators)
    md = body.market_data
    return BacktestInput(
        backtest_id=backtest_id, user_id=user_id, dataset=body.dataset,
        market_data=MarketDataRange(md.symbol, md.interval, md.start, md.end) if md else None,
        engine_settings=engine, analysis_settings=analysis, warmup_from=body.warmup_from,
        trade_from=body.trade_from, trade_to=body.trade_to,
    )


@router.post("", status_code=202, response_model=BacktestOut,
             responses={**AUTH_ERRORS, **BAD_BODY, **REJECTED, **UNAVAILABLE})
async def start_backtest(body: BacktestIn, user: CurrentUser, temporal: TemporalDep, settings: SettingsDep,
                         db: DbDep) -> BacktestOut:
    """Start a backtest on a data file (``dataset``) or on stored candles (``market_data``)."""
    backtest_id = uuid.uuid4().hex
    request = _request(body, backtest_id, user.user_id)
    problem = input_problem(request)
    if problem:
        raise rejection(problem, _field_of(problem))
    if request.dataset is not None:
        folder = (settings.data_dir / "candles").resolve()
        path = (folder / request.dataset).resolve()
        if path.parent != folder or not path.is_file():
            raise rejection(f"unknown dataset {request.dataset!r}", "dataset")
    now = datetime.now(UTC)
    doc = {"backtest_id": backtest_id, "user_id": user.user_id, "status": STATUS_QUEUED, "progress": 0.0,
           "created_at": now, "queued_at": now, "updated_at": now}
    try:
        await db.backtest_results.insert_one(doc)
    except DuplicateKeyError:  # a 128-bit collision; never in practice
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, detail="try again") from None
    try:
        await temporal.start_workflow(
            BacktestWorkflow.run, request, id=backtest_workflow_id(backtest_id),
            task_queue=task_queue_name(TASK_QUEUE_TRADING, settings.task_queue_prefix))
    except RPCError as exc:
        await db.backtest_results.delete_one({"backtest_id": backtest_id, "status": STATUS_QUEUED})
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, detail=f"could not start: {exc.message}") from None
    return BacktestOut(backtest_id=backtest_id, status=STATUS_QUEUED, created_at=now)


@router.get("", response_model=list[BacktestOut], responses={**AUTH_ERRORS, **REJECTED})
async def list_backtests(user: CurrentUser, db: DbDep, limit: Annotated[int, Query(ge=1, le=200)] = 50,
                         offset: Annotated[int, Query(ge=0, le=100_000)] = 0) -> list[BacktestOut]:
    """Your backtests, newest first, with progress and summary (trades and equity curve: GET one)."""
    cursor = db.backtest_results.find({"user_id": user.user_id}, LIST_FIELDS).sort([("created_at", -1)])
    return [_out(d) async for d in cursor.skip(offset).limit(limit)]


@router.get("/{backtest_id}", response_model=BacktestOut, responses={**AUTH_ERRORS, **NOT_FOUND, **REJECTED})
async def get_backtest(backtest_id: BacktestId, user: CurrentUser, db: DbDep) -> BacktestOut:
    """Progress (status, phase, fraction) and, once completed, the whole report."""
    doc = await db.backtest_results.find_one({"backtest_id": backtest_id, "user_id": user.user_id},
                                             {"_id": 0, "run_id": 0})
    if doc is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail="no such backtest")
    return _out(doc)


def _out(doc: dict[str, Any]) -> BacktestOut:
    known = set(BacktestOut.model_fields)
    return BacktestOut.model_validate({k: v for k, v in doc.items() if k in known})
