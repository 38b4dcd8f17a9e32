"""``/api/backtests``: start a backtest and follow its progress. An adapter over
``services.backtests.Backtests``: a bad request is a 422 naming the field, another user's backtest is
a 404, the same as one that does not exist."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query

from core.backtest_contracts import MarketDataRange
from gateway.auth.deps import AUTH_ERRORS, CurrentUser, Responses
from gateway.deps import BacktestsDep
from gateway.errors import RejectedOut
from gateway.paper.route import RejectingRoute
from gateway.paper.schemas import BacktestIn, BacktestOut, ErrorOut
from services.backtests import BacktestRequest

router = APIRouter(prefix="/api/backtests", tags=["backtests"], route_class=RejectingRoute)

BAD_BODY: Responses = {400: {"model": ErrorOut, "description": "The body is not valid JSON"}}
REJECTED: Responses = {422: {"model": RejectedOut, "description": "Invalid request (the field and the reason)"}}
NOT_FOUND: Responses = {404: {"model": ErrorOut, "description": "No such backtest of yours"}}
UNAVAILABLE: Responses = {503: {"model": ErrorOut, "description": "The backtest could not be started"}}
BacktestId = Annotated[str, Path(pattern=r"^[A-Za-z0-9_.-]{1,100}$")]


def _request(body: BacktestIn) -> BacktestRequest:
    md = body.market_data
    return BacktestRequest(
        dataset=body.dataset, market_data=MarketDataRange(md.symbol, md.interval, md.start, md.end) if md else None,
        engine_settings=body.engine_settings.model_dump(exclude_none=True) if body.engine_settings else None,
        analysis_settings=body.analysis_settings.model_dump(exclude_none=True) if body.analysis_settings else None,
        warmup_from=body.warmup_from, trade_from=body.trade_from, trade_to=body.trade_to,
    )


def _out(doc: dict[str, Any]) -> BacktestOut:
    known = set(BacktestOut.model_fields)
    return BacktestOut.model_validate({k: v for k, v in doc.items() if k in known})


@router.post("", status_code=202, response_model=BacktestOut,
             responses={**AUTH_ERRORS, **BAD_BODY, **REJECTED, **UNAVAILABLE})
async def start_backtest(body: BacktestIn, user: CurrentUser, backtests: BacktestsDep) -> BacktestOut:
    """Start a backtest on a data file (``dataset``) or on stored candles (``market_data``)."""
    return _out(await backtests.start(user, _request(body)))


@router.get("", response_model=list[BacktestOut], responses={**AUTH_ERRORS, **REJECTED})
async def list_backtests(user: CurrentUser, backtests: BacktestsDep, limit: Annotated[int, Query(ge=1, le=200)] = 50,
                         offset: Annotated[int, Query(ge=0, le=100_000)] = 0) -> list[BacktestOut]:
    """Your backtests, newest first, with progress and summary (trades and equity curve: GET one)."""
    return [_out(d) for d in await backtests.list(user, limit, offset)]


@router.get("/{backtest_id}", response_model=BacktestOut, responses={**AUTH_ERRORS, **NOT_FOUND, **REJECTED})
async def get_backtest(backtest_id: BacktestId, user: CurrentUser, backtests: BacktestsDep) -> BacktestOut:
    """Progress (status, phase, fraction) and, once completed, the whole report."""
    return _out(await backtests.get(user, backtest_id))
