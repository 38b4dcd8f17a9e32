"""``/api/ai/training-jobs`` and ``/api/ai/predictions``: train price-prediction models on stored candles,
follow and cancel the jobs, and predict with the latest model (the seed's ``predict_price`` and
``training_jobs``). An adapter over ``services.ai_training.AiTraining``: a bad request is a 422 naming
the field, another user's job is a 404, the same as one that does not exist, and so is a prediction
without a model of yours."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel, Field

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
from gateway.auth.deps import AUTH_ERRORS, CurrentUser, Responses
from gateway.deps import AiTrainingDep, IdempotencyKey
from gateway.errors import RejectedOut
from gateway.paper.route import RejectingRoute
from gateway.paper.schemas import ErrorOut, Finite, Interval, StrictModel, Symbol
from services.ai_training import TrainingRequest

router = APIRouter(prefix="/api/ai", tags=["ai"], route_class=RejectingRoute)

BAD_BODY: Responses = {400: {"model": ErrorOut, "description": "The body is not valid JSON"}}
REJECTED: Responses = {422: {"model": RejectedOut, "description": "Invalid request (the field and the reason), "
                                                                  "or too few stored candles"}}
NOT_FOUND: Responses = {404: {"model": ErrorOut, "description": "No such training job of yours"}}
NO_MODEL: Responses = {404: {"model": ErrorOut, "description": "No completed model of yours for this symbol and "
                                                               "interval"}}
CANNOT_PREDICT: Responses = {409: {"model": RejectedOut, "description": "The latest stored candles are too few or "
                                                                        "unusable for the model"}}
UNAVAILABLE: Responses = {503: {"model": ErrorOut, "description": "Temporal could not be reached in time"}}
JobId = Annotated[str, Path(pattern=r"^[A-Za-z0-9_.-]{1,100}$")]
SymbolPath = Annotated[str, Path(pattern=r"^[A-Z0-9]{2,20}$", examples=["BTCUSDT"])]


class TrainingJobIn(StrictModel):
    symbol: Symbol
    interval: Interval
    horizon: int = Field(DEFAULT_HORIZON, ge=HORIZON[0], le=HORIZON[1],
                         description="predict the log return this many candles ahead")
    folds: int = Field(DEFAULT_FOLDS, ge=FOLDS[0], le=FOLDS[1], description="walk-forward folds scored")
    lookback: int = Field(DEFAULT_LOOKBACK, ge=LOOKBACK[0], le=LOOKBACK[1],
                          description="past log returns among the features (also the volatility and volume window)")
    candles: int = Field(DEFAULT_CANDLES, ge=CANDLES[0], le=CANDLES[1],
                         description="train and score on the latest this many stored candles")
    ridge: Finite = Field(DEFAULT_RIDGE, ge=RIDGE[0], le=RIDGE[1],
                          description="L2 penalty on the standardised features (1.0 shrinks hard, 0.01 hardly)")


class TrainingJobOut(BaseModel):
    job_id: str
    status: str = Field(description="queued, running, completed, failed or cancelled")
    symbol: str
    interval: str
    progress: float = Field(0.0, description="0 to 1: each fold a part, the final fit the last")
    folds_done: int | None = None
    folds_total: int | None = None
    error: str | None = None
    request: dict[str, Any] | None = Field(None, description="the parameters the job was started with")
    data: dict[str, Any] | None = Field(None, description=(
        "the candles trained on: first and last open time, count, samples and gaps (once running)"))
    folds: list[dict[str, Any]] | None = Field(None, description="each scored fold's test window and scores")
    scores: dict[str, Any] | None = Field(None, description=(
        "walk-forward scores over every predicted sample: model and baseline (zero return) MAE and RMSE, the "
        "model's directional accuracy, skill = 1 - MSE_model / MSE_baseline (negative: worse than no change), "
        "up_fraction"))
    model_version: str | None = Field(None, description="job_id@open time of the last candle trained on")
    trained_through: int | None = None
    model: dict[str, Any] | None = Field(None, description="the fitted ridge model (features, standardisation, "
                                                           "weights, intercept)")
    created_at: Any = None
    started_at: Any = None
    finished_at: Any = None


class PredictionOut(BaseModel):
    symbol: str
    interval: str
    job_id: str
    model_version: str
    trained_through: int = Field(description="open time of the last candle the model was trained on")
    horizon: int
    from_open_time: int = Field(description="open time of the latest stored candle, predicted from")
    from_close: float
    target_close_time: int = Field(description="close time of the candle whose close is predicted")
    predicted_log_return: float
    predicted_return: float
    predicted_close: float
    candles_since_training: int
    scores: dict[str, Any] = Field(description="the model's walk-forward scores")


def _out(doc: dict[str, Any]) -> TrainingJobOut:
    known = set(TrainingJobOut.model_fields)
    return TrainingJobOut.model_validate({k: v for k, v in doc.items() if k in known})


@router.post("/training-jobs", status_code=202, response_model=TrainingJobOut,
             responses={**AUTH_ERRORS, **BAD_BODY, **REJECTED, **UNAVAILABLE})
async def start_training(body: TrainingJobIn, user: CurrentUser, training: AiTrainingDep,
                         key: IdempotencyKey = None) -> TrainingJobOut:
    """Train a price model on the latest stored candles of a symbol and interval, scored walk-forward
    against the random walk. With an Idempotency-Key, a repeat answers with the first job."""
    request = TrainingRequest(symbol=body.symbol, interval=body.interval, horizon=body.horizon, folds=body.folds,
                              lookback=body.lookback, candles=body.candles, ridge=body.ridge)
    return _out(await training.start(user, request, key))


@router.get("/training-jobs", response_model=list[TrainingJobOut], responses={**AUTH_ERRORS, **REJECTED})
async def list_training_jobs(user: CurrentUser, training: AiTrainingDep,
                             limit: Annotated[int, Query(ge=1, le=200)] = 50,
                             offset: Annotated[int, Query(ge=0, le=100_000)] = 0) -> list[TrainingJobOut]:
    """Your training jobs, newest first, with progress and overall scores (folds and model: GET one)."""
    return [_out(d) for d in await training.list(user, limit, offset)]


@router.get("/training-jobs/{job_id}", response_model=TrainingJobOut,
            responses={**AUTH_ERRORS, **NOT_FOUND, **REJECTED})
async def get_training_job(job_id: JobId, user: CurrentUser, training: AiTrainingDep) -> TrainingJobOut:
    """Progress (status, folds done, fraction) and, once completed, scores per fold and overall, and the model."""
    return _out(await training.get(user, job_id))


@router.post("/training-jobs/{job_id}/cancel", response_model=TrainingJobOut,
             responses={**AUTH_ERRORS, **NOT_FOUND, **REJECTED, **UNAVAILABLE})
async def cancel_training_job(job_id: JobId, user: CurrentUser, training: AiTrainingDep) -> TrainingJobOut:
    """Cancel a queued or running job (answers once it has ended, within seconds). A job that already
    ended is answered as it is: a completed model stays."""
    return _out(await training.cancel(user, job_id))


@router.get("/predictions/{symbol}", response_model=PredictionOut,
            responses={**AUTH_ERRORS, **NO_MODEL, **REJECTED, **CANNOT_PREDICT})
async def predict_price(symbol: SymbolPath, user: CurrentUser, training: AiTrainingDep,
                        interval: Annotated[Interval, Query()] = "5m") -> PredictionOut:
    """Your latest completed model of this symbol and interval applied to the latest stored candles: the
    predicted return and close ``horizon`` candles ahead, with the model's version and walk-forward scores."""
    return PredictionOut.model_validate(await training.predict(user, symbol, interval))
