"""Contracts of AI market analysis: asking Grok about one candle, and what came of it.

An ask ends in one of two outcomes: ``answered`` (a validated answer, fresh or shared from the cache)
or ``fallback`` with the reason the technical consensus stands alone. The reasons are the ones a
decision record and the dashboard show.
"""

# No ``from __future__ import annotations``: Temporal's payload converter resolves these hints.
from dataclasses import dataclass

from core.contracts import CompactSignal

ANSWERED = "answered"
FALLBACK = "fallback"

# Why the technical consensus was used without Grok.
NOT_CONFIGURED = "not_configured"  # no key (or no price for the model): Grok is never asked
WARMING_UP = "warming_up"  # the indicators are not defined yet on this candle
BREAKER_OPEN = "breaker_open"  # too many failures in a row: Grok rests until a trial call
OVER_BUDGET = "over_budget"  # the user's or everyone's daily spend is used up
UNAVAILABLE = "unavailable"  # 429/5xx/timeouts beyond the retries, or a refused request
DEADLINE = "deadline"  # no answer before the caller's deadline
INVALID_ANSWER = "invalid_answer"  # malformed or schema-breaking JSON: never a signal
FALLBACK_REASONS = (NOT_CONFIGURED, WARMING_UP, BREAKER_OPEN, OVER_BUDGET, UNAVAILABLE, DEADLINE, INVALID_ANSWER)

# ApplicationError types of the ask activity.
GROK_TEMPORARY = "GrokTemporary"  # retried (429, 5xx, timeout, dropped connection)
GROK_REFUSED = "GrokRefused"  # another 4xx: retrying gives the same answer
GROK_INVALID_ANSWER = "GrokInvalidAnswer"
ANALYSIS_MISSING = "AnalysisMissing"  # the technical analysis to ask about is not stored


@dataclass(frozen=True)
class AskGrokInput:
    """Ask Grok about the candle whose technical analysis is stored under ``analysis_key``; the
    spend is the ``user_id``'s (a shared answer costs nobody anything)."""

    user_id: str
    analysis_key: str
    purpose: str = "analysis"  # analysis | session (what the usage log says)


@dataclass(frozen=True)
class AskGrokResult:
    outcome: str  # ANSWERED | FALLBACK
    model: str
    question_key: str = ""
    answer: dict | None = None  # trading.ai_analysis.GrokAnswer.to_dict()
    reason: str | None = None  # a FALLBACK_REASONS member
    detail: str | None = None
    shared: bool = False  # answered from an earlier identical question
    cost_nano_usd: int = 0  # what this ask cost (0 when shared or not asked)
    # The strategies' verdicts Grok was shown ({strategy, direction, confidence, reason}): a voter
    # decision recounts them with Grok's vote.
    verdicts: tuple[dict, ...] = ()


@dataclass(frozen=True)
class GrokChatInput:
    """One round of a chat: OpenAI-style messages and tool definitions; spend is ``user_id``'s."""

    user_id: str
    messages: tuple[dict, ...]
    tools: tuple[dict, ...] = ()


@dataclass(frozen=True)
class GrokChatResult:
    outcome: str  # ANSWERED | FALLBACK
    model: str
    content: str | None = None
    tool_calls: tuple[dict, ...] = ()  # {id, name, arguments (JSON text)}
    reason: str | None = None
    detail: str | None = None
    cost_nano_usd: int = 0


@dataclass(frozen=True)
class ReviewTradeInput:
    """Grok's review of one closed trade (``trading.ai_review``); spend is ``user_id``'s."""

    user_id: str
    trade: dict
    entry_analysis: dict | None
    settings: dict  # tunable path -> current value


@dataclass(frozen=True)
class ReviewTradeResult:
    outcome: str  # ANSWERED | FALLBACK
    model: str
    review: dict | None = None  # TradeReview.to_dict()
    reason: str | None = None
    detail: str | None = None
    cost_nano_usd: int = 0


@dataclass(frozen=True)
class GrokCallPolicy:
    """How long a caller waits for Grok (``deadline_s``, retries included) and how it retries; from
    the settings, handed to workflows in their input since workflow code reads no settings."""

    task_queue: str
    model: str
    deadline_s: float
    call_timeout_s: float
    max_attempts: int
    retry_initial_s: float


@dataclass(frozen=True)
class AiChatInput:
    """``ai-chat:{user}:{request}:{round}``: one chat round as a durable job on the ``ai`` queue."""

    chat: GrokChatInput
    grok: GrokCallPolicy


@dataclass(frozen=True)
class AiReviewInput:
    """``ai-review:{user}:{trade}:{request}``: a trade review as a durable job on the ``ai`` queue."""

    review: ReviewTradeInput
    grok: GrokCallPolicy


@dataclass(frozen=True)
class AiAnalysisInput:
    """``/api/ai/analyze``: the technical analysis of one stored candle, then Grok's view of it."""

    user_id: str
    symbol: str
    interval: str
    open_time: int
    analysis_settings: dict
    trading_task_queue: str
    grok: GrokCallPolicy


@dataclass(frozen=True)
class AiAnalysisResult:
    symbol: str
    interval: str
    open_time: int
    analysis_key: str
    technical: CompactSignal | None  # None while warming up
    grok: AskGrokResult


def ai_analysis_workflow_id(user_id: str, request_id: str) -> str:
    return f"ai-analysis:{user_id}:{request_id}"


def ai_review_workflow_id(user_id: str, trade_key: str, request_id: str) -> str:
    return f"ai-review:{user_id}:{trade_key}:{request_id}"


def ai_chat_workflow_id(user_id: str, request_id: str, round_number: int) -> str:
    return f"ai-chat:{user_id}:{request_id}:{round_number}"
