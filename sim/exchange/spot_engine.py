"""Spot matching on the virtual clock (README "Spot trading"): the same rule as USDⓈ-M.

The price between candles is the open of the spot candle in progress. MARKET orders fill at once at
that price ± ``slippage_bps`` (rounded to the tick); a marketable LIMIT fills at once at that price
(no worse than its limit). When a spot candle closes, stop orders trigger first (stop-losses before
take-profits), then resting limits fill when the range touches them (maker). Filters come from the
exchangeInfo entry (``symbols.symbol_info``), so what is published is what is enforced."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_DOWN, Decimal
from functools import cache

from sim.exchange.catalog import SeriesKind
from sim.exchange.errors import BinanceApiError
from sim.exchange.futures_engine import as_decimal, to_tick
from sim.exchange.futures_models import D0
from sim.exchange.market import MarketView
from sim.exchange.spot_book import STOP_TYPES, SpotBook, SpotOrder, SpotWallet
from sim.exchange.symbols import symbol_info
from trading.candle import Candle

LIMIT_TYPES = ("LIMIT", "LIMIT_MAKER", "STOP_LOSS_LIMIT", "TAKE_PROFIT_LIMIT")
INSUFFICIENT = BinanceApiError(-2010, "Account has insufficient balance for requested action.")


def filter_failure(name: str) -> BinanceApiError:
    return BinanceApiError(-1013, f"Filter failure: {name}")


@dataclass(frozen=True)
class SpotRules:
    base: str
    quote: str
    min_price: Decimal
    max_price: Decimal
    tick: Decimal
    min_qty: Decimal
    max_qty: Decimal
    step: Decimal
    min_notional: Decimal
    max_notional: Decimal


@dataclass(frozen=True)
class SpotRequest:
    symbol: str
    side: str
    type: str
    quantity: Decimal | None
    quote_order_qty: Decimal | None
    price: Decimal | None
    stop_price: Decimal | None
    time_in_force: str
    client_order_id: str


def _falling(order_type: str, side: str) -> bool:
    """Whether the trigger waits for the price to fall to the stop price."""
    return order_type.startswith("STOP_LOSS") == (side == "SELL")


class SpotEngine:
    def __init__(self, book: SpotBook, market: MarketView, slippage_bps: float) -> None:
        self.book = book
        self.market = market
        self.slippage = Decimal(repr(slippage_bps)) / Decimal(10_000)
        self.rules = cache(self._rules)

    def _rules(self, symbol: str) -> SpotRules:
        info = symbol_info(symbol, self.market.finest(SeriesKind.SPOT, symbol))
        filters = {f["filterType"]: f for f in info["filters"]}
        price, lot, notional = filters["PRICE_FILTER"], filters["LOT_SIZE"], filters["NOTIONAL"]
        return SpotRules(
            info["baseAsset"],
            info["quoteAsset"],
            *(Decimal(price[k]) for k in ("minPrice", "maxPrice", "tickSize")),
            *(Decimal(lot[k]) for k in ("minQty", "maxQty", "stepSize")),
            Decimal(notional["minNotional"]),
            Decimal(notional["maxNotional"]),
        )

    def price_now(self, symbol: str) -> Decimal:
        return as_decimal(self.market.last_price(SeriesKind.SPOT, symbol))

    def slipped(self, symbol: str, price: Decimal, side: str) -> Decimal:
        factor = 1 + self.slippage if side == "BUY" else 1 - self.slippage
        return to_tick(price * factor, self.rules(symbol).tick)

    def _check_price(self, price: Decimal, rules: SpotRules) -> None:
        if price < rules.min_price or price > rules.max_price or (price - rules.min_price) % rules.tick:
            raise filter_failure("PRICE_FILTER")

    # -- placing -----------------------------------------------------------------------------------
    def place(self, wallet: SpotWallet, request: SpotRequest, now_ms: int) -> SpotOrder:
        """Validate, book and execute what can execute now; raises Binance errors before booking."""
        rules = self.rules(request.symbol)
        current = self.price_now(request.symbol)
        market_price = self.slipped(request.symbol, current, request.side)
        for price in (request.price, request.stop_price):
            if price is not None:
                self._check_price(price, rules)
        quantity = request.quantity
        if quantity is None:
            assert request.quote_order_qty is not None
            quantity = (request.quote_order_qty / market_price / rules.step).to_integral_value(ROUND_DOWN) * rules.step
        if quantity < rules.min_qty or quantity > rules.max_qty or (quantity - rules.min_qty) % rules.step:
            raise filter_failure("LOT_SIZE")
        reference = request.price or request.stop_price or current
        if quantity * reference < rules.min_notional or (
            request.price is not None and quantity * request.price > rules.max_notional
        ):
            raise filter_failure("NOTIONAL")
        stop = request.type in STOP_TYPES
        if stop:
            assert request.stop_price is not None
            falling = _falling(request.type, request.side)
            if current <= request.stop_price if falling else current >= request.stop_price:
                raise BinanceApiError(-2010, "Order would trigger immediately.")
        marketable = request.type == "MARKET" or (
            request.type in ("LIMIT", "LIMIT_MAKER")
            and request.price is not None
            and (request.price >= current if request.side == "BUY" else request.price <= current)
        )
        if request.type == "LIMIT_MAKER" and marketable:
            raise BinanceApiError(-2010, "Order would immediately match and take.")
        buying = request.side == "BUY"
        unit = request.price or (request.stop_price if stop else market_price)
        need = quantity * unit if buying else quantity
        spends = rules.quote if buying else rules.base
        if wallet.free_of(spends) < need:
            raise INSUFFICIENT
        order = SpotOrder(
            self.book.new_order_id(),
            wallet.api_key,
            request.symbol,
            rules.base,
            rules.quote,
            request.client_order_id,
            request.side,
            request.type,
            request.time_in_force,
            quantity,
            request.price or D0,
            request.stop_price or D0,
            request.quote_order_qty or D0,
            time_ms=now_ms,
            update_ms=now_ms,
            working_ms=-1 if stop else now_ms,
        )
        self.book.add_order(order, D0 if request.type == "MARKET" else need)
        if marketable:
            price = market_price
            if request.price is not None:
                price = min(price, request.price) if buying else max(price, request.price)
            self.book.fill(order, quantity, price, maker=False, now_ms=now_ms)
        elif request.time_in_force in ("IOC", "FOK"):
            self.book.finish(order, "EXPIRED", now_ms)
        return order

    # -- the clock ---------------------------------------------------------------------------------
    def on_market_time(self, now_ms: int) -> None:
        """Match every spot candle that closed since the last call (only symbols with open orders)."""
        since = self.book.matched_through_ms
        if since is not None and since >= now_ms:
            return
        self.book.matched_through_ms = now_ms
        if since is None:
            return
        for symbol in sorted({o.symbol for o in self.book.live.values()}):
            series = self.market.finest(SeriesKind.SPOT, symbol)
            for index in range(series.count_closed_by(since), series.count_closed_by(now_ms)):
                self._match_candle(symbol, series.candle(index))

    def _match_candle(self, symbol: str, candle: Candle) -> None:
        close_ms = candle.close_time
        low, high, opening = (as_decimal(v) for v in (candle.low, candle.high, candle.open))
        waiting = [
            o for o in self.book.live.values() if o.symbol == symbol and o.working_ms == -1 and o.time_ms < close_ms
        ]
        waiting.sort(key=lambda o: (not o.type.startswith("STOP_LOSS"), o.order_id))
        for order in waiting:
            falling = _falling(order.type, order.side)
            if falling and low <= order.stop_price:
                self._trigger(order, min(order.stop_price, opening), close_ms)
            elif not falling and high >= order.stop_price:
                self._trigger(order, max(order.stop_price, opening), close_ms)
        resting = [
            o
            for o in self.book.live.values()
            if o.symbol == symbol and o.type in LIMIT_TYPES and o.working_ms != -1 and o.working_ms < close_ms
        ]
        for order in sorted(resting, key=lambda o: o.order_id):
            buying = order.side == "BUY"
            if not (low <= order.price if buying else high >= order.price):
                continue
            price = order.price
            if order.working_ms <= candle.open_time:
                price = min(price, opening) if buying else max(price, opening)
            self.book.fill(order, order.remaining, price, maker=True, now_ms=close_ms)

    def _trigger(self, order: SpotOrder, price: Decimal, now_ms: int) -> None:
        """Limit stops start working; market stops fill at the trigger (or the open on a gap)."""
        self.book.trigger(order, now_ms)
        if order.type in LIMIT_TYPES:
            return
        price = self.slipped(order.symbol, price, order.side)
        wallet = self.book.wallets[order.api_key]
        if order.side == "BUY" and wallet.free_of(order.quote) + order.locked < order.remaining * price:
            self.book.finish(order, "EXPIRED", now_ms)  # a gap made it dearer than its lock and the free quote
            return
        self.book.fill(order, order.remaining, price, maker=False, now_ms=now_ms)
