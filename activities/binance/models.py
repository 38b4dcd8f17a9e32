"""What the Binance client hands to the rest of Durabot (floats, integer milliseconds, UTC)."""

from __future__ import annotations

from dataclasses import dataclass

from trading.candle import Candle


@dataclass(frozen=True, slots=True)
class SymbolInfo:
    """One exchangeInfo symbol with the filters that shape orders."""

    symbol: str
    status: str
    base_asset: str
    quote_asset: str
    tick_size: float
    min_price: float
    max_price: float
    step_size: float
    min_qty: float
    max_qty: float
    min_notional: float


@dataclass(frozen=True, slots=True)
class Ticker24h:
    symbol: str
    last_price: float
    open_price: float
    high_price: float
    low_price: float
    volume: float
    quote_volume: float
    price_change_percent: float
    open_time: int
    close_time: int


@dataclass(frozen=True, slots=True)
class BookTicker:
    """The best bid and ask; ``time`` is the exchange's transaction time (USDⓈ-M only, else None)."""

    symbol: str
    bid_price: float
    ask_price: float
    time: int | None

    @property
    def mid(self) -> float:
        return (self.bid_price + self.ask_price) / 2


@dataclass(frozen=True, slots=True)
class FundingRate:
    """One USDⓈ-M funding event: ``rate`` is a fraction (0.0001 = 0.01 %), may be negative."""

    symbol: str
    funding_time: int
    rate: float
    mark_price: float | None


@dataclass(frozen=True, slots=True)
class ClosedKline:
    """A kline the exchange marked closed (``x: true``): safe to store and trade on."""

    symbol: str
    interval: str
    candle: Candle


@dataclass(frozen=True, slots=True)
class TradeTick:
    symbol: str
    trade_id: int
    price: float
    quantity: float
    time_ms: int
    buyer_is_maker: bool


@dataclass(frozen=True, slots=True)
class StreamConnected:
    """A stream connection is up and subscribed. Anything closed while it was down must be fetched
    by REST now: ``reason`` is ``initial``, ``reconnect`` (after a failure) or ``rotation``."""

    connection_number: int
    reason: str


StreamEvent = ClosedKline | TradeTick | StreamConnected


@dataclass(frozen=True, slots=True)
class BanAlert:
    """The exchange banned us (HTTP 418): no request is sent until ``until_wall_ms``."""

    message: str
    code: int | None
    retry_after_s: float
    until_wall_ms: int
