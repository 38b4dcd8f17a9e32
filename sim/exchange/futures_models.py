"""The records of the sim's USDⓈ-M book (orders, algo orders, positions, accounts) with their Binance
views, and their JSON form for persistence. Amounts are Decimals, times virtual market ms."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

D0 = Decimal(0)
OPEN_STATUSES = ("NEW", "PARTIALLY_FILLED")
OPEN_ALGO_STATUSES = ("NEW",)
MARGIN_ASSET = "USDT"


def text(value: Decimal) -> str:
    """Binance's plain decimal text (no exponent, no trailing zeros beyond one decimal place)."""
    if value == 0:
        return "0"
    normalized = value.normalize()
    return f"{normalized:f}"


@dataclass
class Order:
    order_id: int
    api_key: str
    symbol: str
    client_order_id: str
    side: str
    type: str
    time_in_force: str
    orig_qty: Decimal
    price: Decimal
    reduce_only: bool
    close_position: bool = False
    orig_type: str = ""
    stop_price: Decimal = D0
    working_type: str = "CONTRACT_PRICE"
    status: str = "NEW"
    executed_qty: Decimal = D0
    cum_quote: Decimal = D0
    time_ms: int = 0
    update_ms: int = 0
    algo_id: int | None = None

    @property
    def avg_price(self) -> Decimal:
        return self.cum_quote / self.executed_qty if self.executed_qty else D0

    @property
    def remaining(self) -> Decimal:
        return self.orig_qty - self.executed_qty

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES

    def view(self) -> dict[str, Any]:
        """The order as ``GET /fapi/v1/order`` shows it."""
        return {
            "orderId": self.order_id,
            "symbol": self.symbol,
            "status": self.status,
            "clientOrderId": self.client_order_id,
            "price": text(self.price),
            "avgPrice": text(self.avg_price),
            "origQty": text(self.orig_qty),
            "executedQty": text(self.executed_qty),
            "cumQty": text(self.executed_qty),
            "cumQuote": text(self.cum_quote),
            "timeInForce": self.time_in_force,
            "type": self.type,
            "reduceOnly": self.reduce_only,
            "closePosition": self.close_position,
            "side": self.side,
            "positionSide": "BOTH",
            "stopPrice": text(self.stop_price),
            "workingType": self.working_type,
            "priceProtect": False,
            "origType": self.orig_type or self.type,
            "priceMatch": "NONE",
            "selfTradePreventionMode": "EXPIRE_MAKER",
            "goodTillDate": 0,
            "time": self.time_ms,
            "updateTime": self.update_ms,
        }


@dataclass
class AlgoOrder:
    algo_id: int
    api_key: str
    symbol: str
    client_algo_id: str
    side: str
    order_type: str
    quantity: Decimal
    price: Decimal
    trigger_price: Decimal
    reduce_only: bool
    close_position: bool
    working_type: str
    time_in_force: str = "GTC"
    price_protect: bool = False
    activate_price: Decimal = D0
    callback_rate: Decimal = D0
    trail_extreme: Decimal = D0
    status: str = "NEW"
    create_ms: int = 0
    update_ms: int = 0
    trigger_ms: int = 0
    actual_order_id: int | None = None
    actual_price: Decimal = D0

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_ALGO_STATUSES

    def view(self) -> dict[str, Any]:
        """The algo order as ``GET /fapi/v1/algoOrder`` shows it."""
        return {
            "algoId": self.algo_id,
            "clientAlgoId": self.client_algo_id,
            "algoType": "CONDITIONAL",
            "orderType": self.order_type,
            "symbol": self.symbol,
            "side": self.side,
            "positionSide": "BOTH",
            "timeInForce": self.time_in_force,
            "quantity": text(self.quantity),
            "algoStatus": self.status,
            "actualOrderId": "" if self.actual_order_id is None else str(self.actual_order_id),
            "actualPrice": text(self.actual_price),
            "triggerPrice": text(self.trigger_price),
            "price": text(self.price),
            "icebergQuantity": None,
            "tpTriggerPrice": "0",
            "tpPrice": "0",
            "slTriggerPrice": "0",
            "slPrice": "0",
            "tpOrderType": "",
            "selfTradePreventionMode": "EXPIRE_MAKER",
            "workingType": self.working_type,
            "priceMatch": "NONE",
            "closePosition": self.close_position,
            "priceProtect": self.price_protect,
            "reduceOnly": self.reduce_only,
            "activatePrice": text(self.activate_price),
            "callbackRate": text(self.callback_rate),
            "createTime": self.create_ms,
            "updateTime": self.update_ms,
            "triggerTime": self.trigger_ms,
            "goodTillDate": 0,
        }

    def event(self, now_ms: int) -> dict[str, Any]:
        """An ``ALGO_UPDATE`` user-data event (field letters as Binance's, see README)."""
        return {
            "e": "ALGO_UPDATE",
            "T": now_ms,
            "E": now_ms,
            "o": {
                "caid": self.client_algo_id,
                "aid": self.algo_id,
                "at": "CONDITIONAL",
                "o": self.order_type,
                "s": self.symbol,
                "S": self.side,
                "ps": "BOTH",
                "f": self.time_in_force,
                "q": text(self.quantity),
                "X": self.status,
                "ai": "" if self.actual_order_id is None else str(self.actual_order_id),
                "ap": text(self.actual_price),
                "tp": text(self.trigger_price),
                "p": text(self.price),
                "wt": self.working_type,
                "pm": "NONE",
                "cp": self.close_position,
                "pP": self.price_protect,
                "R": self.reduce_only,
                "tt": self.trigger_ms,
                "gtd": 0,
            },
        }


@dataclass
class Position:
    symbol: str
    amount: Decimal = D0
    entry_price: Decimal = D0
    update_ms: int = 0


@dataclass
class Account:
    api_key: str
    wallet: Decimal
    positions: dict[str, Position] = field(default_factory=dict)
    leverage: dict[str, int] = field(default_factory=dict)
    margin_type: dict[str, str] = field(default_factory=dict)
    dual_side: bool = False
    trades: list[dict[str, Any]] = field(default_factory=list)
    income: list[dict[str, Any]] = field(default_factory=list)

    def position(self, symbol: str) -> Position:
        return self.positions.setdefault(symbol, Position(symbol))

    def leverage_of(self, symbol: str) -> int:
        return self.leverage.get(symbol, 20)

    def isolated(self, symbol: str) -> bool:
        return self.margin_type.get(symbol, "CROSSED") == "ISOLATED"


@dataclass
class FeeSchedule:
    taker: Decimal
    maker: Decimal


def dump_record(obj: Any) -> dict[str, Any]:
    return {
        f.name: str(v) if isinstance(v, Decimal) else v
        for f in dataclasses.fields(obj)
        for v in (getattr(obj, f.name),)
    }


def load_record(cls: type[Any], raw: dict[str, Any]) -> Any:
    values = {}
    for f in dataclasses.fields(cls):
        if f.name in raw:
            value = raw[f.name]
            values[f.name] = Decimal(value) if str(f.type).startswith("Decimal") else value
    return cls(**values)
