"""The contracts between gateway, workflows and activities: task queues, search attributes,
workflow-ID helpers and every …Input/…Result payload.

A leaf module: it imports only the standard library, ``temporalio.common`` and ``trading``, so the
gateway and activities can use it without importing workflow code.
"""

# No ``from __future__ import annotations`` here: Temporal's payload converter resolves each
# dataclass's type hints on every decode, and string annotations cost ~8x more to resolve.
from dataclasses import dataclass

from temporalio.common import SearchAttributeKey

TASK_QUEUE_TRADING = "trading"
TASK_QUEUE_MARKET = "market"
TASK_QUEUE_AI = "ai"
# Real orders and sessions: served only by workers that hold the master key (they decrypt API keys).
TASK_QUEUE_REAL = "real"
TASK_QUEUES = (TASK_QUEUE_TRADING, TASK_QUEUE_MARKET, TASK_QUEUE_AI, TASK_QUEUE_REAL)


def task_queue_name(role: str, prefix: str = "") -> str:
    """The queue a role is served on. Tests give each run a unique prefix so runs never share
    queues; workflows that schedule on another role's queue receive the names in their input."""
    if role not in TASK_QUEUES:
        raise ValueError(f"unknown task queue role {role!r}")
    return f"{prefix}{role}"

# What an operator filters on in the Temporal UI (DESIGN §3).
SA_USER = SearchAttributeKey.for_keyword("DurabotUser")
SA_MODE = SearchAttributeKey.for_keyword("DurabotMode")
SA_STATE = SearchAttributeKey.for_keyword("DurabotState")
SA_SYMBOLS = SearchAttributeKey.for_keyword_list("DurabotSymbols")
SEARCH_ATTRIBUTES = (SA_USER, SA_MODE, SA_STATE, SA_SYMBOLS)


@dataclass(frozen=True)
class ProbeInput:
    """Sent by health checks to prove a worker serves a task queue end to end."""

    task_queue: str


@dataclass(frozen=True)
class ProbeResult:
    task_queue: str
    worker_identity: str


@dataclass(frozen=True)
class SystemProbeInput:
    task_queues: tuple[str, ...] = TASK_QUEUES


@dataclass(frozen=True)
class SystemProbeResult:
    probes: tuple[ProbeResult, ...]


def system_probe_workflow_id(request_id: str) -> str:
    return f"probe:{request_id}"


# ---- Market feed -------------------------------------------------------------------------------

# The feed signals subscribers of any workflow type, so the signal names are part of the contract.
SIGNAL_CANDLE_CLOSED = "candle_closed"
SIGNAL_PRICE_TRIGGER = "price_trigger"


def feed_workflow_id(source: str) -> str:
    return f"feed:{source}"


@dataclass(frozen=True)
class CandleClosed:
    """One closed candle, signalled to every workflow subscribed to (symbol, interval).

    Delivery is at-least-once and in order per subscription; receivers drop any ``open_time`` not
    newer than the last they processed and fill gaps from ``market_data``. ``analysis`` is the shared
    analysis of the candle under the subscriber's analysis settings (an ``AnalyzeCandleResult`` as a
    dict) when the feed could compute it; a receiver checks its key before it trusts it."""

    source: str
    symbol: str
    interval: str
    open_time: int
    close_time: int
    open: float
    high: float
    low: float
    close: float
    volume: float
    analysis: dict | None = None


@dataclass(frozen=True)
class PriceTrigger:
    """A latency hint from a live feed that an armed price level was crossed; never a fill by itself."""

    source: str
    symbol: str
    price: float
    time: int
    level_id: str


@dataclass(frozen=True)
class FeedSubscription:
    source: str
    symbol: str
    interval: str
    workflow_id: str
    # The subscriber's analysis settings (``AnalysisSettings.to_dict()``): the feed computes that
    # analysis once per candle and settings and sends it with the candle. None: candles only.
    analysis_settings: dict | None = None


@dataclass(frozen=True)
class MarketFeedInput:
    """Which feed to run. The streams it follows come from the worker's settings plus the
    subscriptions in MongoDB, so changing them needs no new workflow."""

    source: str
    # How long one feed activity runs before the workflow continues as new (wall seconds).
    run_seconds: float = 6 * 3600.0
    # How soon a dead worker's feed is retried elsewhere.
    heartbeat_timeout_s: float = 30.0


@dataclass(frozen=True)
class MarketFeedResult:
    candles_stored: int
    candles_signalled: int
    resumed_from: dict[str, int]
    # Payloads refused from the exchange (malformed JSON, NaN, non-positive prices, …) by category.
    bad_exchange_data: dict[str, int]


@dataclass(frozen=True)
class ReadCandlesInput:
    symbol: str
    interval: str
    start: int  # open time, inclusive
    end: int  # open time, inclusive


@dataclass(frozen=True)
class ReadCandlesResult:
    candles: tuple[CandleClosed, ...]


@dataclass(frozen=True)
class FeedRecorderInput:
    source: str
    symbol: str
    interval: str


@dataclass(frozen=True)
class FeedRecorderState:
    """What a FeedRecorderWorkflow received, after deduplication and gap filling."""

    open_times: tuple[int, ...]
    closes: tuple[float, ...]
    duplicates_dropped: int
    gap_candles_filled: int
    stopped: bool


def feed_recorder_workflow_id(name: str) -> str:
    return f"feed-recorder:{name}"


# ---- Trading sessions --------------------------------------------------------------------------

SESSION_MODES = ("paper",)
SESSION_RUNNING = "running"
SESSION_STOPPED = "stopped"
# Before the first `start` a session exists (update-with-start) but trades on nothing.
SESSION_NEW = "new"


def session_workflow_id(user_id: str, mode: str = "paper") -> str:
    """``session:{user}:{mode}``; ``user_id`` is the short ID that never changes (not the email)."""
    if not user_id or ":" in user_id:
        raise ValueError(f"user_id must be a non-empty ID without ':', got {user_id!r}")
    if mode not in SESSION_MODES:
        raise ValueError(f"unknown session mode {mode!r}; known: {', '.join(SESSION_MODES)}")
    return f"session:{user_id}:{mode}"


def stream_key(symbol: str, interval: str) -> str:
    """The per-stream key of a session's bookkeeping maps (JSON object keys must be strings)."""
    return f"{symbol}@{interval}"


@dataclass(frozen=True)
class StartSessionInput:
    """Start (or restart) trading. Settings dicts are ``EngineSettings.to_dict()`` /
    ``AnalysisSettings.to_dict()`` shapes; omitted fields keep their defaults."""

    source: str
    symbols: tuple[str, ...]
    interval: str
    engine_settings: dict | None = None
    analysis_settings: dict | None = None
    # How long a multi-symbol session waits for a silent stream before trading on without it.
    barrier_timeout_s: float = 60.0


@dataclass(frozen=True)
class UpdateSymbolsInput:
    """Follow these symbols from now on (running or stopped); the feed subscriptions follow.
    ``specs``: the exchange's filters of exactly these symbols (``SymbolSpec`` dicts), which the
    Engine trades by from now on; empty keeps the Engine's (older callers)."""

    symbols: tuple[str, ...]
    specs: tuple[dict, ...] = ()


@dataclass(frozen=True)
class SignalIntervalInput:
    """Trade on this timeframe from now on: the session subscribes to it and leaves the old one."""

    interval: str


@dataclass(frozen=True)
class UpdateSettingsInput:
    """Patches of the engine and/or analysis settings (either may be None to keep it): each names only
    the fields it changes, and nested objects (``risk``, ``rsi``, ``macd`` …) merge field by field
    inside the session, so concurrent writers of different fields never undo each other.
    ``expected_version``: the settings version the writer saw; another one is a conflict."""

    engine_settings: dict | None = None
    analysis_settings: dict | None = None
    expected_version: int | None = None


@dataclass(frozen=True)
class ManualOrderInput:
    """A manual order: ``market`` fills at the feed's latest price ± slippage; ``limit`` and
    ``stop_limit`` rest until a candle fills them."""

    symbol: str
    side: str  # "long" | "short"
    order_type: str  # "market" | "limit" | "stop_limit"
    quantity: float
    limit_price: float | None = None
    stop_price: float | None = None
    reduce_only: bool = False
    stop_loss: float | None = None
    take_profit: float | None = None


@dataclass(frozen=True)
class CancelOrderInput:
    order_id: int


@dataclass(frozen=True)
class CloseTradeInput:
    trade_id: int


@dataclass(frozen=True)
class ManualOrderResult:
    """A resting order (``order``) or the fills of a market order and any trade it closed."""

    order: dict | None
    fills: tuple[dict, ...]
    trades: tuple[dict, ...]


@dataclass(frozen=True)
class SessionCommit:
    """One step's outcome, written by the commit local activity under natural unique keys.

    ``opened`` are positions (``Position.to_dict()``) opened by this step; ``closed`` trades
    (``Trade.to_dict()``); ``account`` is ``Account.to_dict()`` at market time ``time``."""

    session_id: str
    user_id: str
    time: int
    account: dict
    opened: tuple[dict, ...] = ()
    closed: tuple[dict, ...] = ()
    partial_closes: tuple[dict, ...] = ()  # Trade.to_dict() of parts closed from a position that stays open
    analysis_key: str | None = None
    status: str = SESSION_RUNNING
    # The candle's (or manual order's) symbol; ``sequence`` numbers commits for unique event keys.
    symbol: str | None = None
    sequence: int | None = None
    generation: int = 0
    metrics: dict | None = None  # RunningMetrics.snapshot() after this step
    day_closed: dict | None = None  # DayClosed.to_dict() when this step crossed 00:00 UTC
    # The consensus that decided this candle (long/short only), published as AISignalReceived.
    signal: dict | None = None
    # With fills at the next open: the earlier candle's decision this step acted on, with its outcome
    # (also published as AISignalReceived, under that candle's analysis).
    acted_on: dict | None = None
    # With Grok's part on (``ai_mode``): what this candle's decision used, written to ``ai_decisions``.
    ai_decision: dict | None = None



@dataclass(frozen=True)
class SessionSettingsRecord:
    """A session's settings as the dashboard reads them from ``paper_trading_settings``."""

    session_id: str
    user_id: str
    status: str
    source: str
    symbols: tuple[str, ...]
    interval: str
    engine_settings: dict
    analysis_settings: dict
    analysis_settings_hash: str
    # Numbers the records of one session, so each publishes its own BotStatusUpdate event.
    version: int | None = None
    generation: int = 0
    entries_enabled: bool = True



@dataclass(frozen=True)
class JournalEntry:
    """One write a session applied, in order (``seq``): what the Engine needs to apply it again.
    ``change`` is kind-specific (``workflows.session_journal``); ``candles_processed`` and
    ``market_time`` say where between candles it happened."""

    seq: int
    kind: str
    update_id: str
    applied_at: int  # wall time (workflow.now), ms
    market_time: int
    candles_processed: int
    change: dict



@dataclass(frozen=True)
class SessionWrite:
    """One record of a session's outbox: a step's commit, a settings record or a journal entry."""

    commit: SessionCommit | None = None
    settings: SessionSettingsRecord | None = None
    journal: JournalEntry | None = None


@dataclass(frozen=True)
class SessionState:
    """Everything a session carries across continue-as-new; plain JSON all the way down."""

    user_id: str
    mode: str = "paper"
    status: str = SESSION_NEW
    source: str = ""
    symbols: tuple[str, ...] = ()
    interval: str = ""
    engine: dict | None = None  # Engine.to_state()
    analysis_settings: dict | None = None  # AnalysisSettings.to_dict()
    # Per stream_key: the open time of the last candle processed, and the analysis anchor.
    last_open_time: dict[str, int] | None = None
    analysis_anchor: dict[str, int] | None = None
    queue: tuple[CandleClosed, ...] = ()
    candles_processed: int = 0
    duplicates_dropped: int = 0
    gap_candles_filled: int = 0
    # Candles of streams the session does not follow, and candles the Engine refused (bad data).
    candles_ignored: int = 0
    candles_rejected: int = 0
    trades_closed: int = 0
    commits: int = 0
    # Account generation: 0 until the first reset; every reset starts a new one.
    generation: int = 0
    metrics: dict | None = None  # RunningMetrics.to_state()
    # Per stream_key: the newest open time already read from market_data to fill a gap.
    read_through: dict[str, int] | None = None
    lagging: tuple[str, ...] = ()  # symbols the multi-symbol barrier stopped waiting for
    barrier_timeout_s: float = 60.0
    settings_version: int = 0
    # Per stream_key: the newest open time signalled to the session. Candles received but not yet
    # traded are not carried across continue-as-new: the next run reads them from market_data.
    received_through: dict[str, int] | None = None
    # Per symbol: the decision (analysis key and AISignalReceived data) waiting for the next open.
    waiting_decisions: dict[str, dict] | None = None
    # Records written in order to MongoDB after the step or write that made them, and not yet written.
    outbox: tuple[SessionWrite, ...] = ()
    # The write history (idempotency records and the journal's recent entries), packed.
    writes: str | None = None
    journal_seq: int = 0
    # What the session is degraded by (status ``degraded``): an outage outlives a handover.
    degraded: dict | None = None


@dataclass(frozen=True)
class SessionStatus:
    workflow_id: str
    user_id: str
    mode: str
    status: str
    source: str
    symbols: tuple[str, ...]
    interval: str
    market_time: int
    last_open_time: dict[str, int]
    analysis_anchor: dict[str, int]
    queued: int
    candles_processed: int
    duplicates_dropped: int
    gap_candles_filled: int
    candles_ignored: int
    candles_rejected: int
    trades_closed: int
    entries_enabled: bool
    equity: float
    generation: int = 0
    metrics: dict | None = None  # RunningMetrics.snapshot()
    lagging: tuple[str, ...] = ()
    # What does not work as it should right now (analysis, commits, market data), with the reason;
    # the session recovers by itself once the cause goes away.
    degraded: dict[str, str] | None = None
    pending_writes: int = 0  # records waiting to be written to MongoDB
    journal_seq: int = 0  # sequence number of the last write applied
    settings_version: int = 0
    # Per symbol: the side a closed candle decided, waiting to fill at the next candle's open.
    waiting_entries: dict[str, str] | None = None


@dataclass(frozen=True)
class SettingsUpdated:
    """What ``update_settings`` answers: the session's status and its settings after the change."""

    status: SessionStatus
    settings: SessionSettingsRecord


@dataclass(frozen=True)
class ResetSessionResult:
    """What ``reset`` did before it opened a fresh account: pending orders cancelled first, then
    open positions closed at the feed's latest price."""

    cancelled_orders: tuple[dict, ...]
    closed_trades: tuple[dict, ...]
    status: SessionStatus


@dataclass(frozen=True)
class AnalyzeCandleInput:
    """Analyse one closed candle from the analysis anchor. ``anchor`` None: the activity picks
    the shared anchor of (symbol, interval, settings hash), or makes one."""

    symbol: str
    interval: str
    open_time: int
    analysis_settings: dict
    anchor: int | None = None


@dataclass(frozen=True)
class CompactSignal:
    """What the Engine reads from a consensus signal, plus its reason for the record."""

    direction: str  # trading.signals.Direction value
    confidence: float
    reason: str


@dataclass(frozen=True)
class AnalyzeCandleResult:
    anchor: int
    analysis_key: str
    signal: CompactSignal | None  # None while the analysis is warming up


@dataclass(frozen=True)
class LatestPriceInput:
    source: str
    symbol: str
    interval: str
    market: str = "futures"  # trading.settings.MarketType value: which book to ask


@dataclass(frozen=True)
class LatestPrice:
    price: float
    time: int  # market time of the price
    # Where it came from: the exchange's book ticker or 24-hour ticker, the feed's latest price, or a
    # stored candle's close.
    origin: str = "feed"


@dataclass(frozen=True)
class FundingRateInput:
    """The exchange's funding rate of ``symbol`` at one 8-hour grid instant (ms)."""

    symbol: str
    instant: int


@dataclass(frozen=True)
class FundingRateResult:
    rate: float | None  # None: the exchange has no rate for that instant (the constant rate applies)


@dataclass(frozen=True)
class SessionWritesInput:
    session_id: str
    user_id: str
    writes: tuple[SessionWrite, ...]


