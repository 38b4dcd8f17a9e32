"""The contracts of TrainingWorkflow ``training:{user}:{job_id}`` and its activities.

A leaf module like ``core.backtest_contracts``: the standard library and ``trading.candle`` only (not
``trading.price_model``, which needs numpy: workflow code never imports it), so the gateway can start
training jobs and the workflow can hold fold results without importing activity code.

A job trains ``trading.price_model`` on the latest ``candles`` stored ``market_data`` candles of one
stream, scores it walk-forward in ``folds`` folds, one activity per fold, and finally fits the model
on every sample for predictions. The candle range is pinned when the job loads its data
(``TrainingPlan``), so every fold, on whichever worker, sees the same candles.
"""

# No ``from __future__ import annotations`` here: Temporal's payload converter resolves each
# dataclass's type hints on every decode, and string annotations cost ~8x more to resolve.
import math
import re
from dataclasses import dataclass, field

from trading.candle import INTERVAL_MS
from trading.errors import InvalidInput

# Status of a training_jobs document. completed is final: a job ID is used up once done.
STATUS_QUEUED = "queued"
STATUS_RUNNING = "running"
STATUS_COMPLETED = "completed"
STATUS_FAILED = "failed"
STATUS_CANCELLED = "cancelled"
TERMINAL_STATUSES = (STATUS_COMPLETED, STATUS_FAILED, STATUS_CANCELLED)

# The ApplicationError type of a bad request or unusable data: never retried, the message says why.
INPUT_ERROR = "TrainingInputError"

# Parameter ranges (inclusive) and defaults.
HORIZON = (1, 48)
FOLDS = (2, 20)
LOOKBACK = (1, 50)
CANDLES = (200, 20_000)
RIDGE = (1e-6, 1e6)
DEFAULT_HORIZON = 1
DEFAULT_FOLDS = 5
DEFAULT_LOOKBACK = 10
DEFAULT_CANDLES = 3000
DEFAULT_RIDGE = 1.0

_ID = re.compile(r"^[A-Za-z0-9_.-]{1,100}$")
_SYMBOL = re.compile(r"^[A-Z0-9]{2,20}$")


def training_workflow_id(user_id: str, job_id: str) -> str:
    if not _ID.match(user_id or ""):
        raise ValueError(f"user_id must be 1-100 of A-Z a-z 0-9 _ . -, got {user_id!r}")
    if not _ID.match(job_id or ""):
        raise ValueError(f"job_id must be 1-100 of A-Z a-z 0-9 _ . -, got {job_id!r}")
    return f"training:{user_id}:{job_id}"


def model_version(job_id: str, trained_through: int) -> str:
    """A model's name: the job that trained it and the open time of the last candle it saw."""
    return f"{job_id}@{trained_through}"


@dataclass(frozen=True)
class TrainingInput:
    """One training job on the latest ``candles`` stored candles of ``symbol``/``interval``."""

    job_id: str
    user_id: str
    symbol: str
    interval: str
    horizon: int = DEFAULT_HORIZON
    folds: int = DEFAULT_FOLDS
    lookback: int = DEFAULT_LOOKBACK
    candles: int = DEFAULT_CANDLES
    ridge: float = DEFAULT_RIDGE
    # How soon a dead worker's fold is retried elsewhere.
    heartbeat_timeout_s: float = 30.0


@dataclass(frozen=True)
class TrainingJob:
    """An activity's input: the request and the workflow run that owns the job's document, so a stale
    attempt of an earlier run can never write into a later one's."""

    request: TrainingInput
    run_id: str


@dataclass(frozen=True)
class TrainingPlan:
    """The data a job trains on, pinned: stored candles with ``first_open_time <= open_time <=
    last_open_time`` (``candles`` of them), giving ``samples`` feature rows with a target."""

    first_open_time: int
    last_open_time: int
    candles: int
    samples: int
    gaps: int  # places where consecutive stored candles are more than one interval apart


@dataclass(frozen=True)
class FoldInput:
    job: TrainingJob
    plan: TrainingPlan
    fold: int  # 1 .. folds


@dataclass(frozen=True)
class FoldScores:
    """One fold's out-of-sample sums (``trading.price_model.FoldStats``), kept in the workflow's state."""

    fold: int
    train_samples: int
    test_samples: int
    test_from: int
    test_to: int
    abs_error: float
    squared_error: float
    abs_baseline: float
    squared_baseline: float
    hits: int
    moves: int
    ups: int


@dataclass(frozen=True)
class TrainingStep:
    """Progress the workflow records after each fold: the folds done so far."""

    job_id: str
    run_id: str
    folds_total: int
    folds: list[FoldScores] = field(default_factory=list)


@dataclass(frozen=True)
class FinishInput:
    job: TrainingJob
    plan: TrainingPlan
    folds: list[FoldScores]


@dataclass(frozen=True)
class TrainingMark:
    """A final status the workflow itself records (failed, cancelled)."""

    job_id: str
    run_id: str
    status: str
    error: str | None = None


@dataclass(frozen=True)
class TrainingResult:
    """What the workflow returns; the model and the per-fold scores are in ``training_jobs`` too."""

    job_id: str
    symbol: str
    interval: str
    model_version: str
    trained_through: int  # open time of the last candle the model saw
    candles: int
    samples: int
    scores: dict


@dataclass(frozen=True)
class TrainingProgress:
    """What the workflow knows now (the live detail; lists come from ``training_jobs``)."""

    job_id: str
    status: str
    folds_done: int
    folds_total: int
    fraction: float
    error: str | None = None


def _whole(name: str, value: object, bounds: tuple[int, int]) -> None:
    low, high = bounds
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise InvalidInput(name, f"{name} must be a whole number from {low} to {high}, got {value!r}")


def input_refusal(request: TrainingInput) -> InvalidInput | None:
    """Why a request cannot run (the field and the reason), from the request alone (no I/O), or None.
    Whether its parameters fit in ``candles`` (``trading.price_model.min_candles``) and that many are
    stored is checked by the service at start and by the job when it loads its data."""
    try:
        try:
            training_workflow_id(request.user_id, request.job_id)
        except ValueError as exc:
            raise InvalidInput(None, str(exc)) from None
        if not isinstance(request.symbol, str) or not _SYMBOL.match(request.symbol):
            raise InvalidInput("symbol", f"symbol must be 2-20 of A-Z 0-9 (e.g. BTCUSDT), got {request.symbol!r}")
        if request.interval not in INTERVAL_MS:
            raise InvalidInput("interval", f"interval {request.interval!r} unknown; known: {', '.join(INTERVAL_MS)}")
        _whole("horizon", request.horizon, HORIZON)
        _whole("folds", request.folds, FOLDS)
        _whole("lookback", request.lookback, LOOKBACK)
        _whole("candles", request.candles, CANDLES)
        ridge = request.ridge
        if (not isinstance(ridge, (int, float)) or isinstance(ridge, bool) or not math.isfinite(ridge)
                or not RIDGE[0] <= ridge <= RIDGE[1]):
            raise InvalidInput("ridge", f"ridge must be a number from {RIDGE[0]:g} to {RIDGE[1]:g}, got {ridge!r}")
        timeout = request.heartbeat_timeout_s
        if not isinstance(timeout, (int, float)) or not math.isfinite(timeout) or not 1 <= timeout <= 600:
            raise InvalidInput(None, f"heartbeat_timeout_s must be in [1, 600], got {timeout!r}")
    except InvalidInput as exc:
        return exc
    return None


def input_problem(request: TrainingInput) -> str | None:
    """``input_refusal``'s reason alone (what the workflow records)."""
    refusal = input_refusal(request)
    return refusal.reason if refusal is not None else None

