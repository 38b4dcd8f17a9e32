"""AI: Grok's market analysis, chat and trade reviews, and price-prediction models trained on stored candles.

Reads (recent answers, spend, reviews, training jobs, predictions) are AUTHENTICATED. What spends Grok
tokens or worker time (an analysis, a chat, a review, a training job) and cancelling a job are SENSITIVE
and take an idempotency key: a repeat with the same key answers with the first result and spends nothing
more. Everything is the caller's own: another user's job or trade is not found. Grok's suggestions from
a review go to the tuning tiers as proposals; nothing here changes a setting or places an order.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from core.training_contracts import (
    CANDLES,
    DEFAULT_CANDLES,
    DEFAULT_FOLDS,
    DEFAULT_HORIZON,
    DEFAULT_LOOKBACK,
    DEFAULT_RIDGE,
    FOLDS,
    HORIZON,
    LOOKBACK,
    RIDGE,
)
from gateway.ai_schemas import (
    AiAnalysisOut,
    AiAnalyzeIn,
    AiChatIn,
    AiChatOut,
    AiChatTurnIn,
    AiSignalOut,
    AiTradeReviewOut,
    AiUsageOut,
)
from gateway.mcp.registry import IdempotencyKey, current, tool
from gateway.paper.schemas import Interval
from gateway.routers import ai_training as training_routes
from gateway.routers.ai import analyze, chat, review_trade, signals, trade_reviews, usage
from gateway.routers.ai_training import PredictionOut, TrainingJobIn, TrainingJobOut

Symbol = Annotated[str, Field(pattern=r"^[A-Za-z0-9]{2,20}$", description="e.g. BTCUSDT (case does not matter)")]
JobId = Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]{1,100}$", description="a training job ID of yours (tj-…)")]
TradeId = Annotated[int, Field(ge=1, le=2**53, description="a closed trade ID of your paper session")]
Limit = Annotated[int, Field(ge=1, le=100)]
Horizon = Annotated[int, Field(ge=HORIZON[0], le=HORIZON[1], description="predict the log return this many candles "
                                                                         "ahead")]
Folds = Annotated[int, Field(ge=FOLDS[0], le=FOLDS[1], description="walk-forward folds scored")]
Lookback = Annotated[int, Field(ge=LOOKBACK[0], le=LOOKBACK[1], description="past log returns among the features")]
Candles = Annotated[int, Field(ge=CANDLES[0], le=CANDLES[1], description="train and score on the latest this many "
                                                                         "stored candles")]
Ridge = Annotated[float, Field(ge=RIDGE[0], le=RIDGE[1], allow_inf_nan=False,
                               description="L2 penalty on the standardised features (1.0 shrinks hard, 0.01 hardly)")]


# -- Grok: analysis, chat, reviews ------------------------------------------------------------------------
@tool("AI", "sensitive", title="Analyse the market with Grok", idempotent=True, open_world=True)
async def analyze_market(symbol: Symbol, idempotency_key: IdempotencyKey, interval: Interval = "5m") -> AiAnalysisOut:
    """Analyse the latest stored candle of a symbol: the technical consensus of the 5 strategies (with your
    paper session's analysis settings), then Grok's view of it (direction, confidence, reasoning, key levels,
    risks, horizon). When Grok cannot answer (not configured, breaker open, over budget, unavailable, past
    the deadline, invalid answer) the signal falls back to the consensus and `grok.reason` says why. Spends
    Grok tokens against your daily budget, unless the same question was answered already (`grok.shared`)."""
    call = current()
    return await analyze(AiAnalyzeIn(symbol=symbol.upper(), interval=interval), call.principal, call.services.ai,
                         idempotency_key)


@tool("AI", "authenticated", title="Grok's recent market answers", read_only=True)
async def get_ai_signals(symbol: Symbol, interval: Interval | None = None, limit: Limit = 20) -> list[AiSignalOut]:
    """Grok's recent analyses of a symbol (the same for every user), newest first: the candle's open time,
    Grok's answer and the technical consensus it was given."""
    call = current()
    return await signals(symbol.upper(), call.principal, call.services.ai, interval, limit)


@tool("AI", "authenticated", title="Grok's cost today", read_only=True)
async def get_ai_usage() -> AiUsageOut:
    """What Grok cost today (UTC day) for you and for everyone, against the daily budgets, whether Grok is
    configured at all, and its circuit breaker (closed, open, half_open)."""
    call = current()
    return await usage(call.principal, call.services.ai)


@tool("AI", "sensitive", title="Ask Grok about your account", idempotent=True, open_world=True)
async def chat_with_ai(
    message: Annotated[str, Field(min_length=1, max_length=2000)], idempotency_key: IdempotencyKey,
    history: Annotated[list[AiChatTurnIn], Field(max_length=20, description="earlier turns, oldest first")] = [],  # noqa: B006
) -> AiChatOut:
    """Ask Grok a question about your own paper account or the market. Grok answers with read-only tools
    over your portfolio, your closed paper trades, stored candles and indicators (listed in `tools_used`);
    it cannot change anything. `answer` is null when Grok could not answer (`fallback_reason`). Spends
    Grok tokens against your daily budget."""
    call = current()
    return await chat(AiChatIn(message=message, history=history), call.principal, call.services.ai_chat,
                      idempotency_key)


@tool("AI", "sensitive", title="Have Grok review a closed trade", idempotent=True, open_world=True)
async def review_trade_with_ai(trade_id: TradeId, idempotency_key: IdempotencyKey) -> AiTradeReviewOut:
    """Grok reviews one of your closed paper trades: won or lost, why, what to learn, and settings it
    suggests. Each suggestion becomes Grok's tuning proposal (`proposals`): GREEN ones apply within their
    bounds, YELLOW and RED wait for the account's owner to approve them in the dashboard or Telegram.
    Spends Grok tokens against your daily budget."""
    call = current()
    return await review_trade(trade_id, call.principal, call.services.ai_reviews, idempotency_key)


@tool("AI", "authenticated", title="Grok's trade reviews", read_only=True)
async def list_ai_trade_reviews(limit: Limit = 20) -> list[AiTradeReviewOut]:
    """Grok's latest reviews of your trades, newest first, with the proposals they made."""
    call = current()
    return await trade_reviews(call.principal, call.services.ai_reviews, limit)


# -- price-prediction models ----------------------------------------------------------------------------
@tool("AI", "sensitive", title="Train a price model", idempotent=True)
async def train_price_model(
    symbol: Symbol, interval: Interval, idempotency_key: IdempotencyKey,
    horizon: Horizon = DEFAULT_HORIZON, folds: Folds = DEFAULT_FOLDS, lookback: Lookback = DEFAULT_LOOKBACK,
    candles: Candles = DEFAULT_CANDLES, ridge: Ridge = DEFAULT_RIDGE,
) -> TrainingJobOut:
    """Start training a ridge-regression price model on the latest stored candles of a symbol and interval,
    scored walk-forward against the random walk (no change). Answers at once with the queued job: follow it
    with get_training_job (status, folds done, progress 0-1), then predict with predict_price. Refused, naming
    the field, when too few candles are stored for the parameters."""
    call = current()
    body = TrainingJobIn(symbol=symbol.upper(), interval=interval, horizon=horizon, folds=folds, lookback=lookback,
                         candles=candles, ridge=ridge)
    return await training_routes.start_training(body, call.principal, call.services.ai_training, idempotency_key)


@tool("AI", "authenticated", title="Training jobs", read_only=True)
async def list_training_jobs(limit: Limit = 20, offset: Annotated[int, Field(ge=0, le=100_000)] = 0,
                             ) -> list[TrainingJobOut]:
    """Your price-model training jobs, newest first, with status, progress and overall scores (the folds
    and the fitted model: get_training_job)."""
    call = current()
    return await training_routes.list_training_jobs(call.principal, call.services.ai_training, limit, offset)


@tool("AI", "authenticated", title="A training job", read_only=True)
async def get_training_job(job_id: JobId) -> TrainingJobOut:
    """One of your training jobs: status (queued, running, completed, failed, cancelled), folds done and
    progress, and once completed its scores per fold and overall (skill > 0: better than no change) and the
    model."""
    call = current()
    return await training_routes.get_training_job(job_id, call.principal, call.services.ai_training)


@tool("AI", "sensitive", title="Cancel a training job", destructive=True, idempotent=True)
async def cancel_training_job(job_id: JobId, idempotency_key: IdempotencyKey) -> TrainingJobOut:
    """Cancel one of your queued or running training jobs; answers once it has ended (within seconds). A job
    that already ended is answered as it is (a completed model stays), so a repeat changes nothing; the key
    only marks the call as one intended action."""
    call = current()
    return await training_routes.cancel_training_job(job_id, call.principal, call.services.ai_training)


@tool("AI", "authenticated", title="Predict a price", read_only=True)
async def predict_price(symbol: Symbol, interval: Interval = "5m") -> PredictionOut:
    """Your latest completed price model of a symbol and interval applied to the latest stored candles: the
    predicted return and close `horizon` candles ahead, with the model's version, how many candles it is
    behind, and its walk-forward scores. Not found without a completed model (train_price_model)."""
    call = current()
    return await training_routes.predict_price(symbol.upper(), call.principal, call.services.ai_training, interval)
