"""The contracts of BacktestWorkflow ``backtest:{id}`` and its activities.

A leaf module like ``core.contracts``: the standard library and ``trading`` only, so the gateway
can start backtests and read their progress without importing workflow or activity code.

Times are epoch milliseconds of candle open times. The candles are either a data file of the
product (``dataset``, a file name under ``data/candles``) or stored ``market_data``; either way
indicators warm up from the first candle loaded (``warmup_from`` cuts the start, as the CLI's
``--warmup-from``) and the Engine trades candles with ``trade_from <= open_time < trade_to``.
"""

# No ``from __future__ import annotations`` here: Temporal's payload converter resolves each
# dataclass's type hints on every decode, and string annotations cost ~8x more to resolve.
import math
import re
from dataclasses import dataclass

from trading.analysis_settings import AnalysisSettings
from trading.candle import INTERVAL_MS
from trading.settings import EngineSettings

# Status of a backtest_results document. completed is final: a backtest ID is used up once done.
STATUS_QUEUED = "queued"
STATUS_RUNNING = "running"
STATUS_COMPLETED = "completed"
STATUS_FAILED = "failed"
STATUS_CANCELLED = "cancelled"
TERMINAL_STATUSES = (STATUS_COMPLETED, STATUS_FAILED, STATUS_CANCELLED)

PHASE_LOADING = "loading"
PHASE_ANALYSING = "analysing"
PHASE_TRADING = "trading"
PHASE_STORING = "storing"
PHASES = (PHASE_LOADING, PHASE_ANALYSING, PHASE_TRADING, PHASE_STORING)

# The ApplicationError type of a bad request: never retried, the message says what is wrong.
INPUT_ERROR = "BacktestInputError"

_ID = re.compile(r"^[A-Za-z0-9_.-]{1,100}$")
_DATASET = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*\.csv(\.gz)?$")


def backtest_workflow_id(backtest_id: str) -> str:
    if not _ID.match(backtest_id or ""):
        raise ValueError(f"backtest_id must be 1-100 of A-Z a-z 0-9 _ . -, got {backtest_id!r}")
    return f"backtest:{backtest_id}"


@dataclass(frozen=True)
class MarketDataRange:
    """Stored candles of one stream with ``start <= open_time <= end``."""

    symbol: str
    interval: str
    start: int
    end: int


@dataclass(frozen=True)
class BacktestInput:
    """One backtest. Settings dicts are ``EngineSettings.to_dict()`` / ``AnalysisSettings.to_dict()``
    shapes; omitted fields keep their defaults. Exactly one of ``dataset`` and ``market_data``."""

    backtest_id: str
    user_id: str
    dataset: str | None = None
    market_data: MarketDataRange | None = None
    engine_settings: dict | None = None
    analysis_settings: dict | None = None
    warmup_from: int | None = None
    trade_from: int | None = None
    trade_to: int | None = None
    # How soon a dead worker's run is retried elsewhere.
    heartbeat_timeout_s: float = 30.0


@dataclass(frozen=True)
class BacktestJob:
    """The run activity's input: the request and the workflow run that owns the result document,
    so a stale attempt of an earlier run can never write into a later one's."""

    request: BacktestInput
    run_id: str


@dataclass(frozen=True)
class BacktestMark:
    """A status the workflow itself records (failed before any run, cancelled)."""

    backtest_id: str
    run_id: str
    status: str
    error: str | None = None


@dataclass(frozen=True)
class BacktestProgress:
    """What the workflow knows; the live fraction of a running job is in ``backtest_results``."""

    backtest_id: str
    status: str
    phase: str | None
    fraction: float
    error: str | None = None


@dataclass(frozen=True)
class BacktestResult:
    """The summary the workflow returns; the full report (trades, equity curve) is in MongoDB."""

    backtest_id: str
    symbol: str
    interval: str
    candles_loaded: int
    candles_traded: int
    traded_from: int  # close time of the first traded candle
    traded_to: int  # close time of the last
    trades: int
    final_equity: float
    metrics: dict
    duration_s: float


def engine_settings_of(request: BacktestInput) -> EngineSettings:
    data = request.engine_settings or {}
    if not isinstance(data, dict):
        raise ValueError(f"engine_settings must be an object, got {data!r}")
    return EngineSettings.from_dict(data)


def analysis_settings_of(request: BacktestInput) -> AnalysisSettings:
    data = request.analysis_settings or {}
    if not isinstance(data, dict):
        raise ValueError(f"analysis_settings must be an object, got {data!r}")
    return AnalysisSettings.from_dict(data)


def _time(name: str, value: object) -> None:
    if value is None:
        return
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ValueError(f"{name} must be epoch milliseconds (an integer >= 0), got {value!r}")


def input_problem(request: BacktestInput) -> str | None:
    """Why a request cannot run, from the request alone (no I/O), or None. The run activity also
    checks what needs I/O: that the dataset exists and the range holds candles."""
    try:
        backtest_workflow_id(request.backtest_id)
        if not request.user_id or not isinstance(request.user_id, str):
            raise ValueError("user_id is required")
        if (request.dataset is None) == (request.market_data is None):
            raise ValueError("give exactly one candle source: dataset or market_data")
        if request.dataset is not None and not _DATASET.match(request.dataset):
            raise ValueError(f"dataset must be a file name under data/candles (NAME.csv.gz), got {request.dataset!r}")
        if request.market_data is not None:
            md = request.market_data
            if not md.symbol or not md.symbol.isalnum():
                raise ValueError(f"market_data.symbol must be alphanumeric, got {md.symbol!r}")
            if md.interval not in INTERVAL_MS:
                raise ValueError(f"market_data.interval {md.interval!r} unknown; known: {', '.join(INTERVAL_MS)}")
            _time("market_data.start", md.start)
            _time("market_data.end", md.end)
            if md.start is None or md.end is None or md.start > md.end:
                raise ValueError(f"market_data needs start <= end, got {md.start!r}..{md.end!r}")
        for name in ("warmup_from", "trade_from", "trade_to"):
            _time(name, getattr(request, name))
        start, stop = request.trade_from, request.trade_to
        if start is not None and stop is not None and start >= stop:
            raise ValueError(f"empty time range: trade_from {start} is not before trade_to {stop}")
        timeout = request.heartbeat_timeout_s
        if not isinstance(timeout, (int, float)) or not math.isfinite(timeout) or not 1 <= timeout <= 600:
            raise ValueError(f"heartbeat_timeout_s must be in [1, 600], got {timeout!r}")
        engine_settings_of(request)
        analysis_settings_of(request)
    except (ValueError, TypeError) as exc:
        return str(exc)
    return None
