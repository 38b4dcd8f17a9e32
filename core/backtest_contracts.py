"""The contracts of BacktestWorkflow ``backtest:{id}`` and its activities.

A leaf module like ``core.contracts``: the standard library and ``trading`` only, so the gateway
can start backtests and read their progress without importing workflow or activity code.

Times are epoch milliseconds of candle open times. The candles are data files of the product
(``dataset``, or ``datasets`` for several symbols: file names under ``data/candles``) or stored
``market_data`` (of ``symbols`` when several); either way each symbol's indicators warm up from its
first candle loaded (``warmup_from`` cuts the start, as the CLI's ``--warmup-from``) and the Engine
trades candles with ``trade_from <= open_time < trade_to``. A ``settings_document``
(``core.settings_document``) stands for ``engine_settings`` and ``analysis_settings`` and names the
symbols and interval, which the candles must then be.
"""

# No ``from __future__ import annotations`` here: Temporal's payload converter resolves each
# dataclass's type hints on every decode, and string annotations cost ~8x more to resolve.
import math
import re
from dataclasses import dataclass, field

from core.settings_document import SettingsDocument, SettingsDocumentError, parse
from trading.analysis_settings import AnalysisSettings
from trading.candle import INTERVAL_MS
from trading.errors import InvalidInput
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

# Trades of a run are stored this many to a ``backtest_trades`` document (``chunk`` k: trades 500k..):
# a document per trade costs SecantusDB ~1 ms each to store, a chunk is ~300 kB.
TRADES_PER_CHUNK = 500

# The ApplicationError type of a bad request: never retried, the message says what is wrong.
INPUT_ERROR = "BacktestInputError"

_ID = re.compile(r"^[A-Za-z0-9_.-]{1,100}$")
_DATASET = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*\.csv(\.gz)?$")
_FILE_STREAM = re.compile(r"^(?P<symbol>[A-Z0-9]+)-(?P<interval>\d+[mhd])-")
MAX_SYMBOLS = 20


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
    shapes; omitted fields keep their defaults. Exactly one of ``dataset``, ``datasets`` and
    ``market_data``; ``symbols`` only with ``market_data`` (``market_data.symbol`` among them)."""

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
    datasets: list[str] | None = None
    symbols: list[str] | None = None
    settings_document: dict | None = None
    # Replay the AI decision records of this session (the owner's own, set by the service) on the
    # candles they cover, so Grok's part trades as it did (trading.ai_modes).
    ai_decisions_of: str | None = None


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
    symbols: list[str] = field(default_factory=list)  # every symbol traded (``symbol``: the first)


def document_of(request: BacktestInput) -> SettingsDocument | None:
    if request.settings_document is None:
        return None
    return parse(request.settings_document)


def engine_settings_of(request: BacktestInput) -> EngineSettings:
    document = document_of(request)
    if document is not None:
        return document.engine
    data = request.engine_settings or {}
    if not isinstance(data, dict):
        raise ValueError(f"engine_settings must be an object, got {data!r}")
    return EngineSettings.from_dict(data)


def analysis_settings_of(request: BacktestInput) -> AnalysisSettings:
    document = document_of(request)
    if document is not None:
        return document.analysis
    data = request.analysis_settings or {}
    if not isinstance(data, dict):
        raise ValueError(f"analysis_settings must be an object, got {data!r}")
    return AnalysisSettings.from_dict(data)


def dataset_names(request: BacktestInput) -> list[str]:
    return [request.dataset] if request.dataset is not None else list(request.datasets or ())


def file_stream(name: str) -> tuple[str, str] | None:
    """(symbol, interval) from a data file's name (``BTCUSDT-5m-2023-01.csv.gz``), or None."""
    found = _FILE_STREAM.match(name)
    if found is None or found.group("interval") not in INTERVAL_MS:
        return None
    return found.group("symbol"), found.group("interval")


def traded_symbols(request: BacktestInput) -> list[str]:
    """The symbols a (valid) request trades: its files' or its stored streams'."""
    names = dataset_names(request)
    if names:
        return [stream[0] for stream in map(file_stream, names) if stream is not None]
    md = request.market_data
    return list(request.symbols or ([md.symbol] if md else []))


def _time(name: str, value: object) -> None:
    if value is None:
        return
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise InvalidInput(name, f"{name} must be epoch milliseconds (an integer >= 0), got {value!r}")


def _sources(request: BacktestInput) -> None:
    given = [n for n in ("dataset", "datasets", "market_data") if getattr(request, n) is not None]
    if len(given) != 1:
        raise InvalidInput("dataset", "give exactly one candle source: dataset, datasets or market_data")
    if request.datasets is not None:
        names = request.datasets
        if not isinstance(names, list) or not 1 <= len(names) <= MAX_SYMBOLS:
            raise InvalidInput("datasets", f"datasets must be a list of 1 to {MAX_SYMBOLS} file names")
    for name in dataset_names(request):
        where = "dataset" if request.dataset is not None else "datasets"
        if not isinstance(name, str) or not _DATASET.match(name):
            raise InvalidInput(where, f"{where} must be a file name under data/candles (NAME.csv.gz), got {name!r}")
        if request.datasets is not None and file_stream(name) is None:
            raise InvalidInput("datasets", f"{name}: a file name must start SYMBOL-INTERVAL- to say what it holds")
    streams = [file_stream(n) for n in request.datasets or ()]
    if len({s[0] for s in streams if s}) != len(streams):
        raise InvalidInput("datasets", "two files of one symbol: one file per symbol")
    if len({s[1] for s in streams if s}) > 1:
        raise InvalidInput("datasets", "the files hold different intervals: one interval per backtest")
    if request.market_data is not None:
        md = request.market_data
        if not md.symbol or not md.symbol.isalnum():
            raise InvalidInput("market_data", f"market_data.symbol must be alphanumeric, got {md.symbol!r}")
        if md.interval not in INTERVAL_MS:
            raise InvalidInput("market_data", f"market_data.interval {md.interval!r} unknown; "
                                              f"known: {', '.join(INTERVAL_MS)}")
        _time("market_data.start", md.start)
        _time("market_data.end", md.end)
        if md.start is None or md.end is None or md.start > md.end:
            raise InvalidInput("market_data", f"market_data needs start <= end, got {md.start!r}..{md.end!r}")
    if request.symbols is not None:
        symbols = request.symbols
        if request.market_data is None:
            raise InvalidInput("symbols", "symbols go with market_data (files say their symbol in their name)")
        if (not isinstance(symbols, list) or not 1 <= len(symbols) <= MAX_SYMBOLS or len(set(symbols)) != len(symbols)
                or not all(isinstance(s, str) and s.isalnum() for s in symbols)):
            raise InvalidInput("symbols", f"symbols must be 1 to {MAX_SYMBOLS} distinct symbols, got {symbols!r}")
        if request.market_data.symbol not in symbols:
            raise InvalidInput("symbols", f"market_data.symbol {request.market_data.symbol} is not among the symbols")


def _document_matches(request: BacktestInput) -> None:
    if request.settings_document is None:
        return
    if request.engine_settings is not None or request.analysis_settings is not None:
        raise InvalidInput("settings", "give the settings document or engine_settings/analysis_settings, not both")
    try:
        document = parse(request.settings_document)
    except SettingsDocumentError as exc:
        raise InvalidInput(f"settings.{exc.field}" if exc.field else "settings", exc.reason) from None
    symbols = traded_symbols(request)
    if sorted(symbols) != sorted(document.symbols):
        raise InvalidInput("settings.symbols", f"the settings trade {', '.join(document.symbols)} but the candles "
                                               f"are of {', '.join(symbols)}")
    names = dataset_names(request)
    stream = file_stream(names[0]) if names else None
    interval = stream[1] if stream else request.market_data.interval if request.market_data else None
    if interval is not None and interval != document.interval:
        raise InvalidInput("settings.interval", f"the settings are for {document.interval} candles, the candles "
                                                f"are {interval}")


def input_refusal(request: BacktestInput) -> InvalidInput | None:
    """Why a request cannot run (the field and the reason), from the request alone (no I/O), or None.
    The run activity also checks what needs I/O: that the files exist and the range holds candles."""
    try:
        backtest_workflow_id(request.backtest_id)
        if not request.user_id or not isinstance(request.user_id, str):
            raise InvalidInput(None, "user_id is required")
        _sources(request)
        for name in ("warmup_from", "trade_from", "trade_to"):
            _time(name, getattr(request, name))
        start, stop = request.trade_from, request.trade_to
        if start is not None and stop is not None and start >= stop:
            raise InvalidInput("trade_from", f"empty time range: trade_from {start} is not before trade_to {stop}")
        timeout = request.heartbeat_timeout_s
        if not isinstance(timeout, (int, float)) or not math.isfinite(timeout) or not 1 <= timeout <= 600:
            raise InvalidInput(None, f"heartbeat_timeout_s must be in [1, 600], got {timeout!r}")
        _document_matches(request)
        for section, build in (("engine_settings", engine_settings_of), ("analysis_settings", analysis_settings_of)):
            try:
                build(request)
            except InvalidInput as exc:  # names the setting within its section
                raise InvalidInput(f"{section}.{exc.field}" if exc.field else section, exc.reason) from None
            except (ValueError, TypeError) as exc:
                raise InvalidInput(section, str(exc)) from None
    except InvalidInput as exc:
        return exc
    except (ValueError, TypeError) as exc:
        return InvalidInput(None, str(exc))
    return None


def input_problem(request: BacktestInput) -> str | None:
    """``input_refusal``'s reason alone (what the workflow records)."""
    refusal = input_refusal(request)
    return refusal.reason if refusal is not None else None
