"""The Engine's account: cash, fees, funding and positions, their marks and margins, and the booking
of fills. ``Ledger`` holds every field of the Engine's state; the planning of entries
(``trading.entry_planning``), resting and manual orders (``trading.order_book``) and the backtest's
fast paths (``trading.fast_paths``) build on it, and ``trading.engine.Engine`` steps candles.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from trading import broker, margin, risk
from trading.candle import Candle
from trading.engine_types import OrderError
from trading.funding import FundingSchedule, boundaries_in, grid_floor
from trading.models import (
    Account,
    CloseReason,
    Fill,
    Liquidity,
    Order,
    Position,
    Side,
    SymbolSpec,
    Trade,
)
from trading.settings import EngineSettings, FillPrice, FundingMode, MarketType

# Learned funding rates kept per symbol (a few days of 8-hour instants: only the next one is ever used).
LEARNED_RATES_KEPT = 16


@dataclass(slots=True)
class EntryPlan:
    """An entry the account can take, priced and sized, with the risk verdicts that passed it:
    what ``Ledger.book_entry`` books as one fill. ``existing`` is the position it adds to.

    Treat as read-only. Not frozen: one is built on every entry (every reversal of a backtest), and
    a frozen dataclass's ``__init__`` sets each of the 15 fields through ``object.__setattr__``,
    about 7x the cost of plain slots."""

    symbol: str
    side: Side
    price: float
    time: int
    quantity: float
    stop: float | None
    take: float | None
    entry_fee: float
    add_margin: float
    total_quantity: float
    average_entry: float
    total_margin: float
    liquidation_price: float
    verdicts: tuple[risk.RiskCheckResult, ...]
    existing: Position | None


class Ledger:
    def __init__(
        self, settings: EngineSettings, funding_series: dict[str, list[tuple[int, float]]] | None = None
    ) -> None:
        self.settings = settings
        self._funding_on = settings.market is MarketType.FUTURES and settings.funding_mode is not FundingMode.OFF
        self._specs = {s.symbol: s for s in settings.symbols}
        # With no symbols configured every symbol gets an unrestricted spec; built once per symbol
        # (SymbolSpec validates on construction and the hot path asks on every fill).
        self._open_specs: dict[str, SymbolSpec] = {}
        # Settings the fill path reads on every entry and exit, derived once.
        self._spot = settings.market is MarketType.SPOT
        self._exit_fee_rate = max(settings.taker_fee, 0.0)
        self._partial = settings.partial_fill_min_ratio < 1
        self._next_open = settings.fill_price is FillPrice.NEXT_OPEN
        self._funding_series = dict(funding_series or {})
        self._funding: dict[str, FundingSchedule] = {}
        # Rates learned one grid instant at a time (a session asks the exchange as candles cross
        # them), per symbol: instant → rate. They outrank the series given at construction.
        self.learned_rates: dict[str, dict[int, float]] = {}
        self.cash = settings.starting_balance
        self.fees_paid = 0.0
        self.funding_paid = 0.0
        self.positions: dict[str, Position] = {}
        self.orders: dict[int, Order] = {}
        self.last_close: dict[str, float] = {}
        self.last_open_time: dict[str, int] = {}
        self.closes: dict[str, deque[float]] = {}
        self.now = 0
        self.day = -1
        self.day_start_equity = settings.starting_balance
        self.consecutive_losses = 0
        self.streak_tripped_at: int | None = None
        self.next_trade_id = 1
        self.next_order_id = 1
        self.fill_counter = 0
        self.entries_enabled = True
        # fill_price next_open: the side and confidence a closed candle decided, per symbol, acted on
        # at that symbol's next candle's open.
        self.pending_signals: dict[str, tuple[Side, float]] = {}

    def spec(self, symbol: str) -> SymbolSpec:
        if not self._specs:
            spec = self._open_specs.get(symbol)
            if spec is None:
                spec = self._open_specs[symbol] = SymbolSpec(symbol)
            return spec
        try:
            return self._specs[symbol]
        except KeyError:
            raise OrderError(f"unknown symbol {symbol!r}; this engine trades {', '.join(self._specs)}",
                             "symbol") from None

    def unrealised(self) -> float:
        return sum(p.unrealised(self.last_close[s]) for s, p in self.positions.items())

    def equity(self) -> float:
        total = self.cash
        for symbol, p in self.positions.items():
            total += p.unrealised(self.last_close[symbol])
        return total

    def _exit_fee_reserve(self, p: Position) -> float:
        worst = p.entry_price if p.side is Side.LONG else max(p.liquidation_price, p.entry_price)
        return p.quantity * worst * self._exit_fee_rate

    def available(self) -> float:
        """Cash not tied up: margins, the exit fees they may cost, and margin reserved by orders."""
        used = 0.0
        for p in self.positions.values():
            used += p.margin + self._exit_fee_reserve(p)
        for o in self.orders.values():
            used += o.reserved_margin
        return self.cash - used

    def account(self) -> Account:
        unrealised = self.unrealised()
        return Account(
            cash=self.cash,
            equity=self.equity(),
            unrealised=unrealised,
            margin_in_use=sum(p.margin for p in self.positions.values()),
            available=self.available(),
            fees_paid=self.fees_paid,
            funding_paid=self.funding_paid,
            open_positions=len(self.positions),
            pending_orders=len(self.orders),
        )

    def schedule(self, symbol: str) -> FundingSchedule:
        schedule = self._funding.get(symbol)
        if schedule is None:
            s = self.settings
            series = self._funding_series.get(symbol) if s.funding_mode is FundingMode.SERIES else None
            learned = self.learned_rates.get(symbol)
            if learned and s.funding_mode is FundingMode.SERIES:
                merged = {grid_floor(t): r for t, r in series or ()}
                merged.update(learned)
                series = sorted(merged.items())
            schedule = FundingSchedule(series, s.funding_rate)
            self._funding[symbol] = schedule
        return schedule

    def knows_funding_rate(self, symbol: str, instant: int) -> bool:
        return instant in self.learned_rates.get(symbol, ())

    def learn_funding_rate(self, symbol: str, instant: int, rate: float) -> None:
        """The exchange's funding rate at a grid instant, for the candle that crosses it."""
        known = self.learned_rates.setdefault(symbol, {})
        known[grid_floor(instant)] = float(rate)
        for old in sorted(known)[:-LEARNED_RATES_KEPT]:
            del known[old]
        self._funding.pop(symbol, None)  # rebuilt with it on next use

    def is_idle(self) -> bool:
        """No position, no order, no decision waiting for the next open: a neutral candle can only move
        marks and clocks."""
        return not self.positions and not self.orders and not self.pending_signals

    def _apply_funding(self, p: Position, candle: Candle, fills: list[Fill], trades: list[Trade]) -> None:
        close_time = candle.open_time + candle.interval_ms
        instants = boundaries_in(candle.open_time, close_time)
        if not instants:
            return
        schedule = self.schedule(p.symbol)
        for instant in instants:
            payment = schedule.rate_at(instant) * p.quantity * candle.close * p.side.sign
            self.cash -= payment
            self.funding_paid += payment
            p.funding += payment
            p.margin -= payment
            if p.margin <= 0:
                self._close(p, candle.close, CloseReason.LIQUIDATION, close_time, p.quantity, fills, trades)
                return
            p.liquidation_price = self._liquidation(p.symbol, p.side, p.quantity, p.entry_price, p.margin)
            if broker.beyond_liquidation(p, candle.close):
                self._close(p, candle.close, CloseReason.LIQUIDATION, close_time, p.quantity, fills, trades)
                return

    def _liquidation(self, symbol: str, side: Side, quantity: float, entry: float, margin_: float) -> float:
        if self._spot:
            return 0.0
        return margin.liquidation_price(margin.brackets_for(symbol), side, quantity, entry, margin_)

    def book_entry(self, plan: EntryPlan, order: Order | None, liquidity: Liquidity, fills: list[Fill]) -> None:
        """Book a planned entry: the fee, then a new position or the one it adds to."""
        self.fill_counter += 1
        self.cash -= plan.entry_fee
        self.fees_paid += plan.entry_fee
        symbol, side, price, time, quantity = plan.symbol, plan.side, plan.price, plan.time, plan.quantity
        existing = plan.existing
        if existing is None:
            trade_id = self.next_trade_id
            self.next_trade_id = trade_id + 1
            # Positional: field order of models.Position (this runs on every entry).
            self.positions[symbol] = Position(
                trade_id,
                symbol,
                side,
                quantity,
                price,
                time,
                self.settings.leverage,
                plan.add_margin,
                plan.liquidation_price,
                plan.stop,
                plan.take,
                self.settings.trailing_stop_pct,
                price,
                plan.entry_fee,
            )
        else:
            existing.quantity = plan.total_quantity
            existing.entry_price = plan.average_entry
            existing.margin = plan.total_margin
            existing.liquidation_price = plan.liquidation_price
            existing.entry_fee += plan.entry_fee
            # An add that asked for brackets moves the whole position's (plan_entry kept the others).
            existing.stop_loss, existing.take_profit = plan.stop, plan.take
        fills.append(Fill(order.id if order else None, symbol, side, True, quantity, price, plan.entry_fee, liquidity,
                          time))

    def _close(
        self,
        p: Position,
        raw_price: float,
        reason: CloseReason,
        time: int,
        quantity: float,
        fills: list[Fill],
        trades: list[Trade],
        liquidity: Liquidity = Liquidity.TAKER,
        slip: bool = True,
    ) -> None:
        s = self.settings
        side = p.side
        long = side is Side.LONG
        symbol = p.symbol
        if reason is not CloseReason.LIQUIDATION:
            price = raw_price
            if slip:
                price = self.spec(symbol).round_price(broker.slipped(raw_price, not long, s.slippage_bps))
            liq = p.liquidation_price
            # broker.beyond_liquidation, inlined.
            if liq > 0 and (price <= liq if long else price >= liq):
                reason, raw_price, quantity = CloseReason.LIQUIDATION, liq, p.quantity
        if reason is CloseReason.LIQUIDATION:
            # The isolated margin is lost whole; what the maintenance margin leaves goes to the
            # insurance fund, as on the exchange. No closing fee is charged on top.
            price, quantity, gross, exit_fee = raw_price, p.quantity, -p.margin, 0.0
        else:
            gross = (1 if long else -1) * quantity * (price - p.entry_price)
            exit_fee = broker.fee(quantity, price, s.taker_fee if liquidity is Liquidity.TAKER else s.maker_fee)
        whole = quantity >= p.quantity
        share = 1.0 if whole else quantity / p.quantity
        entry_fee = p.entry_fee if whole else p.entry_fee * share
        funding = p.funding if whole else p.funding * share
        self.cash += gross - exit_fee
        self.fees_paid += exit_fee
        # Position.unrealised at the exit price, inlined: MFE/MAE include the exit.
        at_exit = p.quantity * (price - p.entry_price) if long else p.quantity * (p.entry_price - price)
        favorable = max(p.max_favorable, at_exit)
        adverse = min(p.max_adverse, at_exit)
        net = gross - exit_fee - entry_fee - funding
        # Positional: field order of models.Trade (this runs on every exit).
        trades.append(
            Trade(
                p.trade_id,
                symbol,
                side,
                quantity,
                p.leverage,
                p.entry_time,
                p.entry_price,
                time,
                price,
                entry_fee,
                exit_fee,
                funding,
                gross,
                net,
                favorable * share,
                adverse * share,
                reason,
            )
        )
        fills.append(Fill(None, symbol, side, False, quantity, price, exit_fee, liquidity, time))
        if whole:
            del self.positions[symbol]
        else:
            p.quantity = self.spec(symbol).round_quantity(p.quantity - quantity)
            p.margin -= p.margin * share
            p.entry_fee -= entry_fee
            p.funding -= funding
            p.max_favorable *= 1 - share
            p.max_adverse *= 1 - share
            p.liquidation_price = self._liquidation(symbol, side, p.quantity, p.entry_price, p.margin)
        self._count_result(net, time)

    def _count_result(self, net: float, time: int) -> None:
        if net < 0:
            self.consecutive_losses += 1
            if self.consecutive_losses >= self.settings.risk.max_consecutive_losses and self.streak_tripped_at is None:
                self.streak_tripped_at = time
        else:
            self.consecutive_losses = 0
            self.streak_tripped_at = None

