"""``/api/backtests``: start a backtest, follow it, page its trades, export its report (JSON, CSV),
compare runs and delete them. An adapter over ``services.backtests.Backtests``: a bad request is a 422
naming the field, another user's backtest is a 404, the same as one that does not exist, and asking
for the report of a run that has not completed is a 409."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query
from fastapi.responses import Response

from core.backtest_contracts import MarketDataRange
from gateway.auth.deps import AUTH_ERRORS, CurrentUser, Responses
from gateway.deps import BacktestsDep, IdempotencyKey
from gateway.errors import RejectedOut
from gateway.paper.route import RejectingRoute
from gateway.paper.schemas import (
    BacktestComparisonOut,
    BacktestDeletedOut,
    BacktestIn,
    BacktestOut,
    BacktestTradesOut,
    ErrorOut,
)
from services.backtests import BacktestRequest

router = APIRouter(prefix="/api/backtests", tags=["backtests"], route_class=RejectingRoute)

BAD_BODY: Responses = {400: {"model": ErrorOut, "description": "The body is not valid JSON"}}
REJECTED: Responses = {422: {"model": RejectedOut, "description": "Invalid request (the field and the reason)"}}
NOT_FOUND: Responses = {404: {"model": ErrorOut, "description": "No such backtest of yours"}}
UNAVAILABLE: Responses = {503: {"model": ErrorOut, "description": "Temporal could not be reached in time"}}
NOT_COMPLETED: Responses = {409: {"model": RejectedOut, "description": "The backtest has not completed (yet)"}}
EXPORTED: Responses = {200: {"description": "The report as JSON (the CLI's --json) or its trades as CSV",
                             "content": {"application/json": {}, "text/csv": {}}}}
BacktestId = Annotated[str, Path(pattern=r"^[A-Za-z0-9_.-]{1,100}$")]


def _request(body: BacktestIn) -> BacktestRequest:
    md = body.market_data
    return BacktestRequest(
        dataset=body.dataset, datasets=body.datasets, settings=body.settings,
        market_data=MarketDataRange(md.symbol, md.interval, md.start, md.end) if md else None,
        engine_settings=body.engine_settings.model_dump(exclude_none=True) if body.engine_settings else None,
        analysis_settings=body.analysis_settings.model_dump(exclude_none=True) if body.analysis_settings else None,
        warmup_from=body.warmup_from, trade_from=body.trade_from, trade_to=body.trade_to,
        replay_ai_decisions=bool(body.replay_ai_decisions),
    )


def _out(doc: dict[str, Any]) -> BacktestOut:
    known = set(BacktestOut.model_fields)
    return BacktestOut.model_validate({k: v for k, v in doc.items() if k in known})


@router.post("", status_code=202, response_model=BacktestOut,
             responses={**AUTH_ERRORS, **BAD_BODY, **REJECTED, **UNAVAILABLE})
async def start_backtest(body: BacktestIn, user: CurrentUser, backtests: BacktestsDep,
                         key: IdempotencyKey = None) -> BacktestOut:
    """Start a backtest on a data file (``dataset``) or on stored candles (``market_data``). With an
    Idempotency-Key, a repeat answers the first backtest and starts no second one."""
    return _out(await backtests.start(user, _request(body), key))


@router.get("", response_model=list[BacktestOut], responses={**AUTH_ERRORS, **REJECTED})
async def list_backtests(user: CurrentUser, backtests: BacktestsDep, limit: Annotated[int, Query(ge=1, le=200)] = 50,
                         offset: Annotated[int, Query(ge=0, le=100_000)] = 0) -> list[BacktestOut]:
    """Your backtests, newest first, with progress and summary (trades and equity curve: GET one)."""
    return [_out(d) for d in await backtests.list(user, limit, offset)]


@router.get("/compare", response_model=BacktestComparisonOut, responses={**AUTH_ERRORS, **NOT_FOUND, **REJECTED})
async def compare_backtests(
    user: CurrentUser, backtests: BacktestsDep,
    ids: Annotated[list[Annotated[str, Query(pattern=r"^[A-Za-z0-9_.-]{1,100}$")]],
                   Query(min_length=2, max_length=10, description="2 to 10 completed backtests")],
) -> BacktestComparisonOut:
    """Completed backtests side by side: metrics, per-pair totals and every parameter that differs."""
    return BacktestComparisonOut.model_validate(await backtests.compare(user, ids))


@router.get("/{backtest_id}", response_model=BacktestOut, responses={**AUTH_ERRORS, **NOT_FOUND, **REJECTED})
async def get_backtest(backtest_id: BacktestId, user: CurrentUser, backtests: BacktestsDep) -> BacktestOut:
    """Progress (status, phase, fraction) and, once completed, the report with its first 100 trades."""
    return _out(await backtests.get(user, backtest_id))


@router.get("/{backtest_id}/trades", response_model=BacktestTradesOut,
            responses={**AUTH_ERRORS, **NOT_FOUND, **REJECTED, **NOT_COMPLETED})
async def backtest_trades(backtest_id: BacktestId, user: CurrentUser, backtests: BacktestsDep,
                          limit: Annotated[int, Query(ge=1, le=1000)] = 100,
                          offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0) -> BacktestTradesOut:
    """A page of a completed backtest's trades, in the order they closed."""
    page = await backtests.trades(user, backtest_id, limit, offset)
    return BacktestTradesOut(items=page.items, total=page.total, offset=page.offset, limit=page.limit)


@router.get("/{backtest_id}/export", response_class=Response,
            responses={**EXPORTED, **AUTH_ERRORS, **NOT_FOUND, **REJECTED, **NOT_COMPLETED})
async def export_backtest(backtest_id: BacktestId, user: CurrentUser, backtests: BacktestsDep,
                          format: Annotated[Literal["json", "csv"], Query()] = "json") -> Response:
    """Download the report (JSON: the same bytes as ``durabot backtest --json`` for the same settings
    and candles) or all its trades (CSV: ``--csv``)."""
    exported = await backtests.export(user, backtest_id, format)
    return Response(exported.text, media_type=exported.media_type,
                    headers={"Content-Disposition": f'attachment; filename="{exported.filename}"'})


@router.delete("/{backtest_id}", response_model=BacktestDeletedOut,
               responses={**AUTH_ERRORS, **NOT_FOUND, **REJECTED, **UNAVAILABLE,
                          409: {"model": RejectedOut, "description": "Still being cancelled; try again"}})
async def delete_backtest(backtest_id: BacktestId, user: CurrentUser, backtests: BacktestsDep) -> BacktestDeletedOut:
    """Delete a backtest with its report and trades (a running one is cancelled first)."""
    return BacktestDeletedOut.model_validate(await backtests.delete(user, backtest_id))
