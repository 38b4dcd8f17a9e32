"""The contracts between gateway, workflows and activities: task queues, search attributes,
workflow-ID helpers and every …Input/…Result payload.

A leaf module: it imports only the standard library, ``temporalio.common`` and ``trading``, so the
gateway and activities can use it without importing workflow code.
"""

from __future__ import annotations

from dataclasses import dataclass

from temporalio.common import SearchAttributeKey

TASK_QUEUE_TRADING = "trading"
TASK_QUEUE_MARKET = "market"
TASK_QUEUE_AI = "ai"
TASK_QUEUES = (TASK_QUEUE_TRADING, TASK_QUEUE_MARKET, TASK_QUEUE_AI)


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
    newer than the last they processed and fill gaps from ``market_data``."""

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
