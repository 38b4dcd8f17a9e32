"""The Engine's plain data: orders, fills, positions, trades, account, and the number rules.

Everything here is pure Python (no numpy/pandas) so it loads inside a Temporal workflow sandbox.
Numbers are floats; prices are rounded to the symbol's tick size and quantities down to its step
size with ``round_price`` / ``round_quantity`` (see trading/README.md, "Number rules").
Every mutable object converts to and from plain JSON types exactly (``to_dict`` / ``from_dict``).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from enum import StrEnum
from functools import lru_cache
from typing import Any


class Side(StrEnum):
    LONG = "long"
    SHORT = "short"

    @property
    def sign(self) -> int:
        return 1 if self is Side.LONG else -1

    @property
    def opposite(self) -> Side:
        return Side.SHORT if self is Side.LONG else Side.LONG


class OrderType(StrEnum):
    MARKET = "market"
    LIMIT = "limit"
    STOP_LIMIT = "stop_limit"


class Liquidity(StrEnum):
    MAKER = "maker"
    TAKER = "taker"


class CloseReason(StrEnum):
    SIGNAL = "signal"  # an opposite consensus signal
    STOP_LOSS = "stop_loss"
    TAKE_PROFIT = "take_profit"
    TRAILING_STOP = "trailing_stop"
    LIQUIDATION = "liquidation"
    MANUAL = "manual"  # close_trade() or a reduce-only order


@lru_cache(maxsize=256)
def _decimals(step: float) -> int:
    """Decimal places of a tick/step size such as 0.001 or 5e-05 (used to strip float noise)."""
    text = repr(step)
    if "e-" in text:
        mantissa, exponent = text.split("e-")
        return int(exponent) + (len(mantissa.split(".")[1]) if "." in mantissa else 0)
    return len(text.split(".")[1].rstrip("0")) if "." in text else 0


@lru_cache(maxsize=1024)
def _round_down_to_step(quantity: float, step: float) -> float:
    """``SymbolSpec.round_quantity``'s arithmetic, cached: a fixed-size strategy rounds the same
    quantity on every entry (every reversal of a backtest)."""
    steps = math.floor(quantity / step + 1e-9)
    return round(steps * step, _decimals(step))


@dataclass(frozen=True, slots=True)
class SymbolSpec:
    """Exchange filters of one symbol. A size of 0 disables that rounding (prices kept as given)."""

    symbol: str
    tick_size: float = 0.0
    step_size: float = 0.0
    min_notional: float = 0.0
    min_qty: float = 0.0
    quote_asset: str = ""  # "" when unknown (a backtest on a bare file)

    def __post_init__(self) -> None:
        for name in ("tick_size", "step_size", "min_notional", "min_qty"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
                raise ValueError(f"SymbolSpec {self.symbol}: {name} must be a finite number >= 0, got {value!r}")
        if not self.symbol:
            raise ValueError("SymbolSpec: symbol must not be empty")

    def round_price(self, price: float) -> float:
        """Nearest tick (half away from zero is irrelevant here: ties are vanishingly rare in floats)."""
        if self.tick_size == 0:
            return price
        return round(round(price / self.tick_size) * self.tick_size, _decimals(self.tick_size))

    def round_quantity(self, quantity: float) -> float:
        """Down to the step: never trade more than was asked or afforded. The 1e-9 absorbs float
        noise such as 0.3 / 0.1 = 2.9999999999999996, which must count as 3 steps."""
        if self.step_size == 0:
            return quantity
        return _round_down_to_step(quantity, self.step_size)


@dataclass(slots=True)
class Order:
    """A resting (limit / stop-limit) order; market orders fill at once and never rest."""

    id: int
    symbol: str
    side: Side
    type: OrderType
    quantity: float
    created_time: int
    limit_price: float | None = None
    stop_price: float | None = None
    reduce_only: bool = False
    triggered: bool = False  # a stop-limit whose stop was touched and now rests as a limit
    filled_quantity: float = 0.0
    stop_loss: float | None = None  # bracket for the position an entry order opens
    take_profit: float | None = None
    reserved_margin: float = 0.0

    @property
    def remaining(self) -> float:
        return self.quantity - self.filled_quantity

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Order:
        values = dict(data)
        values["side"] = Side(values["side"])
        values["type"] = OrderType(values["type"])
        return cls(**values)


# Fill and Trade are output records; not frozen only because frozen dataclasses construct several
# times slower, and the Engine makes one per fill on its hot path. Nothing mutates them.
@dataclass(slots=True)
class Fill:
    order_id: int | None  # None for engine-made fills (signal entries, SL/TP exits, liquidation)
    symbol: str
    side: Side  # the direction of the position this fill opens or closes
    opens: bool  # True: opens/increases a position; False: reduces/closes it
    quantity: float
    price: float
    fee: float
    liquidity: Liquidity
    time: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(slots=True)
class Position:
    """An isolated-margin position (one per symbol, one-way mode)."""

    trade_id: int
    symbol: str
    side: Side
    quantity: float
    entry_price: float
    entry_time: int
    leverage: int
    margin: float  # isolated margin; funding is settled against it
    liquidation_price: float  # 0.0 when it cannot be liquidated (spot, or long at 1x)
    stop_loss: float | None
    take_profit: float | None
    trailing_pct: float | None
    trail_extreme: float  # best price seen since entry, for the trailing stop
    entry_fee: float
    funding: float = 0.0  # paid (>0) or received (<0) so far
    max_favorable: float = 0.0  # MFE in quote currency (>= 0)
    max_adverse: float = 0.0  # MAE in quote currency (<= 0)

    def unrealised(self, price: float) -> float:
        if self.side is Side.LONG:
            return self.quantity * (price - self.entry_price)
        return self.quantity * (self.entry_price - price)

    def trailing_stop(self) -> float | None:
        if self.trailing_pct is None:
            return None
        if self.side is Side.LONG:
            return self.trail_extreme * (1 - self.trailing_pct / 100)
        return self.trail_extreme * (1 + self.trailing_pct / 100)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Position:
        values = dict(data)
        values["side"] = Side(values["side"])
        return cls(**values)


@dataclass(slots=True)
class Trade:
    """A closed trade: output of the Engine, never part of its state."""

    id: int
    symbol: str
    side: Side
    quantity: float
    leverage: int
    entry_time: int
    entry_price: float
    exit_time: int
    exit_price: float
    entry_fee: float
    exit_fee: float
    funding: float
    gross_pnl: float
    net_pnl: float  # gross - fees - funding
    max_favorable: float
    max_adverse: float
    close_reason: CloseReason

    @property
    def fees(self) -> float:
        return self.entry_fee + self.exit_fee

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass(frozen=True, slots=True)
class Account:
    """A snapshot at the last marked close."""

    cash: float  # wallet balance: starting balance + realised PnL - fees - funding
    equity: float  # cash + unrealised PnL at the last close
    unrealised: float
    margin_in_use: float
    available: float  # what new orders may use
    fees_paid: float
    funding_paid: float
    open_positions: int
    pending_orders: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
