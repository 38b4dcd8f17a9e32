"""USDⓈ-M futures matching on the virtual clock (README "Futures trading").

The price between candles is the open of the futures candle in progress. MARKET orders fill at once
at that price ± ``slippage_bps`` (rounded to the tick). Resting LIMIT orders and algo triggers are
evaluated when each futures candle closes, on its high and low; stops go before take-profits."""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from functools import cache

from sim.exchange.catalog import SeriesKind
from sim.exchange.errors import BinanceApiError
from sim.exchange.futures_book import D0, Account, AlgoOrder, FuturesBook, Order
from sim.exchange.market import MarketView
from sim.exchange.symbols import data_filters
from trading.candle import Candle

MIN_NOTIONAL = Decimal(5)
MAX_QTY = Decimal(9_000_000)
MAINTENANCE_RATE = Decimal("0.004")
PERCENT_PRICE_UP, PERCENT_PRICE_DOWN = Decimal("1.05"), Decimal("0.95")
STOP_TYPES = ("STOP", "STOP_MARKET", "TRAILING_STOP_MARKET")


@dataclass(frozen=True)
class SymbolRules:
    tick: Decimal
    step: Decimal


@dataclass(frozen=True)
class OrderRequest:
    symbol: str
    side: str
    type: str
    quantity: Decimal
    price: Decimal | None
    time_in_force: str
    client_order_id: str
    reduce_only: bool


def as_decimal(value: float) -> Decimal:
    return Decimal(repr(value))


def to_tick(price: Decimal, tick: Decimal) -> Decimal:
    return ((price / tick).quantize(Decimal(1), rounding=ROUND_HALF_UP) * tick).normalize()


class FuturesEngine:
    def __init__(self, book: FuturesBook, market: MarketView, slippage_bps: float) -> None:
        self.book = book
        self.market = market
        self.slippage = Decimal(repr(slippage_bps)) / Decimal(10_000)
        self.rules = cache(self._rules)

    # -- prices and rules --------------------------------------------------------------------------
    def _rules(self, symbol: str) -> SymbolRules:
        filters = data_filters(self.market.finest(SeriesKind.FUTURES, symbol))
        return SymbolRules(Decimal(filters.tick_size).normalize(), Decimal(filters.step_size).normalize())

    def price_now(self, symbol: str) -> Decimal:
        return as_decimal(self.market.last_price(SeriesKind.FUTURES, symbol))

    def mark_now(self, symbol: str) -> Decimal:
        return as_decimal(self.market.last_price(SeriesKind.MARK, symbol))

    def slipped(self, symbol: str, price: Decimal, side: str) -> Decimal:
        factor = 1 + self.slippage if side == "BUY" else 1 - self.slippage
        return to_tick(price * factor, self.rules(symbol).tick)

    def check_filters(self, request: OrderRequest) -> None:
        rules = self.rules(request.symbol)
        if request.price is not None:
            if request.price <= 0:
                raise BinanceApiError(-4001, "Price less than 0.")
            if request.price % rules.tick:
                raise BinanceApiError(-4014, "Price not increased by tick size.")
            mark = self.mark_now(request.symbol)
            if request.side == "BUY" and request.price > mark * PERCENT_PRICE_UP:
                raise BinanceApiError(
                    -4016, f"Limit price can't be higher than {to_tick(mark * PERCENT_PRICE_UP, rules.tick)}."
                )
            if request.side == "SELL" and request.price < mark * PERCENT_PRICE_DOWN:
                raise BinanceApiError(
                    -4024, f"Limit price can't be lower than {to_tick(mark * PERCENT_PRICE_DOWN, rules.tick)}."
                )
        check_quantity(request.quantity, rules)
        notional = request.quantity * (request.price if request.price is not None else self.price_now(request.symbol))
        if notional < MIN_NOTIONAL and not request.reduce_only:
            raise BinanceApiError(-4164, "Order's notional must be no smaller than 5.0 (unless you choose reduce only)")

    # -- margin ------------------------------------------------------------------------------------
    def unrealized(self, account: Account, symbol: str) -> Decimal:
        position = account.position(symbol)
        return position.amount * (self.mark_now(symbol) - position.entry_price) if position.amount else D0

    def available_balance(self, account: Account) -> Decimal:
        used = D0
        equity = account.wallet
        for symbol, position in account.positions.items():
            if position.amount:
                equity += self.unrealized(account, symbol)
                used += abs(position.amount) * self.mark_now(symbol) / account.leverage_of(symbol)
        for order in self.book.open_orders(account.api_key):
            if not order.reduce_only:
                used += (
                    order.remaining * (order.price or self.price_now(order.symbol)) / account.leverage_of(order.symbol)
                )
        return equity - used

    def liquidation_price(self, account: Account, symbol: str) -> Decimal:
        """One-position estimate: cross uses the whole wallet, isolated the position's initial margin."""
        position = account.position(symbol)
        amount, entry = position.amount, position.entry_price
        if not amount:
            return D0
        collateral = abs(amount) * entry / account.leverage_of(symbol) if account.isolated(symbol) else account.wallet
        denominator = abs(amount) * MAINTENANCE_RATE - amount
        price = (collateral - amount * entry) / denominator if denominator else D0
        return max(price, D0)

    def _exposure_increase(self, account: Account, symbol: str, side: str, qty: Decimal) -> Decimal:
        amount = account.position(symbol).amount
        if amount == 0 or (amount > 0) == (side == "BUY"):
            return qty
        return max(D0, qty - abs(amount))

    def reducible(self, account: Account, symbol: str, side: str) -> Decimal:
        """How much an order on ``side`` can reduce the position without flipping it."""
        amount = account.position(symbol).amount
        return abs(amount) if amount and (amount > 0) == (side == "SELL") else D0

    # -- placing -----------------------------------------------------------------------------------
    def place(self, account: Account, request: OrderRequest, now_ms: int) -> Order:
        """Validate, book and execute what can execute now; raises Binance errors before booking."""
        self.check_filters(request)
        current = self.price_now(request.symbol)
        if request.reduce_only and not self.reducible(account, request.symbol, request.side):
            raise BinanceApiError(-2022, "ReduceOnly Order is rejected.")
        if not request.reduce_only:
            increase = self._exposure_increase(account, request.symbol, request.side, request.quantity)
            required = increase * (request.price or current) / account.leverage_of(request.symbol)
            if increase and required > self.available_balance(account):
                raise BinanceApiError(-2019, "Margin is insufficient.")
        marketable = request.type == "MARKET" or (
            request.price is not None
            and (request.price >= current if request.side == "BUY" else request.price <= current)
        )
        if request.type == "LIMIT" and marketable and request.time_in_force == "GTX":
            raise BinanceApiError(
                -5022,
                "Due to the order could not be executed as maker, the Post Only order will "
                "be rejected. The order will not be recorded in the order history",
            )
        if request.type == "LIMIT" and not marketable and request.time_in_force == "FOK":
            raise BinanceApiError(
                -5021,
                "Due to the order could not be filled immediately, the FOK order has been "
                "rejected. The order will not be recorded in the order history",
            )
        order = Order(
            self.book.new_order_id(),
            account.api_key,
            request.symbol,
            request.client_order_id,
            request.side,
            request.type,
            request.time_in_force if request.type == "LIMIT" else "GTC",
            request.quantity,
            request.price or D0,
            request.reduce_only,
            time_ms=now_ms,
            update_ms=now_ms,
        )
        self.book.add_order(order)
        if marketable:
            price = self.slipped(request.symbol, current, request.side)
            if request.price is not None:
                price = min(price, request.price) if request.side == "BUY" else max(price, request.price)
            self.execute(account, order, price, maker=False, now_ms=now_ms)
        elif request.time_in_force == "IOC":
            self.book.finish(order, "EXPIRED", now_ms)
        return order

    def execute(self, account: Account, order: Order, price: Decimal, *, maker: bool, now_ms: int) -> None:
        """Fill what is left of an order; a reduce-only order never flips: its remainder expires."""
        qty = order.remaining
        if order.reduce_only or order.close_position:
            qty = min(qty, self.reducible(account, order.symbol, order.side))
        if qty > 0:
            self.book.fill(order, qty, price, maker, now_ms)
        if order.is_open and order.reduce_only:
            self.book.finish(order, "EXPIRED", now_ms)
        self._settle_algo(order, now_ms)

    def _settle_algo(self, order: Order, now_ms: int) -> None:
        if order.algo_id is None or order.is_open:
            return
        algo = self.book.algos[order.algo_id]
        algo.actual_price = order.avg_price
        self.book.set_algo_status(algo, "FINISHED", now_ms)

    def cancel(self, order: Order, now_ms: int) -> None:
        self.book.finish(order, "CANCELED", now_ms)
        self._settle_algo(order, now_ms)

    def check_algo_trigger(self, algo: AlgoOrder) -> None:
        """-2021 when the trigger is already crossed at the current price."""
        if algo.order_type == "TRAILING_STOP_MARKET":
            return
        current = self.price_now(algo.symbol)
        stop = algo.order_type in STOP_TYPES
        crossed = (
            (current <= algo.trigger_price) if (stop == (algo.side == "SELL")) else (current >= algo.trigger_price)
        )
        if crossed:
            raise BinanceApiError(-2021, "Order would immediately trigger.")

    # -- the clock ---------------------------------------------------------------------------------
    def on_market_time(self, now_ms: int) -> None:
        """Match every futures candle that closed since the last call, then book due funding. Only
        symbols with working orders or open positions cost anything on a clock event."""
        since = self.book.matched_through_ms
        if since is not None and since >= now_ms:
            return  # a restarted clock replaying instants the book has already matched
        self.book.matched_through_ms = now_ms
        if since is None:
            return
        for symbol in sorted(self.book.working_symbols()):
            series = self.market.finest(SeriesKind.FUTURES, symbol)
            for index in range(series.count_closed_by(since), series.count_closed_by(now_ms)):
                self._match_candle(symbol, series.candle(index))
        held = {s for a in self.book.accounts.values() for s, p in a.positions.items() if p.amount}
        for symbol in sorted(held):
            self._book_funding(symbol, since, now_ms)

    def _match_candle(self, symbol: str, candle: Candle) -> None:
        close_ms = candle.close_time
        algos = [a for a in self.book.live_algos.values() if a.symbol == symbol and a.create_ms < close_ms]
        algos.sort(key=lambda a: (a.order_type not in STOP_TYPES, a.algo_id))
        for algo in algos:
            price = self._trigger_price(algo, candle)
            if price is not None and algo.is_open:
                self._trigger(algo, price, close_ms)
        orders = [
            o for o in self.book.live.values() if o.symbol == symbol and o.type == "LIMIT" and o.time_ms < close_ms
        ]
        for order in sorted(orders, key=lambda o: o.order_id):
            if not order.is_open:
                continue
            low, high, opening = (as_decimal(v) for v in (candle.low, candle.high, candle.open))
            touched = low <= order.price if order.side == "BUY" else high >= order.price
            if not touched:
                continue
            price = order.price
            if order.time_ms <= candle.open_time:
                price = min(price, opening) if order.side == "BUY" else max(price, opening)
            self.execute(self.book.accounts[order.api_key], order, price, maker=True, now_ms=close_ms)

    def _trigger_price(self, algo: AlgoOrder, candle: Candle) -> Decimal | None:
        """The fill price if the candle triggers the algo order: the trigger, or the open on a gap."""
        low, high, opening = (as_decimal(v) for v in (candle.low, candle.high, candle.open))
        if algo.order_type == "TRAILING_STOP_MARKET":
            return self._trailing_trigger(algo, low, high)
        falling = (algo.order_type in STOP_TYPES) == (algo.side == "SELL")
        trigger = algo.trigger_price
        if falling and low <= trigger:
            return min(trigger, opening)
        if not falling and high >= trigger:
            return max(trigger, opening)
        return None

    def _trailing_trigger(self, algo: AlgoOrder, low: Decimal, high: Decimal) -> Decimal | None:
        # Candle approximation: the extreme is taken from this candle before the retracement is checked.
        selling = algo.side == "SELL"
        activated = (
            algo.trail_extreme
            or not algo.activate_price
            or (high >= algo.activate_price if selling else low <= algo.activate_price)
        )
        if not activated:
            return None
        extreme = algo.trail_extreme or (high if selling else low)
        algo.trail_extreme = max(extreme, high) if selling else min(extreme, low)
        rate = algo.callback_rate / 100
        trigger = to_tick(algo.trail_extreme * (1 - rate if selling else 1 + rate), self.rules(algo.symbol).tick)
        touched = low <= trigger if selling else high >= trigger
        return trigger if touched else None

    def _trigger(self, algo: AlgoOrder, price: Decimal, now_ms: int) -> None:
        account = self.book.accounts[algo.api_key]
        qty = algo.quantity
        if algo.close_position or algo.reduce_only:
            reducible = self.reducible(account, algo.symbol, algo.side)
            qty = reducible if algo.close_position else min(qty, reducible)
            if not qty:
                self.book.set_algo_status(algo, "EXPIRED", now_ms)
                return
        market = algo.order_type.endswith("MARKET")
        order = Order(
            self.book.new_order_id(),
            algo.api_key,
            algo.symbol,
            algo.client_algo_id,
            algo.side,
            "MARKET" if market else "LIMIT",
            "GTC",
            qty,
            D0 if market else algo.price,
            algo.reduce_only or algo.close_position,
            close_position=algo.close_position,
            orig_type=algo.order_type,
            stop_price=algo.trigger_price,
            working_type=algo.working_type,
            time_ms=now_ms,
            update_ms=now_ms,
            algo_id=algo.algo_id,
        )
        self.book.add_order(order)
        algo.actual_order_id, algo.trigger_ms = order.order_id, now_ms
        self.book.set_algo_status(algo, "TRIGGERED", now_ms)
        if market:
            self.execute(account, order, self.slipped(algo.symbol, price, algo.side), maker=False, now_ms=now_ms)

    def _book_funding(self, symbol: str, since: int, now_ms: int) -> None:
        schedule = self.market.catalog.funding.get(symbol, [])
        start = bisect.bisect_right(schedule, since, key=lambda row: row[0])
        for funding_ms, rate in schedule[start:]:
            if funding_ms > now_ms:
                break
            mark = self._mark_at(symbol, funding_ms)
            for account in self.book.accounts.values():
                position = account.positions.get(symbol)
                if position is not None and position.amount:
                    fee = (-position.amount * mark * as_decimal(rate)).quantize(Decimal("0.00000001"))
                    self.book.book_funding(account, symbol, fee, funding_ms)

    def _mark_at(self, symbol: str, time_ms: int) -> Decimal:
        series = self.market.finest(SeriesKind.MARK, symbol)
        return as_decimal(series.candle(max(series.count_opened_by(time_ms) - 1, 0)).open)


def check_quantity(quantity: Decimal, rules: SymbolRules) -> None:
    if quantity <= 0:
        raise BinanceApiError(-4003, "Quantity less than or equal to zero.")
    if quantity % rules.step:
        raise BinanceApiError(-1111, "Precision is over the maximum defined for this asset.")
    if quantity > MAX_QTY:
        raise BinanceApiError(-4005, "Quantity greater than max quantity.")
