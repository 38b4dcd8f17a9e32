"""The contracts of real orders: ``OrderWorkflow`` (``order:{user}:{client_order_id}``) and its activities.

A manual order that opens or adds risk waits for its owner's confirmation (the 2-step flow); the
confirmation names the order's terms by their digest, so a confirmation of other terms is refused.
No one-time secret crosses these boundaries: the application layer mints each human channel's
token, shows it once and hands the workflow only its HMAC. No API key either: activities receive
the key's ID and decrypt it themselves.
"""

# No ``from __future__ import annotations``: see core.contracts.
import hashlib
import re
from dataclasses import dataclass, field

# Order states. UNKNOWN: sent, outcome not known yet (never resent; resolved by a lookup).
# NOT_PLACED: still unknown when the protection window closed; it counts as exposure until the
# next reconciliation says otherwise.
AWAITING_CONFIRMATION = "AWAITING_CONFIRMATION"
SUBMITTING = "SUBMITTING"
UNKNOWN = "UNKNOWN"
OPEN = "OPEN"
PARTIALLY_FILLED = "PARTIALLY_FILLED"
FILLED = "FILLED"
CANCELED = "CANCELED"
REJECTED = "REJECTED"
EXPIRED = "EXPIRED"
NOT_PLACED = "NOT_PLACED"
FINAL_STATES = frozenset({FILLED, CANCELED, REJECTED, EXPIRED, NOT_PLACED})
LIVE_STATES = frozenset({OPEN, PARTIALLY_FILLED})
# Binance's order statuses mapped to ours (EXPIRED_IN_MATCH is self-trade prevention: it expired).
EXCHANGE_STATES = {
    "NEW": OPEN, "PENDING_NEW": OPEN, "PARTIALLY_FILLED": PARTIALLY_FILLED, "FILLED": FILLED,
    "CANCELED": CANCELED, "PENDING_CANCEL": OPEN, "REJECTED": REJECTED, "EXPIRED": EXPIRED,
    "EXPIRED_IN_MATCH": EXPIRED,
}

# The human channels that get their own one-time confirmation secret.
CONFIRM_CHANNELS = ("dashboard", "telegram")
ORIGINS = ("manual", "session")
SIDES = ("BUY", "SELL")
ORDER_TYPES = ("MARKET", "LIMIT")
# Conditional orders: on USDⓈ-M only through the Algo Order API (``/fapi/v1/algoOrder``, ``clientAlgoId``).
CONDITIONAL_TYPES = ("STOP_MARKET", "TAKE_PROFIT_MARKET")
TIME_IN_FORCE = ("GTC", "IOC", "FOK", "GTX")
FUTURES, SPOT = "futures", "spot"
MARKETS = (FUTURES, SPOT)

# Submission outcomes an activity reports (it never guesses: ``unknown`` when the order may exist).
ACCEPTED, NOT_ACCEPTED, OUTCOME_UNKNOWN = "accepted", "not_accepted", "unknown"
# ApplicationError types the order activities raise: nothing was sent, the order cannot go out.
NO_API_KEY = "NoApiKey"

# Binance's client order ID alphabets: spot ^[a-zA-Z0-9-_]{1,36}$, USDⓈ-M adds '.', ':' and '/'.
# Ours use the common part, so one ID is valid on both markets.
CLIENT_ORDER_ID = re.compile(r"^[A-Za-z0-9_-]{1,36}$")


def client_order_id(prefix: str, seed: str) -> str:
    """A deterministic client order ID: ``prefix`` (letters, digits; 1-4 chars) and 30 hex digits of
    the seed's SHA-256. The same seed (a manual request's idempotency key, a session's counter) gives
    the same ID, so a retried request can never place a second order."""
    if not re.fullmatch(r"[A-Za-z0-9]{1,4}", prefix):
        raise ValueError(f"prefix must be 1-4 letters or digits, got {prefix!r}")
    return f"{prefix}-{hashlib.sha256(seed.encode()).hexdigest()[:30]}"


def order_workflow_id(user_id: str, order_id: str) -> str:
    if not user_id or ":" in user_id:
        raise ValueError(f"user_id must be a non-empty ID without ':', got {user_id!r}")
    if not CLIENT_ORDER_ID.match(order_id):
        raise ValueError(f"order IDs are 1-36 letters, digits, '-' or '_', got {order_id!r}")
    return f"order:{user_id}:{order_id}"


@dataclass(frozen=True)
class OrderTerms:
    """What is sent to the exchange, as decimal strings already on the symbol's tick and step."""

    market: str  # futures | spot
    symbol: str
    side: str  # BUY | SELL
    order_type: str  # one of ORDER_TYPES or CONDITIONAL_TYPES
    quantity: str  # "0" with close_position
    price: str | None = None  # LIMIT only
    time_in_force: str | None = None  # LIMIT only
    reduce_only: bool = False
    trigger_price: str | None = None  # conditional only
    close_position: bool = False  # conditional only: closes the whole position when triggered

    @property
    def conditional(self) -> bool:
        return self.order_type in CONDITIONAL_TYPES


def terms_digest(terms: OrderTerms) -> str:
    """The digest a confirmation names: any change to what would be sent changes it."""
    values: tuple[object, ...] = (terms.market, terms.symbol, terms.side, terms.order_type, terms.quantity,
                                  terms.price, terms.time_in_force, terms.reduce_only)
    if terms.conditional:
        values += (terms.trigger_price, terms.close_position)
    canonical = "|".join(str(v) for v in values)
    return hashlib.sha256(canonical.encode()).hexdigest()[:32]


@dataclass(frozen=True)
class RiskVerdict:
    check: str
    passed: bool
    detail: str


@dataclass(frozen=True)
class OrderSummary:
    """What the owner sees before confirming."""

    expected_price: float
    notional: float
    fee: float
    leverage: int
    liquidation_price: float | None
    risk_checks: tuple[RiskVerdict, ...] = ()


@dataclass(frozen=True)
class OrderTiming:
    """Every wait of an order, from the settings, so tests run them in seconds."""

    confirm_expiry_s: float = 60.0
    submit_timeout_s: float = 15.0
    lookup_timeout_s: float = 10.0
    protection_window_s: float = 30.0
    poll_interval_s: float = 5.0
    not_accepted_retries: int = 3


@dataclass(frozen=True)
class ExchangeOrder:
    """The exchange's record of an order, as a reply or a lookup read it."""

    exchange_order_id: int
    status: str  # Binance's
    orig_qty: float
    executed_qty: float
    avg_price: float
    price: float
    update_time_ms: int
    reduce_only: bool = False


@dataclass(frozen=True)
class OrderTransition:
    status: str
    at_ms: int
    note: str = ""


@dataclass(frozen=True)
class OrderView:
    """An order as its owner sees it (never a token or its HMAC)."""

    order_id: str  # the client order ID
    user_id: str
    status: str
    terms: OrderTerms
    terms_digest: str
    origin: str  # manual | session
    source: str  # the requesting channel, or the session's workflow ID
    created_at_ms: int
    summary: OrderSummary | None = None
    confirm_by_ms: int | None = None
    confirmed_by: str | None = None
    exchange_order_id: int | None = None
    executed_qty: float = 0.0
    avg_price: float = 0.0
    reason: str = ""
    updated_at_ms: int = 0
    revision: int = 0
    history: tuple[OrderTransition, ...] = ()
    replaces: str | None = None
    replaced: bool = False  # the replaced order was cancelled (or had ended)


@dataclass(frozen=True)
class OrderInput:
    user_id: str
    order_id: str
    key_id: str
    terms: OrderTerms
    origin: str
    source: str
    created_at_ms: int
    needs_confirmation: bool
    timing: OrderTiming = OrderTiming()
    summary: OrderSummary | None = None
    # Channel -> HMAC of its one-time confirmation secret (a human requester's channel; others are
    # issued later through ``issue_confirm_token``).
    confirm_token_hmacs: dict = field(default_factory=dict)
    # Carried across continue-as-new: where the order got to.
    resume: OrderView | None = None
    # The protective order this one replaces (a moved stop): cancelled once this one is on the exchange,
    # so the position is never without one.
    replaces: str | None = None


@dataclass(frozen=True)
class ConfirmOrderInput:
    user_id: str
    human: bool
    channel: str  # one of CONFIRM_CHANNELS
    token_hmac: str
    terms_digest: str


@dataclass(frozen=True)
class IssueConfirmTokenInput:
    user_id: str
    human: bool
    channel: str
    token_hmac: str


@dataclass(frozen=True)
class CancelOrderRequest:
    user_id: str
    channel: str
    reason: str = ""


@dataclass(frozen=True)
class SubmitOrderInput:
    user_id: str
    key_id: str
    order_id: str
    terms: OrderTerms


@dataclass(frozen=True)
class SubmitOrderResult:
    outcome: str  # ACCEPTED | NOT_ACCEPTED | OUTCOME_UNKNOWN
    order: ExchangeOrder | None = None
    code: int | None = None
    message: str = ""
    # NOT_ACCEPTED only: whether sending again later may succeed (throttled, rate-limited, unreachable).
    retryable: bool = False
    retry_after_s: float = 0.0


@dataclass(frozen=True)
class LookupOrderInput:
    user_id: str
    key_id: str
    order_id: str
    market: str
    symbol: str
    conditional: bool = False  # an algo order, looked up by clientAlgoId


@dataclass(frozen=True)
class LookupOrderResult:
    order: ExchangeOrder | None  # None: the exchange says it does not exist (-2013)


@dataclass(frozen=True)
class CancelOnExchangeResult:
    order: ExchangeOrder | None  # the order after the cancel (filled, if the fill won the race)
    note: str = ""


@dataclass(frozen=True)
class RecordOrderInput:
    view: OrderView
    event: str
