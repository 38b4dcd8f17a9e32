"""Grok's reviews of closed paper trades: why a trade won or lost, and settings it suggests.

A review is an ``AiReviewWorkflow`` (``ai-review:{user}:{session}-{trade}:{request}``) on the ``ai``
queue; the latest review of a trade is kept in ``ai_trade_reviews``. Each suggestion becomes a tuning
proposal by Grok (proposer ``ai``), so the tiers decide what happens: GREEN applies, YELLOW and RED
wait for the owner's approval, and nothing is ever applied beyond GREEN without a human.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase
from temporalio.client import Client

from core.ai_contracts import ANSWERED, AiReviewInput, ReviewTradeInput, ai_review_workflow_id
from core.contracts import TASK_QUEUE_AI, session_workflow_id, task_queue_name
from core.settings import Settings
from services import paper_reads
from services.ai import RESULT_SLACK_S, grok_policy
from services.errors import DomainError, NotFound
from services.idempotency import update_id
from services.principal import Principal
from services.tuning import Tuning
from services.workflow_runs import run_once
from trading.ai_analysis import nano_to_usd
from trading.tuning_table import TUNABLES, value_in
from workflows.ai_chat import AiReviewWorkflow

MAX_REVIEWS = 100


class AiReviews:
    def __init__(self, settings: Settings, temporal: Client, db: AsyncDatabase, tuning: Tuning) -> None:
        self.settings = settings
        self.temporal = temporal
        self.db = db
        self.tuning = tuning

    async def review(self, principal: Principal, trade_id: int, key: str | None) -> dict[str, Any]:
        """Review one of the caller's closed paper trades; its suggestions go to the tuning tiers."""
        principal.require("authenticated")
        session_id = session_workflow_id(principal.user_id)
        row = await paper_reads.closed_trade(self.db, session_id, trade_id)
        if row is None:
            raise NotFound(f"no closed trade {trade_id}")
        record = await paper_reads.settings_record(self.db, session_id)
        tunables = {path: value_in(record["engine_settings"], record["analysis_settings"], path)
                    for path in sorted(TUNABLES)}
        job = AiReviewInput(ReviewTradeInput(principal.user_id, row["trade"], row.get("entry_analysis"), tunables),
                            grok_policy(self.settings))
        request_id = update_id(principal.user_id, "ai.review", key, {"trade_id": trade_id})
        result = await run_once(
            self.temporal, AiReviewWorkflow.run, job,
            workflow_id=ai_review_workflow_id(principal.user_id, f"{trade_id}-{row.get('generation', 0)}", request_id),
            task_queue=task_queue_name(TASK_QUEUE_AI, self.settings.task_queue_prefix),
            wait_s=self.settings.ai_deadline_s + RESULT_SLACK_S, what="the review")
        doc: dict[str, Any] = {
            "review_id": f"{session_id}:{trade_id}", "user_id": principal.user_id, "session_id": session_id,
            "trade_id": trade_id, "symbol": row["symbol"], "model": result.model, "outcome": result.outcome,
            "review": result.review, "fallback_reason": result.reason, "fallback_detail": result.detail,
            "cost_usd": nano_to_usd(result.cost_nano_usd), "proposals": [], "created_at": datetime.now(UTC)}
        if result.outcome == ANSWERED and result.review:
            doc["proposals"] = [await self._propose(principal, trade_id, s, request_id, i)
                                for i, s in enumerate(result.review["suggestions"])]
        await self.db.ai_trade_reviews.update_one({"review_id": doc["review_id"]}, {"$set": doc}, upsert=True)
        doc.pop("_id", None)
        return doc

    async def _propose(self, principal: Principal, trade_id: int, suggestion: dict[str, Any], request_id: str,
                       index: int) -> dict[str, Any]:
        """One suggestion as Grok's proposal: its number and status, or why the tiers refused it."""
        found = {"parameter": suggestion["parameter"], "value": suggestion["value"]}
        try:
            created = await self.tuning.propose(
                principal, {suggestion["parameter"]: suggestion["value"]},
                f"Grok's review of trade {trade_id}: {suggestion['reason']}", f"{request_id}.s{index}"[-128:],
                proposer_kind="ai", proposer_name=self.settings.xai_model)
        except DomainError as exc:
            return {**found, "refused": exc.message}
        view = created.proposal
        return {**found, "number": view.number, "tier": view.tier, "status": view.status}

    async def reviews(self, principal: Principal, limit: int) -> list[dict[str, Any]]:
        principal.require("authenticated")
        limit = max(1, min(limit, MAX_REVIEWS))
        cursor = self.db.ai_trade_reviews.find({"user_id": principal.user_id}, {"_id": 0}).sort("created_at", -1)
        return await cursor.limit(limit).to_list()
