"""The REST shapes of ``/api/ai``: what a client sends and receives, apart from what is stored."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class AiAnalyzeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    symbol: str = Field(min_length=2, max_length=20, examples=["BTCUSDT"])
    interval: str = Field("5m", examples=["5m"])


class AiKeyLevelsOut(BaseModel):
    support: list[float]
    resistance: list[float]


class AiGrokAnswerOut(BaseModel):
    direction: Literal["long", "short", "neutral"]
    confidence: float
    reasoning: str
    key_levels: AiKeyLevelsOut
    risks: list[str]
    horizon: str


class AiTechnicalOut(BaseModel):
    direction: str
    confidence: float
    reason: str


class AiGrokOutcomeOut(BaseModel):
    outcome: Literal["answered", "fallback"]
    model: str
    answer: AiGrokAnswerOut | None = None
    reason: Literal["not_configured", "warming_up", "breaker_open", "over_budget", "unavailable", "deadline",
                    "invalid_answer"] | None = Field(None, description="Why the technical consensus stands alone")
    detail: str | None = None
    shared: bool = Field(False, description="Answered from an identical earlier question (cost nothing)")
    cost_usd: float


class AiAnalysisOut(BaseModel):
    symbol: str
    interval: str
    open_time: int = Field(description="The analysed candle's open time (ms)")
    signal: Literal["long", "short", "neutral"] = Field(
        description="Grok's direction when it answered, else the technical consensus (the fallback)")
    confidence: float
    source: Literal["grok", "technical"]
    technical: AiTechnicalOut | None = Field(description="The technical consensus (null while warming up)")
    grok: AiGrokOutcomeOut


class AiSignalOut(BaseModel):
    symbol: str
    interval: str
    open_time: int
    model: str
    answer: AiGrokAnswerOut
    technical: dict[str, float | str | None]
    created_at: datetime


class AiSpendOut(BaseModel):
    cost_usd: float
    budget_usd: float
    calls: int | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    invalid_answers: int | None = None


class AiBreakerOut(BaseModel):
    state: Literal["closed", "open", "half_open"]
    failures: int
    retry_at: datetime | None
    last_error: str | None


class AiUsageOut(BaseModel):
    day: str = Field(description="The UTC day the spend is counted in")
    model: str
    configured: bool = Field(description="Whether Grok can be asked at all (an xAI key is set)")
    user: AiSpendOut
    global_: AiSpendOut = Field(alias="global")
    breaker: AiBreakerOut

    model_config = ConfigDict(populate_by_name=True)


class AiChatTurnIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    role: Literal["user", "assistant"]
    content: str = Field(min_length=1, max_length=2000)


class AiChatIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    message: str = Field(min_length=1, max_length=2000, examples=["What is my equity, and how did my last trades do?"])
    history: list[AiChatTurnIn] = Field(default_factory=list, max_length=20,
                                        description="Earlier turns of this conversation, oldest first")


class AiToolUseOut(BaseModel):
    name: str
    arguments: str
    ok: bool


class AiChatOut(BaseModel):
    answer: str | None = Field(description="Grok's answer; null when it could not answer (see fallback_reason)")
    fallback_reason: str | None = None
    fallback_detail: str | None = None
    tools_used: list[AiToolUseOut] = Field(description="The read-only tools Grok called on your account")
    rounds: int
    cost_usd: float


class AiSuggestionOut(BaseModel):
    parameter: str
    value: float
    reason: str


class AiReviewBodyOut(BaseModel):
    verdict: Literal["won", "lost"]
    reasons: list[str]
    lessons: list[str]
    suggestions: list[AiSuggestionOut]


class AiProposalOut(BaseModel):
    parameter: str
    value: float
    number: int | None = Field(None, description="The tuning proposal's number (GET /api/tuning/proposals/{n})")
    tier: str | None = None
    status: str | None = None
    refused: str | None = Field(None, description="Why the tuning tiers refused the suggestion")


class AiTradeReviewOut(BaseModel):
    trade_id: int
    symbol: str
    model: str
    outcome: Literal["answered", "fallback"]
    review: AiReviewBodyOut | None
    fallback_reason: str | None
    fallback_detail: str | None
    cost_usd: float
    proposals: list[AiProposalOut] = Field(description="Each suggestion as Grok's tuning proposal")
    created_at: datetime
