"""AI market analysis use cases: ask for an analysis of the latest stored candle (technical, then
Grok's view or the fallback with its reason), read recent Grok answers of a symbol, and see what
Grok cost today against the budgets, with the circuit breaker's state.

An analysis is an ``AiAnalysisWorkflow`` (``ai-analysis:{user}:{request}``): the same Idempotency-Key
with the same request returns the first result, whatever happened in between.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase
from temporalio.client import Client

from activities.ai_spend import GLOBAL, Spend, day_of, user_scope
from core.ai_contracts import AiAnalysisInput, AiAnalysisResult, GrokCallPolicy, ai_analysis_workflow_id
from core.contracts import TASK_QUEUE_AI, TASK_QUEUE_TRADING, session_workflow_id, task_queue_name
from core.settings import Settings
from services import paper_reads
from services.errors import NotFound, Rejected
from services.idempotency import update_id
from services.principal import Principal
from services.workflow_runs import run_once
from trading.ai_analysis import nano_to_usd
from trading.candle import INTERVAL_MS
from workflows.ai_analysis import AiAnalysisWorkflow

SYMBOL = re.compile(r"^[A-Z0-9]{2,20}$")
RESULT_SLACK_S = 30.0  # beyond Grok's deadline: the technical analysis and Temporal's own latency
MAX_SIGNALS = 100


@dataclass(frozen=True)
class AnalyzeRequest:
    symbol: str
    interval: str = "5m"


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
        return await run_once(self.temporal, AiAnalysisWorkflow.run, job, workflow_id=workflow_id,
                              task_queue=task_queue_name(TASK_QUEUE_AI, self.settings.task_queue_prefix),
                              wait_s=self.settings.ai_deadline_s + RESULT_SLACK_S, what="the analysis")

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
