"""Backtests: start a ``BacktestWorkflow`` (``backtest:{id}``) and follow its progress.

A start is checked as the workflow would (``input_problem``) plus that the dataset exists, so a bad
request is refused naming the field rather than becoming a failed run; the backtest is recorded as the
caller's before the workflow starts, so a read right after the start finds it. Every read names the
caller's ``user_id``: another user's backtest is not found, the same as one that does not exist.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError
from temporalio.client import Client
from temporalio.service import RPCError

from core.backtest_contracts import (
    STATUS_QUEUED,
    BacktestInput,
    MarketDataRange,
    backtest_workflow_id,
    input_problem,
)
from core.contracts import TASK_QUEUE_TRADING, task_queue_name
from core.settings import Settings
from services import paper_reads as reads
from services.errors import NotFound, Rejected, Unavailable
from services.principal import Principal
from trading.analysis_settings import AnalysisSettings
from workflows.backtest import BacktestWorkflow
from workflows.session_rules import ANALYSIS_SECTIONS, merged

LIST_FIELDS = {"_id": 0, "trades": 0, "equity_curve": 0, "run_id": 0}


@dataclass(frozen=True)
class BacktestRequest:
    dataset: str | None = None
    market_data: MarketDataRange | None = None
    engine_settings: dict[str, Any] | None = None
    analysis_settings: dict[str, Any] | None = None  # strategy and indicator fields, merged into the defaults
    warmup_from: int | None = None
    trade_from: int | None = None
    trade_to: int | None = None


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


class Backtests:
    def __init__(self, settings: Settings, temporal: Client, db: AsyncDatabase) -> None:
        self.settings = settings
        self.temporal = temporal
        self.db = db

    async def start(self, principal: Principal, request: BacktestRequest) -> dict[str, Any]:
        principal.require("sensitive")
        backtest_id = uuid.uuid4().hex
        analysis = None
        if request.analysis_settings is not None:
            analysis = merged(AnalysisSettings().to_dict(), request.analysis_settings, ANALYSIS_SECTIONS)
        job = BacktestInput(
            backtest_id=backtest_id, user_id=principal.user_id, dataset=request.dataset,
            market_data=request.market_data, engine_settings=request.engine_settings, analysis_settings=analysis,
            warmup_from=request.warmup_from, trade_from=request.trade_from, trade_to=request.trade_to,
        )
        problem = input_problem(job)
        if problem:
            raise Rejected(_field_of(problem), problem)
        if job.dataset is not None:
            folder = (self.settings.data_dir / "candles").resolve()
            path = (folder / job.dataset).resolve()
            if path.parent != folder or not path.is_file():
                raise Rejected("dataset", f"unknown dataset {job.dataset!r}")
        now = datetime.now(UTC)
        doc = {"backtest_id": backtest_id, "user_id": principal.user_id, "status": STATUS_QUEUED, "progress": 0.0,
               "created_at": now, "queued_at": now, "updated_at": now}
        try:
            await self.db.backtest_results.insert_one(doc)
        except DuplicateKeyError:  # a 128-bit collision; never in practice
            raise Unavailable("try again") from None
        try:
            await self.temporal.start_workflow(
                BacktestWorkflow.run, job, id=backtest_workflow_id(backtest_id),
                task_queue=task_queue_name(TASK_QUEUE_TRADING, self.settings.task_queue_prefix))
        except RPCError as exc:
            await self.db.backtest_results.delete_one({"backtest_id": backtest_id, "status": STATUS_QUEUED})
            raise Unavailable(f"could not start: {exc.message}") from None
        return doc

    async def list(self, principal: Principal, limit: int, offset: int) -> list[dict[str, Any]]:
        """The caller's backtests, newest first, with progress and summary (no trades or equity curve)."""
        cursor = self.db.backtest_results.find({"user_id": principal.user_id}, LIST_FIELDS).sort([("created_at", -1)])
        return [d async for d in cursor.skip(offset).limit(limit)]

    async def get(self, principal: Principal, backtest_id: str) -> dict[str, Any]:
        """Progress (status, phase, fraction) and, once completed, the whole report."""
        doc = await self.db.backtest_results.find_one({"backtest_id": backtest_id, "user_id": principal.user_id},
                                                      {"_id": 0, "run_id": 0})
        if doc is None:
            raise NotFound("no such backtest")
        return doc


__all__ = ["BacktestRequest", "Backtests", "reads"]
