"""Asking xAI Grok about a candle (the ``ai`` task queue), through the ``openai`` SDK pointed at
``xai_base_url``: its API is OpenAI-compatible, and offline ``sim/xai`` answers.

One activity attempt makes at most one HTTP call; Temporal's retry policy (the caller's) makes the
next attempt, after ``Retry-After`` when the answer carried one (``next_retry_delay``). What ends an
ask without a call is an answer, not an error: a cached identical question (``shared``), no key or no
price for the model (``not_configured``), an open circuit breaker, a spent budget. Errors: 429, 5xx,
timeouts and dropped connections are ``GrokTemporary`` (retried); another 4xx is ``GrokRefused`` and a
malformed or schema-breaking answer ``GrokInvalidAnswer`` (neither retried). Each failure counts
against the breaker; each call that reported usage is booked (also an invalid answer: it was paid).

The key lives only in this process's client; it is never in an input, a result, a log or an error.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import openai
from pymongo.asynchronous.database import AsyncDatabase
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.ai_breaker import CircuitBreaker
from activities.ai_spend import GLOBAL, CallUsage, Spend, day_of, user_scope
from activities.db import bounded
from core.ai_contracts import (
    ANALYSIS_MISSING,
    ANSWERED,
    BREAKER_OPEN,
    FALLBACK,
    GROK_INVALID_ANSWER,
    GROK_REFUSED,
    GROK_TEMPORARY,
    NOT_CONFIGURED,
    OVER_BUDGET,
    WARMING_UP,
    AskGrokInput,
    AskGrokResult,
    GrokChatInput,
    GrokChatResult,
    ReviewTradeInput,
    ReviewTradeResult,
)
from core.settings import Settings
from trading.ai_analysis import (
    InvalidAnswer,
    MarketSnapshot,
    cost_nano_usd,
    nano_to_usd,
    parse_answer,
    price_table,
    question_key,
    render_messages,
    response_format,
)
from trading.ai_review import parse_review
from trading.ai_review import render_messages as review_messages
from trading.ai_review import response_format as review_format

MAX_RETRY_AFTER_S = 300.0  # a Retry-After beyond this is the deadline's business, not the retry's


def snapshot_of(doc: dict[str, Any]) -> MarketSnapshot:
    """The question's facts from a stored technical analysis (``activities.session_analysis``)."""
    return MarketSnapshot(
        symbol=doc["symbol"], interval=doc["interval"], open_time=doc["open_time"],
        indicators=dict(doc.get("indicators") or {}),
        consensus={"direction": doc["direction"], "confidence": doc["confidence"], "reason": doc["reason"],
                   "verdicts": doc.get("verdicts", [])},
    )


def _retry_after(exc: openai.APIStatusError) -> timedelta | None:
    value = exc.response.headers.get("retry-after")
    try:
        seconds = float(value) if value is not None else None
    except ValueError:
        return None
    return timedelta(seconds=min(max(seconds, 0.0), MAX_RETRY_AFTER_S)) if seconds is not None else None


class GrokActivities:
    def __init__(self, db: AsyncDatabase, settings: Settings) -> None:
        self.db = db
        self.settings = settings
        self.model = settings.xai_model
        self.prices = price_table(settings.ai_prices)
        key = settings.xai_key
        self.client = None if key is None else openai.AsyncOpenAI(
            api_key=key.get_secret_value(), base_url=settings.xai_base_url, max_retries=0,
            timeout=settings.ai_call_timeout_s)
        self.breaker = CircuitBreaker(db, settings.ai_breaker_failures, settings.ai_breaker_cooldown_s,
                                      trial_s=settings.ai_call_timeout_s * 2)
        self.spend = Spend(db)
        self._asking: dict[str, asyncio.Lock] = {}

    def _fallback(self, reason: str, detail: str | None, key: str = "") -> AskGrokResult:
        return AskGrokResult(outcome=FALLBACK, model=self.model, question_key=key, reason=reason, detail=detail)

    @activity.defn
    async def ask_grok(self, request: AskGrokInput) -> AskGrokResult:
        """Grok's validated view of the candle analysed under ``request.analysis_key``, or why not."""
        with bounded():
            doc = await self.db.ai_analysis_results.find_one({"analysis_key": request.analysis_key})
        if doc is None:
            raise ApplicationError(f"no stored analysis {request.analysis_key!r}", type=ANALYSIS_MISSING,
                                   non_retryable=True)
        if doc.get("warming_up") or not doc.get("indicators"):
            return self._fallback(WARMING_UP, "the indicators are still warming up on this candle")
        messages = render_messages(snapshot_of(doc))
        key = question_key(messages, self.model)
        lock = self._asking.setdefault(key, asyncio.Lock())
        try:
            async with lock:  # sessions of one worker asking the same question at once pay once
                return await self._ask(request, doc, messages, key)
        finally:
            if not lock.locked():
                self._asking.pop(key, None)

    async def _ask(self, request: AskGrokInput, doc: dict[str, Any], messages: list[dict[str, str]],
                   key: str) -> AskGrokResult:
        with bounded():
            cached = await self.db.ai_analysis_results.find_one({"analysis_key": key})
        if cached is not None:
            return AskGrokResult(outcome=ANSWERED, model=self.model, question_key=key, answer=cached["answer"],
                                 shared=True, verdicts=tuple(doc.get("verdicts", ())))
        refused = await self._refusal(request.user_id)
        if refused is not None:
            return self._fallback(*refused, key)
        completion = await self._call(messages=messages, response_format=response_format(), temperature=0)
        now = datetime.now(UTC)
        prompt_tokens, completion_tokens, cost = self._usage(completion)
        content = completion.choices[0].message.content if completion.choices else None
        try:
            answer = parse_answer(content)
        except InvalidAnswer as exc:
            await self._book(request.user_id, request.purpose, "invalid_answer", prompt_tokens, completion_tokens,
                             cost, now)
            with bounded():
                await self.breaker.failed(self.model, now, f"invalid answer: {exc}")
            raise ApplicationError(f"Grok's answer was refused: {exc}", type=GROK_INVALID_ANSWER,
                                   non_retryable=True) from None
        await self._book(request.user_id, request.purpose, "answered", prompt_tokens, completion_tokens, cost, now)
        with bounded():
            await self.breaker.succeeded(self.model, now)
            await self.db.ai_analysis_results.update_one({"analysis_key": key}, {"$setOnInsert": {
                "analysis_key": key, "kind": "grok", "model": self.model, "technical_key": doc["analysis_key"],
                "symbol": doc["symbol"], "interval": doc["interval"], "open_time": doc["open_time"],
                "technical": {"direction": doc["direction"], "confidence": doc["confidence"]},
                "answer": answer.to_dict(), "prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                "cost_nano_usd": cost, "created_at": now,
            }}, upsert=True)
        return AskGrokResult(outcome=ANSWERED, model=self.model, question_key=key, answer=answer.to_dict(),
                             cost_nano_usd=cost, verdicts=tuple(doc.get("verdicts", ())))

    async def _refusal(self, user_id: str) -> tuple[str, str | None] | None:
        """Why Grok may not be called for ``user_id`` now (reason, detail), or None."""
        if self.client is None:
            return NOT_CONFIGURED, "no xAI API key is set (DURABOT_XAI_API_KEY)"
        if self.model not in self.prices:
            return NOT_CONFIGURED, f"no price for model {self.model} in DURABOT_AI_PRICES"
        now = datetime.now(UTC)
        with bounded():
            verdict = await self.breaker.check(self.model, now)
        if not verdict.allowed:
            return BREAKER_OPEN, verdict.detail
        over = await self._over_budget(user_id, now)
        return (OVER_BUDGET, over) if over else None

    def _usage(self, completion: Any) -> tuple[int, int, int]:
        usage = completion.usage
        prompt_tokens = usage.prompt_tokens if usage else 0
        completion_tokens = usage.completion_tokens if usage else 0
        return prompt_tokens, completion_tokens, cost_nano_usd(self.prices[self.model], prompt_tokens,
                                                               completion_tokens)

    @activity.defn
    async def chat_grok(self, request: GrokChatInput) -> GrokChatResult:
        """One round of a chat: Grok's text, or the tools it wants called (the caller runs them)."""
        refused = await self._refusal(request.user_id)
        if refused is not None:
            return GrokChatResult(outcome=FALLBACK, model=self.model, reason=refused[0], detail=refused[1])
        completion = await self._call(messages=list(request.messages), tools=list(request.tools) or openai.NOT_GIVEN,
                                      temperature=0)
        now = datetime.now(UTC)
        prompt_tokens, completion_tokens, cost = self._usage(completion)
        await self._book(request.user_id, "chat", "answered", prompt_tokens, completion_tokens, cost, now)
        with bounded():
            await self.breaker.succeeded(self.model, now)
        message = completion.choices[0].message if completion.choices else None
        if message is None:
            return GrokChatResult(outcome=ANSWERED, model=self.model, content="", cost_nano_usd=cost)
        calls = tuple({"id": c.id, "name": c.function.name, "arguments": c.function.arguments}
                      for c in (message.tool_calls or ()) if c.type == "function")
        return GrokChatResult(outcome=ANSWERED, model=self.model, content=message.content, tool_calls=calls,
                              cost_nano_usd=cost)

    @activity.defn
    async def review_trade(self, request: ReviewTradeInput) -> ReviewTradeResult:
        """Grok's validated review of a closed trade (why it won or lost, suggestions), or why not."""
        refused = await self._refusal(request.user_id)
        if refused is not None:
            return ReviewTradeResult(outcome=FALLBACK, model=self.model, reason=refused[0], detail=refused[1])
        messages = review_messages(request.trade, request.entry_analysis, request.settings)
        completion = await self._call(messages=messages, response_format=review_format(), temperature=0)
        now = datetime.now(UTC)
        prompt_tokens, completion_tokens, cost = self._usage(completion)
        content = completion.choices[0].message.content if completion.choices else None
        try:
            review = parse_review(content)
        except InvalidAnswer as exc:
            await self._book(request.user_id, "review", "invalid_answer", prompt_tokens, completion_tokens, cost,
                             now)
            with bounded():
                await self.breaker.failed(self.model, now, f"invalid answer: {exc}")
            raise ApplicationError(f"Grok's review was refused: {exc}", type=GROK_INVALID_ANSWER,
                                   non_retryable=True) from None
        await self._book(request.user_id, "review", "answered", prompt_tokens, completion_tokens, cost, now)
        with bounded():
            await self.breaker.succeeded(self.model, now)
        return ReviewTradeResult(outcome=ANSWERED, model=self.model, review=review.to_dict(), cost_nano_usd=cost)

    async def _over_budget(self, user_id: str, now: datetime) -> str | None:
        day = day_of(now)
        with bounded():
            mine = await self.spend.spent_nano_usd(user_scope(user_id), day)
            everyone = await self.spend.spent_nano_usd(GLOBAL, day)
        user_budget = round(self.settings.ai_daily_budget_user_usd * 1e9)
        global_budget = round(self.settings.ai_daily_budget_global_usd * 1e9)
        if mine >= user_budget:
            return (f"your Grok spend today is ${nano_to_usd(mine):.4f} of your "
                    f"${self.settings.ai_daily_budget_user_usd:g} daily budget")
        if everyone >= global_budget:
            return (f"Grok spend of all users today is ${nano_to_usd(everyone):.4f} of the "
                    f"${self.settings.ai_daily_budget_global_usd:g} daily budget")
        return None

    async def _book(self, user_id: str, purpose: str, outcome: str, prompt_tokens: int, completion_tokens: int,
                    cost: int, now: datetime) -> None:
        info = activity.info()
        call_id = f"{info.workflow_id}:{info.workflow_run_id}:{info.activity_id}:{info.attempt}"
        with bounded():
            await self.spend.record(CallUsage(call_id, user_id, self.model, purpose, outcome,
                                              prompt_tokens, completion_tokens, cost), now)

    async def _call(self, **request: Any) -> Any:
        assert self.client is not None
        try:
            return await self.client.chat.completions.create(model=self.model, **request)
        except openai.APIStatusError as exc:
            await self._failed(f"HTTP {exc.status_code}")
            if exc.status_code == 429 or exc.status_code >= 500:
                raise ApplicationError(f"Grok answered HTTP {exc.status_code}", type=GROK_TEMPORARY,
                                       next_retry_delay=_retry_after(exc)) from None
            raise ApplicationError(f"Grok refused the request: HTTP {exc.status_code} {self._message(exc)}",
                                   type=GROK_REFUSED, non_retryable=True) from None
        except openai.APITimeoutError:
            await self._failed("timeout")
            raise ApplicationError(f"Grok did not answer within {self.settings.ai_call_timeout_s:g}s",
                                   type=GROK_TEMPORARY) from None
        except openai.APIConnectionError as exc:
            await self._failed("connection")
            raise ApplicationError(f"Grok's connection failed: {type(exc.__cause__ or exc).__name__}",
                                   type=GROK_TEMPORARY) from None

    async def _failed(self, error: str) -> None:
        with bounded():
            await self.breaker.failed(self.model, datetime.now(UTC), error)


    def _message(self, exc: openai.APIStatusError) -> str:
        """The server's reason, for a refusal's detail: never for 401/403 (those may echo the key)."""
        if exc.status_code in (401, 403):
            return "(the API key was not accepted)"
        body = exc.body if isinstance(exc.body, dict) else {}
        error = body.get("error", body)
        message = str(error.get("message") or "") if isinstance(error, dict) else ""
        key = self.client.api_key if self.client is not None else ""
        return (message.replace(key, "***") if key else message)[:200]
