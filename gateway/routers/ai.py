"""``/api/ai``: Grok's market analysis (the seed's main AI endpoint), recent answers per symbol, and
today's cost against the budgets. An adapter over ``services.ai.AiAnalysis``."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query

from core.ai_contracts import ANSWERED, AiAnalysisResult
from gateway.ai_schemas import (
    AiAnalysisOut,
    AiAnalyzeIn,
    AiChatIn,
    AiChatOut,
    AiGrokAnswerOut,
    AiGrokOutcomeOut,
    AiSignalOut,
    AiTechnicalOut,
    AiTradeReviewOut,
    AiUsageOut,
)
from gateway.auth.deps import AUTH_ERRORS, CurrentUser, Responses
from gateway.deps import AiChatDep, AiDep, AiReviewsDep, IdempotencyKey
from gateway.errors import RejectedOut
from gateway.paper.route import RejectingRoute
from gateway.paper.schemas import ErrorOut
from services.ai import AnalyzeRequest
from services.ai_chat import ChatRequest, ChatTurn
from trading.ai_analysis import nano_to_usd

router = APIRouter(prefix="/api/ai", tags=["ai"], route_class=RejectingRoute)

REJECTED: Responses = {422: {"model": RejectedOut, "description": "Invalid request (the field and the reason)"}}
NOT_FOUND: Responses = {404: {"model": ErrorOut, "description": "No stored candles of that symbol and interval"}}
UNAVAILABLE: Responses = {503: {"model": ErrorOut, "description": "Temporal or the analysis could not answer in time"}}
Symbol = Annotated[str, Path(min_length=2, max_length=20, pattern=r"^[A-Za-z0-9]+$")]


def analysis_out(result: AiAnalysisResult) -> AiAnalysisOut:
    grok, technical = result.grok, result.technical
    answered = grok.outcome == ANSWERED and grok.answer is not None
    if answered:
        assert grok.answer is not None
        signal, confidence, source = grok.answer["direction"], grok.answer["confidence"], "grok"
    else:
        signal = technical.direction if technical else "neutral"
        confidence, source = (technical.confidence if technical else 0.0), "technical"
    return AiAnalysisOut(
        symbol=result.symbol, interval=result.interval, open_time=result.open_time, signal=signal,
        confidence=confidence, source=source,
        technical=AiTechnicalOut(direction=technical.direction, confidence=technical.confidence,
                               reason=technical.reason) if technical else None,
        grok=AiGrokOutcomeOut(outcome=grok.outcome, model=grok.model,  # type: ignore[arg-type]
                            answer=AiGrokAnswerOut.model_validate(grok.answer) if grok.answer else None,
                            reason=grok.reason, detail=grok.detail,  # type: ignore[arg-type]
                            shared=grok.shared, cost_usd=nano_to_usd(grok.cost_nano_usd)),
    )


@router.post("/analyze", response_model=AiAnalysisOut,
             responses={**AUTH_ERRORS, **REJECTED, **NOT_FOUND, **UNAVAILABLE})
async def analyze(body: AiAnalyzeIn, user: CurrentUser, ai: AiDep, key: IdempotencyKey = None) -> AiAnalysisOut:
    """Analyse the latest stored candle: the technical consensus, then Grok's view of it (direction,
    confidence, reasoning, key levels, risks, horizon), or the fallback to the consensus with the
    reason (not configured, breaker open, over budget, unavailable, past the deadline, invalid answer)."""
    return analysis_out(await ai.analyze(user, AnalyzeRequest(body.symbol, body.interval), key))


@router.get("/signals/{symbol}", response_model=list[AiSignalOut], responses={**AUTH_ERRORS, **REJECTED})
async def signals(symbol: Symbol, user: CurrentUser, ai: AiDep,
                  interval: Annotated[str | None, Query(max_length=4)] = None,
                  limit: Annotated[int, Query(ge=1, le=100)] = 20) -> list[AiSignalOut]:
    """Grok's recent answers about a symbol, newest first."""
    return [AiSignalOut.model_validate(d) for d in await ai.signals(user, symbol, interval, limit)]


@router.get("/usage", response_model=AiUsageOut, response_model_by_alias=True, responses={**AUTH_ERRORS})
async def usage(user: CurrentUser, ai: AiDep) -> AiUsageOut:
    """Grok's cost today (UTC) for you and for everyone against the daily budgets, and its circuit breaker."""
    return AiUsageOut.model_validate(await ai.usage(user))


@router.post("/chat", response_model=AiChatOut, responses={**AUTH_ERRORS, **REJECTED, **UNAVAILABLE})
async def chat(body: AiChatIn, user: CurrentUser, chat: AiChatDep, key: IdempotencyKey = None) -> AiChatOut:
    """Ask Grok about your own account and the market. Grok answers with read-only tools over your
    portfolio, your closed trades, stored candles and indicators; it cannot change anything."""
    reply = await chat.ask(user, ChatRequest(body.message, tuple(ChatTurn(t.role, t.content) for t in body.history)),
                           key)
    return AiChatOut.model_validate(reply, from_attributes=True)


TRADE_NOT_FOUND: Responses = {404: {"model": ErrorOut, "description": "No such closed trade of yours"}}
TradeId = Annotated[int, Path(ge=0, le=2**53)]


@router.post("/trade-reviews/{trade_id}", response_model=AiTradeReviewOut,
             responses={**AUTH_ERRORS, **REJECTED, **TRADE_NOT_FOUND, **UNAVAILABLE})
async def review_trade(trade_id: TradeId, user: CurrentUser, reviews: AiReviewsDep,
                       key: IdempotencyKey = None) -> AiTradeReviewOut:
    """Grok reviews one of your closed paper trades: why it won or lost, what to learn, and settings it
    suggests, each submitted as Grok's tuning proposal (GREEN applies, YELLOW and RED wait for you)."""
    return AiTradeReviewOut.model_validate(await reviews.review(user, trade_id, key))


@router.get("/trade-reviews", response_model=list[AiTradeReviewOut], responses={**AUTH_ERRORS, **REJECTED})
async def trade_reviews(user: CurrentUser, reviews: AiReviewsDep,
                        limit: Annotated[int, Query(ge=1, le=100)] = 20) -> list[AiTradeReviewOut]:
    """Grok's latest reviews of your trades, newest first."""
    return [AiTradeReviewOut.model_validate(d) for d in await reviews.reviews(user, limit)]
