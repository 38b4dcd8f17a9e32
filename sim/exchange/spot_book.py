"""Spot accounts of the sim: orders, free and locked balances, trades and user-data events (state only).

Every key has one spot wallet, started from the key's provisioned balances on first use. An open
order locks what it may spend (quote for BUY, base for SELL); fills move balances and charge the fee
on the asset received (README "Spot trading"). Times are virtual market ms. Every change appends
``(api_key, event)`` to ``outbox``; the owner persists the book and publishes the events."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from sim.exchange.futures_models import D0, dump_record, load_record

Q8 = Decimal("0.00000001")
OPEN = ("NEW", "PARTIALLY_FILLED")
STOP_TYPES = ("STOP_LOSS", "STOP_LOSS_LIMIT", "TAKE_PROFIT", "TAKE_PROFIT_LIMIT")


def fixed(value: Decimal) -> str:
    """Binance spot's amounts: eight decimals."""
    return f"{value.quantize(Q8):f}"


@dataclass
class SpotOrder:
    order_id: int
    api_key: str
    symbol: str
    base: str
    quote: str
    client_order_id: str
    side: str
    type: str
    time_in_force: str
    orig_qty: Decimal
    price: Decimal = D0
    stop_price: Decimal = D0
    quote_order_qty: Decimal = D0
    status: str = "NEW"
    executed_qty: Decimal = D0
    cum_quote: Decimal = D0
    time_ms: int = 0
    update_ms: int = 0
    working_ms: int = -1  # -1 while a stop order waits for its trigger
    locked: Decimal = D0  # what the order still holds of the asset it spends

    @property
    def is_open(self) -> bool:
        return self.status in OPEN

    @property
    def remaining(self) -> Decimal:
        return self.orig_qty - self.executed_qty

    @property
    def spends(self) -> str:
        return self.quote if self.side == "BUY" else self.base

    def _core(self) -> dict[str, Any]:
        core = {
            "price": fixed(self.price),
            "origQty": fixed(self.orig_qty),
            "executedQty": fixed(self.executed_qty),
            "origQuoteOrderQty": fixed(self.quote_order_qty),
            "cummulativeQuoteQty": fixed(self.cum_quote),
            "status": self.status,
            "timeInForce": self.time_in_force,
            "type": self.type,
            "side": self.side,
        }
        if self.type in STOP_TYPES:
            core["stopPrice"] = fixed(self.stop_price)
        return core

    def ack_view(self) -> dict[str, Any]:
        return {
            "symbol": self.symbol,
            "orderId": self.order_id,
            "orderListId": -1,
            "clientOrderId": self.client_order_id,
            "transactTime": self.time_ms,
        }

    def result_view(self) -> dict[str, Any]:
        """The ``newOrderRespType=RESULT`` reply (FULL adds ``fills``)."""
        return {
            **self.ack_view(),
            **self._core(),
            "workingTime": self.working_ms,
            "selfTradePreventionMode": "EXPIRE_MAKER",
        }

    def view(self) -> dict[str, Any]:
        """The order as ``GET /api/v3/order`` shows it."""
        return {
            "symbol": self.symbol,
            "orderId": self.order_id,
            "orderListId": -1,
            "clientOrderId": self.client_order_id,
            **self._core(),
            "stopPrice": fixed(self.stop_price),
            "icebergQty": fixed(D0),
            "time": self.time_ms,
            "updateTime": self.update_ms,
            "isWorking": self.working_ms != -1,
            "workingTime": self.working_ms,
            "selfTradePreventionMode": "EXPIRE_MAKER",
        }

    def cancel_view(self, cancel_client_id: str, now_ms: int) -> dict[str, Any]:
        return {
            "symbol": self.symbol,
            "origClientOrderId": self.client_order_id,
            "orderId": self.order_id,
            "orderListId": -1,
            "clientOrderId": cancel_client_id,
            "transactTime": now_ms,
            **self._core(),
            "selfTradePreventionMode": "EXPIRE_MAKER",
        }


@dataclass
class SpotWallet:
    api_key: str
    free: dict[str, Decimal] = field(default_factory=dict)
    locked: dict[str, Decimal] = field(default_factory=dict)
    trades: list[dict[str, Any]] = field(default_factory=list)
    update_ms: int = 0

    def free_of(self, asset: str) -> Decimal:
        return self.free.get(asset, D0)

    def move(self, asset: str, free: Decimal = D0, locked: Decimal = D0) -> None:
        self.free[asset] = self.free_of(asset) + free
        self.locked[asset] = self.locked.get(asset, D0) + locked

    def balances(self) -> list[tuple[str, Decimal, Decimal]]:
        assets = sorted(set(self.free) | set(self.locked))
        return [(a, self.free.get(a, D0), self.locked.get(a, D0)) for a in assets]


class SpotBook:
    def __init__(self, fee_rate: Decimal) -> None:
        self.fee_rate = fee_rate
        self.orders: dict[int, SpotOrder] = {}
        self.live: dict[int, SpotOrder] = {}
        self.wallets: dict[str, SpotWallet] = {}
        self.next_order_id = 3_000_000_001
        self.next_trade_id = 500_000_001
        self.next_execution_id = 1
        # Spot candles closing at or before this virtual instant have been matched.
        self.matched_through_ms: int | None = None
        self.outbox: list[tuple[str, dict[str, Any]]] = []

    def wallet(self, api_key: str, initial: dict[str, str]) -> SpotWallet:
        if api_key not in self.wallets:
            self.wallets[api_key] = SpotWallet(api_key, {a: Decimal(v) for a, v in initial.items()})
        return self.wallets[api_key]

    def new_order_id(self) -> int:
        self.next_order_id += 1
        return self.next_order_id - 1

    def open_orders(self, api_key: str, symbol: str | None = None) -> list[SpotOrder]:
        return [o for o in self.live.values() if o.api_key == api_key and (symbol is None or o.symbol == symbol)]

    # -- order lifecycle ---------------------------------------------------------------------------
    def add_order(self, order: SpotOrder, lock: Decimal) -> None:
        """Book a new order holding ``lock`` of the asset it spends."""
        self.orders[order.order_id] = order
        self.live[order.order_id] = order
        wallet = self.wallets[order.api_key]
        if lock:
            order.locked = lock
            wallet.move(order.spends, free=-lock, locked=lock)
        self._order_event(order, "NEW", order.time_ms)
        if lock:
            self._account_event(wallet, order.time_ms, [order.spends])

    def finish(self, order: SpotOrder, status: str, now_ms: int, cancel_client_id: str = "") -> None:
        """Close an open order without (more) fills (CANCELED or EXPIRED); its lock is released. A
        cancel's event carries the cancel request's client ID in ``c`` and the order's in ``C``."""
        order.status, order.update_ms = status, now_ms
        self.live.pop(order.order_id, None)
        self._order_event(order, status, now_ms, cancel_client_id=cancel_client_id)
        self._release(order, order.locked, now_ms)

    def _release(self, order: SpotOrder, amount: Decimal, now_ms: int) -> None:
        if not amount:
            return
        order.locked -= amount
        wallet = self.wallets[order.api_key]
        wallet.move(order.spends, free=amount, locked=-amount)
        self._account_event(wallet, now_ms, [order.spends])

    def fill(self, order: SpotOrder, qty: Decimal, price: Decimal, maker: bool, now_ms: int) -> None:
        """Book one fill; the caller has checked that the wallet can pay it."""
        wallet = self.wallets[order.api_key]
        release = order.locked if qty == order.remaining else order.locked * qty / order.remaining
        order.locked -= release
        quote_qty = qty * price
        buying = order.side == "BUY"
        cost, received = (quote_qty, qty) if buying else (qty, quote_qty)
        fee_asset = order.base if buying else order.quote
        commission = (received * self.fee_rate).quantize(Q8)
        wallet.move(order.spends, free=release - cost, locked=-release)
        wallet.move(fee_asset, free=received - commission)
        wallet.update_ms = now_ms
        order.executed_qty += qty
        order.cum_quote += quote_qty
        order.status = "FILLED" if order.executed_qty >= order.orig_qty else "PARTIALLY_FILLED"
        order.update_ms = now_ms
        if not order.is_open:
            self.live.pop(order.order_id, None)
        trade_id = self.next_trade_id
        self.next_trade_id += 1
        wallet.trades.append(
            {
                "symbol": order.symbol,
                "id": trade_id,
                "orderId": order.order_id,
                "orderListId": -1,
                "price": fixed(price),
                "qty": fixed(qty),
                "quoteQty": fixed(quote_qty),
                "commission": fixed(commission),
                "commissionAsset": fee_asset,
                "time": now_ms,
                "isBuyer": buying,
                "isMaker": maker,
                "isBestMatch": True,
            }
        )
        self._order_event(order, "TRADE", now_ms, (qty, price, commission, fee_asset, trade_id, maker))
        self._account_event(wallet, now_ms, sorted({order.base, order.quote}))

    def trigger(self, order: SpotOrder, now_ms: int) -> None:
        """A stop order's trigger: it is working from now (no event of its own, as on Binance)."""
        order.working_ms = order.update_ms = now_ms

    # -- user-data events --------------------------------------------------------------------------
    def _order_event(
        self,
        order: SpotOrder,
        execution: str,
        now_ms: int,
        last: tuple[Any, ...] | None = None,
        cancel_client_id: str = "",
    ) -> None:
        qty, price, commission, fee_asset, trade_id, maker = last or (D0, D0, D0, None, -1, False)
        event = {
            "e": "executionReport",
            "E": now_ms,
            "s": order.symbol,
            "c": cancel_client_id or order.client_order_id,
            "S": order.side,
            "o": order.type,
            "f": order.time_in_force,
            "q": fixed(order.orig_qty),
            "p": fixed(order.price),
            "P": fixed(order.stop_price),
            "F": fixed(D0),
            "g": -1,
            "C": order.client_order_id if cancel_client_id else "",
            "x": execution,
            "X": order.status,
            "r": "NONE",
            "i": order.order_id,
            "l": fixed(qty),
            "z": fixed(order.executed_qty),
            "L": fixed(price),
            "n": fixed(commission) if last else "0",
            "N": fee_asset,
            "T": now_ms,
            "t": trade_id,
            "I": self.next_execution_id,
            "w": order.is_open and order.working_ms != -1,
            "m": maker,
            "M": False,
            "O": order.time_ms,
            "Z": fixed(order.cum_quote),
            "Y": fixed(qty * price),
            "Q": fixed(order.quote_order_qty),
            "V": "EXPIRE_MAKER",
        }
        if order.working_ms != -1:
            event["W"] = order.working_ms
        self.next_execution_id += 1
        self.outbox.append((order.api_key, event))

    def _account_event(self, wallet: SpotWallet, now_ms: int, assets: list[str]) -> None:
        balances = [{"a": a, "f": fixed(wallet.free.get(a, D0)), "l": fixed(wallet.locked.get(a, D0))} for a in assets]
        event = {"e": "outboundAccountPosition", "E": now_ms, "u": now_ms, "B": balances}
        self.outbox.append((wallet.api_key, event))

    def take_events(self) -> list[tuple[str, dict[str, Any]]]:
        events, self.outbox = self.outbox, []
        return events

    # -- persistence -------------------------------------------------------------------------------
    def dump(self) -> dict[str, Any]:
        return {
            "orders": [dump_record(o) for o in self.orders.values()],
            "wallets": [
                {
                    "api_key": w.api_key,
                    "free": {a: str(v) for a, v in w.free.items()},
                    "locked": {a: str(v) for a, v in w.locked.items()},
                    "trades": w.trades,
                    "update_ms": w.update_ms,
                }
                for w in self.wallets.values()
            ],
            "next_ids": [self.next_order_id, self.next_trade_id, self.next_execution_id],
            "matched_through_ms": self.matched_through_ms,
        }

    def load(self, raw: dict[str, Any]) -> None:
        self.orders = {o.order_id: o for o in (load_record(SpotOrder, r) for r in raw["orders"])}
        self.live = {i: o for i, o in self.orders.items() if o.is_open}
        self.wallets = {}
        for record in raw["wallets"]:
            wallet = SpotWallet(
                record["api_key"],
                {a: Decimal(v) for a, v in record["free"].items()},
                {a: Decimal(v) for a, v in record["locked"].items()},
                record["trades"],
                record["update_ms"],
            )
            self.wallets[wallet.api_key] = wallet
        self.next_order_id, self.next_trade_id, self.next_execution_id = raw["next_ids"]
        self.matched_through_ms = raw["matched_through_ms"]
