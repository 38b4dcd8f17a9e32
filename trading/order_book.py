"""Resting limit and stop-limit orders, and the manual API: market orders, cancels and closes."""

from __future__ import annotations

import math

from trading import broker
from trading.candle import Candle
from trading.engine_types import EMPTY_STEP, OrderError, StepResult, _finite_positive
from trading.entry_planning import EntryPlanning
from trading.models import CloseReason, Fill, Liquidity, Order, OrderType, Side, Trade
from trading.settings import MarketType


class OrderBook(EntryPlanning):
    def _process_orders(self, candle: Candle, fills: list[Fill], trades: list[Trade]) -> None:
        symbol = candle.symbol
        time = candle.open_time + candle.interval_ms
        for order in sorted((o for o in self.orders.values() if o.symbol == symbol), key=lambda o: o.id):
            triggered, price, taker = broker.pending_fill(order, candle.open, candle.high, candle.low)
            order.triggered = triggered
            if price is None:
                continue
            self._fill_resting(order, price, time, Liquidity.TAKER if taker else Liquidity.MAKER, fills, trades)

    def _fill_resting(
        self,
        order: Order,
        price: float,
        time: int,
        liquidity: Liquidity,
        fills: list[Fill],
        trades: list[Trade],
    ) -> None:
        s = self.settings
        spec = self.spec(order.symbol)
        ratio = broker.partial_ratio(s.seed, self.fill_counter, s.partial_fill_min_ratio)
        quantity = spec.round_quantity(order.remaining * ratio)
        # Never leave a remainder smaller than one step (or float dust when there is no step).
        if quantity <= 0 or order.remaining - quantity < max(spec.step_size, order.quantity * 1e-9):
            quantity = order.remaining
        position = self.positions.get(order.symbol)
        if order.reduce_only:
            if position is None or position.side is not order.side:
                del self.orders[order.id]  # nothing left to reduce
                return
            quantity = min(quantity, position.quantity)
            self.fill_counter += 1
            self._close(position, price, CloseReason.MANUAL, time, quantity, fills, trades, liquidity, slip=False)
        else:
            if position is not None and position.side is not order.side:
                del self.orders[order.id]  # one-way mode: an opposite entry would net, not open
                return
            share = quantity / order.remaining
            released = order.reserved_margin * share
            order.reserved_margin -= released
            _, rejection = self._enter(
                order.symbol,
                order.side,
                price,
                time,
                quantity,
                order.stop_loss,
                order.take_profit,
                fills,
                order,
                liquidity,
            )
            if rejection is not None:
                order.reserved_margin += released
                return
        order.filled_quantity = (
            spec.round_quantity(order.filled_quantity + quantity)
            if spec.step_size
            else (order.filled_quantity + quantity)
        )
        if order.remaining <= 0 or math.isclose(order.remaining, 0.0, abs_tol=1e-12):
            del self.orders[order.id]

    def place_order(
        self,
        symbol: str,
        side: Side | str,
        order_type: OrderType | str,
        quantity: float,
        *,
        time: int,
        price: float | None = None,
        limit_price: float | None = None,
        stop_price: float | None = None,
        reduce_only: bool = False,
        stop_loss: float | None = None,
        take_profit: float | None = None,
    ) -> tuple[Order | None, StepResult]:
        """A manual order. Market orders fill now at ``price`` (the feed's latest) ± slippage and
        return (None, fills); limit / stop-limit orders rest and return (order, EMPTY_STEP).
        ``side`` is the direction opened, or for ``reduce_only`` the direction of the position reduced."""
        spec = self.spec(symbol)
        try:
            side = Side(side)
        except ValueError as exc:
            raise OrderError(str(exc), "side") from None
        try:
            order_type = OrderType(order_type)
        except ValueError as exc:
            raise OrderError(str(exc), "order_type") from None
        if not _finite_positive(quantity):
            raise OrderError(f"quantity must be a finite number > 0, got {quantity!r}", "quantity")
        rounded = spec.round_quantity(quantity)
        smallest = max(spec.min_qty, spec.step_size)
        if rounded <= 0 or rounded < spec.min_qty:
            raise OrderError(f"quantity {quantity:g} is below the minimum order quantity {smallest:g} of {symbol}",
                             "quantity")
        if time < self.now:
            raise OrderError(f"time {time} is before market time {self.now}")
        for name, value in (
            ("price", price),
            ("limit_price", limit_price),
            ("stop_price", stop_price),
            ("stop_loss", stop_loss),
            ("take_profit", take_profit),
        ):
            if value is not None and not _finite_positive(value):
                raise OrderError(f"{name} must be a finite number > 0, got {value!r}", name)
        if side is Side.SHORT and self.settings.market is MarketType.SPOT and not reduce_only:
            raise OrderError("spot trading cannot open a short", "side")
        position = self.positions.get(symbol)
        if reduce_only and (position is None or position.side is not side):
            raise OrderError(f"reduce-only order: no {side} position in {symbol} to reduce", "reduce_only")
        if not reduce_only and position is not None and position.side is not side:
            raise OrderError(f"{symbol} holds a {position.side} position: close it or use reduce_only", "side")
        if reduce_only and (stop_loss is not None or take_profit is not None):
            raise OrderError("a reduce-only order takes no stop_loss or take_profit: it opens nothing", "stop_loss")
        if order_type is OrderType.MARKET:
            if price is None:
                raise OrderError("a market order needs the latest price", "price")
            check_brackets(side, price, stop_loss, take_profit, "the price")
            return None, self._market(symbol, side, rounded, price, time, reduce_only, stop_loss, take_profit)
        if limit_price is None:
            raise OrderError(f"a {order_type} order needs limit_price", "limit_price")
        if order_type is OrderType.STOP_LIMIT and stop_price is None:
            raise OrderError("a stop_limit order needs stop_price", "stop_price")
        if order_type is OrderType.LIMIT and stop_price is not None:
            raise OrderError("a limit order takes no stop_price", "stop_price")
        limit_price = spec.round_price(limit_price)
        check_brackets(side, limit_price, stop_loss, take_profit, "the limit price")
        reserved = 0.0
        if not reduce_only:
            reserved = rounded * limit_price / self.settings.leverage
            reserved += rounded * limit_price * max(self.settings.maker_fee, self.settings.taker_fee, 0.0) * 3
            if reserved > self.available():
                raise OrderError(
                    f"insufficient balance: the order needs {reserved:.8g}, available {self.available():.8g}",
                    "quantity")
            if rounded * limit_price < spec.min_notional:
                raise OrderError(f"notional {rounded * limit_price:.8g} is below the minimum {spec.min_notional}",
                                 "quantity")
        order = Order(
            id=self.next_order_id,
            symbol=symbol,
            side=side,
            type=order_type,
            quantity=rounded,
            created_time=time,
            limit_price=limit_price,
            stop_price=spec.round_price(stop_price) if stop_price is not None else None,
            reduce_only=reduce_only,
            stop_loss=stop_loss,
            take_profit=take_profit,
            reserved_margin=reserved,
        )
        self.next_order_id += 1
        self.orders[order.id] = order
        return order, EMPTY_STEP

    def _market(
        self,
        symbol: str,
        side: Side,
        quantity: float,
        price: float,
        time: int,
        reduce_only: bool,
        stop_loss: float | None,
        take_profit: float | None,
    ) -> StepResult:
        s = self.settings
        spec = self.spec(symbol)
        ratio = broker.partial_ratio(s.seed, self.fill_counter, s.partial_fill_min_ratio)
        filled = spec.round_quantity(quantity * ratio) or quantity
        fills: list[Fill] = []
        trades: list[Trade] = []
        if reduce_only:
            position = self.positions[symbol]
            self.fill_counter += 1
            self._close(position, price, CloseReason.MANUAL, time, min(filled, position.quantity), fills, trades)
            return StepResult(tuple(fills), tuple(trades))
        fill_price = spec.round_price(broker.slipped(price, side is Side.LONG, s.slippage_bps))
        _, rejection = self._enter(symbol, side, fill_price, time, filled, stop_loss, take_profit, fills, None)
        if rejection is not None:
            raise OrderError(rejection, "quantity")
        # A position opened before the symbol's first candle is marked at the price it filled against
        # until a candle marks it (equity needs a mark for every open position).
        self.last_close.setdefault(symbol, price)
        return StepResult(tuple(fills), tuple(trades))

    def reset_loss_streak(self) -> None:
        """Forget the losing streak (checks 5 and 6), e.g. when an operator resets the session."""
        self.consecutive_losses = 0
        self.streak_tripped_at = None

    def cancel_order(self, order_id: int) -> Order:
        try:
            return self.orders.pop(order_id)
        except KeyError:
            raise OrderError(f"no pending order {order_id}") from None

    def close_trade(self, trade_id: int, price: float, time: int) -> Trade:
        """Close an open position now at the caller's latest ``price`` ± slippage."""
        if not _finite_positive(price):
            raise OrderError(f"price must be a finite number > 0, got {price!r}", "price")
        if time < self.now:
            raise OrderError(f"time {time} is before market time {self.now}")
        for position in self.positions.values():
            if position.trade_id == trade_id:
                fills: list[Fill] = []
                trades: list[Trade] = []
                self._close(position, price, CloseReason.MANUAL, time, position.quantity, fills, trades)
                return trades[0]
        raise OrderError(f"no open trade {trade_id}")


def check_brackets(side: Side, price: float, stop_loss: float | None, take_profit: float | None,
                   reference: str) -> None:
    """A stop on the wrong side of the entry would close the position at once (or never protect
    it); an exchange refuses it, so does the Engine."""
    long = side is Side.LONG
    if stop_loss is not None and (stop_loss >= price if long else stop_loss <= price):
        where = "below" if long else "above"
        raise OrderError(f"a {side}'s stop_loss must be {where} {reference} {price:.8g}, got {stop_loss:.8g}",
                         "stop_loss")
    if take_profit is not None and (take_profit <= price if long else take_profit >= price):
        where = "above" if long else "below"
        raise OrderError(f"a {side}'s take_profit must be {where} {reference} {price:.8g}, got {take_profit:.8g}",
                         "take_profit")

