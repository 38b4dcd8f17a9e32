"""The contracts of the real session ``session:{user}:real`` and its activities.

A real session trades the paper session's decisions with real money: the same candles, the same
analysis and the same entry planning (an Engine that models the account), executed through
``OrderWorkflow``s on the exchange, which is the truth. It is configured first (NEW), and trades
only after a RED approval started it (RUNNING). HALTED is running with entries stopped by the
session itself (a reconciliation difference, a position left without its protective orders): exits
are still managed, and only the owner resumes entries. STOPPED takes no candles; its positions stay
on the exchange with their protective orders unless the owner stopped and flattened.
"""

# No ``from __future__ import annotations``: see core.contracts.
from dataclasses import dataclass, field

from core.contracts import CandleClosed, SessionSettingsRecord
from core.order_contracts import OrderTiming

REAL_NEW = "NEW"
REAL_RUNNING = "RUNNING"
REAL_HALTED = "HALTED"
REAL_STOPPED = "STOPPED"
TRADING_STATES = frozenset({REAL_RUNNING, REAL_HALTED})

# Why a session halted its entries (``RealAlert.kind``).
ALERT_RECONCILIATION = "reconciliation"
ALERT_UNPROTECTED = "unprotected_position"
ALERT_ORDER_FAILED = "order_failed"
ALERT_HEDGE_MODE = "hedge_mode"
ALERT_USER_STREAM = "user_stream"

DEFAULT_RUN_EVENTS = 2_000

# ApplicationError type: the approval named to start a session is not an approved RED one.
NOT_APPROVED = "NotApproved"

# Sent by the user-data stream activity: the ledger is behind the exchange (``LedgerHint``).
SIGNAL_LEDGER_HINT = "ledger_hint"
HINT_CONNECTED = "connected"


def real_session_workflow_id(user_id: str) -> str:
    if not user_id or ":" in user_id:
        raise ValueError(f"user_id must be a non-empty ID without ':', got {user_id!r}")
    return f"session:{user_id}:real"


@dataclass(frozen=True)
class RealSessionConfig:
    """What a real session trades, with which key, and how it is run (checked by the application
    layer; ``engine_settings`` and ``analysis_settings`` are the paper session's, as dicts)."""

    key_id: str
    source: str
    symbols: tuple[str, ...]
    interval: str
    engine_settings: dict
    analysis_settings: dict
    timing: OrderTiming = OrderTiming()
    # How long a fresh position may wait for its protective orders before it is closed.
    protection_confirm_s: float = 5.0
    # How often the session compares its view with the exchange's while running.
    reconcile_every_s: float = 60.0
    # A run continues as new once its history holds this many events.
    run_events: int = DEFAULT_RUN_EVENTS


@dataclass(frozen=True)
class ConfigureRealSessionInput:
    user_id: str
    config: RealSessionConfig


@dataclass(frozen=True)
class StartRealSessionInput:
    user_id: str
    approval_id: str  # the RED proposal ("{user}:{n}") whose approval starts the session


@dataclass(frozen=True)
class StopRealSessionInput:
    user_id: str
    flatten: bool = False
    reason: str = ""


@dataclass(frozen=True)
class RealEntriesInput:
    user_id: str
    enabled: bool
    human: bool = True


@dataclass(frozen=True)
class AdoptInput:
    """Take the exchange's positions as the session's (after a difference): a person's decision."""

    user_id: str
    human: bool


@dataclass(frozen=True)
class ManagedPosition:
    """A position the session holds on the exchange, with its protective orders' client IDs."""

    symbol: str
    side: str  # LONG | SHORT
    quantity: float
    entry_price: float
    opened_at_ms: int
    stop_loss: float | None = None
    take_profit: float | None = None
    stop_order: str | None = None
    take_order: str | None = None
    adopted: bool = False


@dataclass(frozen=True)
class RealAlert:
    at_ms: int
    kind: str
    message: str


@dataclass(frozen=True)
class RealSessionState:
    user_id: str
    status: str = REAL_NEW
    config: RealSessionConfig | None = None
    engine: dict | None = None
    entries_enabled: bool = True
    approval_id: str | None = None
    order_seq: int = 0
    positions: tuple[ManagedPosition, ...] = ()
    # Orders sent and not yet final, by client order ID -> symbol (they count as exposure).
    pending_orders: dict = field(default_factory=dict)
    last_open_time: dict = field(default_factory=dict)
    queue: tuple[CandleClosed, ...] = ()
    alerts: tuple[RealAlert, ...] = ()
    report: dict | None = None
    halted_reason: str = ""
    candles_processed: int = 0
    orders_sent: int = 0
    revision: int = 0
    # What the exchange confirmed at the start: symbol -> leverage, symbol -> margin type.
    leverage: dict = field(default_factory=dict)
    margin_types: dict = field(default_factory=dict)
    # The analysis anchor of each stream (stream key -> open time), as paper carries it.
    analysis_anchor: dict = field(default_factory=dict)
    # Symbols acted on at the coming open -> the signed quantity the exchange should then hold.
    acted: dict = field(default_factory=dict)
    # User-data stream connections the session was told of (each one is followed by a gap-fill).
    stream_connections: int = 0
    # Raised by every settings change (configure, a tuning proposal applied): a proposal made at another
    # version fails instead of overwriting what moved since.
    settings_version: int = 0


@dataclass(frozen=True)
class RealSessionStatus:
    workflow_id: str
    user_id: str
    status: str
    entries_enabled: bool
    halted_reason: str
    symbols: tuple[str, ...]
    interval: str
    key_id: str | None
    approval_id: str | None
    positions: tuple[ManagedPosition, ...]
    pending_orders: dict
    alerts: tuple[RealAlert, ...]
    report: dict | None
    market_time: int
    last_open_time: dict
    candles_processed: int
    orders_sent: int
    queued: int
    model_equity: float
    revision: int
    leverage: dict = field(default_factory=dict)
    margin_types: dict = field(default_factory=dict)
    stream_connections: int = 0
    last_hint_ms: int = 0


# -- activities ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ReadExchangeInput:
    """``full``: also the position mode and the wallet (weight 35 more); a candle's read leaves them out,
    the start and the periodic reconciliation read them."""

    user_id: str
    key_id: str
    symbols: tuple[str, ...]
    full: bool = False


@dataclass(frozen=True)
class ExchangePosition:
    symbol: str
    quantity: float  # signed: > 0 long, < 0 short
    entry_price: float


@dataclass(frozen=True)
class ExchangeView:
    """What the exchange reports of the account, read in one go."""

    positions: tuple[ExchangePosition, ...]
    open_orders: dict  # client order ID -> symbol
    open_algo_orders: dict  # clientAlgoId -> symbol
    prices: dict  # symbol -> the book's bid and ask midpoint now
    read_at_ms: int
    # Read with ``full`` only (None otherwise).
    hedge_mode: bool | None = None
    wallet_balance: float | None = None
    equity: float | None = None  # wallet balance plus unrealized profit
    # symbol -> leverage, symbol -> margin type (ISOLATED/CROSSED), as the exchange has them now.
    leverage: dict = field(default_factory=dict)
    margin_types: dict = field(default_factory=dict)


@dataclass(frozen=True)
class RealSettingsUpdated:
    """What the real session's ``update_settings`` answers (the tuning apply reads ``settings``)."""

    status: RealSessionStatus
    settings: SessionSettingsRecord


@dataclass(frozen=True)
class PrepareAccountInput:
    """Set each symbol's leverage and isolated margin, as the session's model trades them."""

    user_id: str
    key_id: str
    symbols: tuple[str, ...]
    leverage: int


@dataclass(frozen=True)
class PrepareAccountResult:
    leverage: dict  # symbol -> the leverage the exchange confirmed
    margin_types: dict  # symbol -> ISOLATED


@dataclass(frozen=True)
class RecordRealSessionInput:
    status: RealSessionStatus
    event: str
    alert: RealAlert | None = None


@dataclass(frozen=True)
class SyncLedgerInput:
    """``income``: also the income history (weight 30): after fills and on the periodic reconciliation."""

    user_id: str
    key_id: str
    session_id: str
    symbols: tuple[str, ...]
    income: bool = True


@dataclass(frozen=True)
class SyncLedgerResult:
    fills_added: int
    income_added: int


@dataclass(frozen=True)
class FollowUserStreamInput:
    user_id: str
    key_id: str
    session_id: str


@dataclass(frozen=True)
class LedgerHint:
    """``reason``: ``connected`` (a gap-fill is due), ``fill`` or ``balance``; ``event_time_ms`` the
    exchange's event time (0 for a connection)."""

    reason: str
    event_time_ms: int = 0
