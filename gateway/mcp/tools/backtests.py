"""Backtests: run the Engine over historical candles (SENSITIVE, with an idempotency key), follow the run and
read its report, trades and comparisons (AUTHENTICATED). A backtest is a ``BacktestWorkflow`` the caller
owns; it is also a task (``backtest:{id}``: list_tasks, get_task_status, cancel_task). Another user's
backtest is not found."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field

from gateway.mcp.registry import IdempotencyKey, current, tool
from gateway.paper.schemas import (
    AnalysisSettingsIn,
    BacktestComparisonOut,
    BacktestIn,
    BacktestOut,
    BacktestTradesOut,
    BasicSettingsIn,
    MarketDataIn,
)
from gateway.routers import backtests as backtest_routes
from gateway.routers.backtests import _out as backtest_out
from gateway.routers.backtests import _request as backtest_request

BacktestId = Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]{1,100}$", description="a backtest ID of yours")]
MarketMs = Annotated[int | None, Field(ge=0, le=2**53, description="market time (ms)")]
DataFile = Annotated[str, Field(max_length=200, description="a candle file under data/candles")]


@tool("Backtests", "sensitive", title="Run a backtest", idempotent=True)
async def run_backtest(
    idempotency_key: IdempotencyKey,
    dataset: Annotated[DataFile | None, Field(examples=["BTCUSDT-5m-2023-01.csv.gz"])] = None,
    datasets: Annotated[list[DataFile] | None, Field(min_length=1, max_length=20, description=(
        "several candle files, one per symbol, one interval: the symbols trade together in one account"))] = None,
    market_data: Annotated[MarketDataIn | None, Field(description="stored candles of one stream instead")] = None,
    engine_settings: Annotated[BasicSettingsIn | None, Field(description="engine settings to change")] = None,
    analysis_settings: Annotated[AnalysisSettingsIn | None, Field(description="strategy settings to change")] = None,
    settings: Annotated[dict[str, Any] | None, Field(description=(
        "a settings document (export_settings_document), taken unchanged instead of engine_settings and "
        "analysis_settings; without a dataset it runs on the stored candles of its symbols and interval"))] = None,
    warmup_from: MarketMs = None, trade_from: MarketMs = None, trade_to: MarketMs = None,
    replay_ai_decisions: Annotated[bool, Field(description=(
        "trade what your paper session decided with Grok on each candle it recorded"))] = False,
) -> BacktestOut:
    """Start a backtest of the 5-strategy consensus and the Engine (fees, slippage, risk checks, SL/TP) on a
    candle file (`dataset`), several (`datasets`) or stored candles (`market_data`), with default settings
    changed by `engine_settings` / `analysis_settings` or a whole settings document. Answers at once with
    the queued backtest: follow it with get_backtest_results (status, phase, progress 0-1). A bad request is
    refused naming the field."""
    call = current()
    body = BacktestIn(dataset=dataset, datasets=datasets, market_data=market_data, engine_settings=engine_settings,
                      analysis_settings=analysis_settings, settings=settings, warmup_from=warmup_from,
                      trade_from=trade_from, trade_to=trade_to, replay_ai_decisions=replay_ai_decisions)
    return backtest_out(await call.services.backtests.start(call.principal, backtest_request(body), idempotency_key))


@tool("Backtests", "authenticated", title="Backtests", read_only=True)
async def list_backtests(limit: Annotated[int, Field(ge=1, le=100)] = 20,
                         offset: Annotated[int, Field(ge=0, le=100_000)] = 0) -> list[BacktestOut]:
    """Your backtests, newest first, with status, progress, summary and metrics (no trades or curves)."""
    call = current()
    return await backtest_routes.list_backtests(call.principal, call.services.backtests, limit, offset)


@tool("Backtests", "authenticated", title="A backtest's results", read_only=True)
async def get_backtest_results(
    backtest_id: BacktestId,
    full: Annotated[bool, Field(description="also the first 100 trades, the equity curve and price curves "
                                            "(large)")] = False,
) -> BacktestOut:
    """One of your backtests: status (queued, running, completed, failed, cancelled), phase and progress, and
    once completed its summary, metrics (win rate, profit factor, Sharpe, Sortino, max drawdown) and report
    (parameters, data, tables per pair, exit reason, duration and month)."""
    call = current()
    found = await backtest_routes.get_backtest(backtest_id, call.principal, call.services.backtests)
    if full:
        return found
    return found.model_copy(update={"trades": None, "equity_curve": None, "price_curves": None})


@tool("Backtests", "authenticated", title="A backtest's trades", read_only=True)
async def get_backtest_trades(backtest_id: BacktestId, limit: Annotated[int, Field(ge=1, le=500)] = 100,
                              offset: Annotated[int, Field(ge=0, le=10_000_000)] = 0) -> BacktestTradesOut:
    """A page of a completed backtest's trades in the order they closed, with the total (a run not completed
    yet is refused)."""
    call = current()
    return await backtest_routes.backtest_trades(backtest_id, call.principal, call.services.backtests, limit, offset)


@tool("Backtests", "authenticated", title="Compare backtests", read_only=True)
async def compare_backtests(
    backtest_ids: Annotated[list[BacktestId], Field(min_length=2, max_length=10,
                                                    description="2 to 10 different completed backtests")],
) -> BacktestComparisonOut:
    """Completed backtests side by side: their data, metrics and per-pair totals, and every parameter whose
    value differs between them."""
    call = current()
    return await backtest_routes.compare_backtests(call.principal, call.services.backtests, backtest_ids)
