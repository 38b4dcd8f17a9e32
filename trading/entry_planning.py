"""Planning an entry: default stop and take profit, the position size, the exchange's and the
account's limits, and the seven risk checks for signal entries, without booking anything.
``plan_entry`` answers what a fill would be (or why there is none); the Engine books it, and a real
session will send it to the exchange instead.
"""

from __future__ import annotations

from trading import broker, margin, risk
from trading.ledger import EntryPlan, Ledger
from trading.models import CloseReason, Fill, Liquidity, Order, Side, SymbolSpec, Trade
from trading.settings import PositionSizing


class EntryPlanning(Ledger):
    def _on_signal(
        self,
        side: Side,
        confidence: float,
        symbol: str,
        close: float,
        time: int,
        fills: list[Fill],
        trades: list[Trade],
    ) -> tuple[tuple[risk.RiskCheckResult, ...], str | None]:
        s = self.settings
        position = self.positions.get(symbol)
        if position is not None and position.side is not side and s.close_on_opposite_signal:
            self._close(position, close, CloseReason.SIGNAL, time, position.quantity, fills, trades)
            position = None
        verdicts: tuple[risk.RiskCheckResult, ...] = ()
        rejection: str | None = None
        if position is not None:
            rejection = f"already {position.side} {symbol}"
        elif confidence < s.min_confidence:
            rejection = f"confidence {confidence} below {s.min_confidence}"
        elif not self.entries_enabled:
            rejection = "entries are stopped"
        elif side is Side.SHORT and self._spot:
            rejection = "spot trading cannot open a short"
        else:
            price = self.spec(symbol).round_price(broker.slipped(close, side is Side.LONG, s.slippage_bps))
            verdicts, rejection = self._enter(symbol, side, price, time, None, None, None, fills, None)
        return verdicts, rejection

    def _default_brackets(self, side: Side, price: float, spec: SymbolSpec) -> tuple[float | None, float | None]:
        s = self.settings
        sign = side.sign
        stop = spec.round_price(price * (1 - sign * s.stop_loss_pct / 100)) if s.stop_loss_pct else None
        take = spec.round_price(price * (1 + sign * s.take_profit_pct / 100)) if s.take_profit_pct else None
        return stop, take

    def _size(self, side: Side, price: float, stop: float | None) -> float:
        s = self.settings
        if s.position_sizing is PositionSizing.FIXED_QUANTITY:
            return s.fixed_quantity
        if s.position_sizing is PositionSizing.FIXED_NOTIONAL:
            return s.fixed_notional / price
        assert stop is not None
        wanted = risk.size_for_risk(self.equity(), s.risk.risk_per_trade_pct, side, price, stop, s.taker_fee)
        # Risk sizing never asks for more than the balance affords (conservative per-unit cost).
        lev = s.leverage
        per_unit = price / lev + price * self._exit_fee_rate * (2 + 1 / lev)
        return min(wanted, max(self.available(), 0.0) / per_unit)

    def plan_entry(
        self,
        symbol: str,
        side: Side,
        price: float,
        time: int,
        quantity: float | None = None,
        stop: float | None = None,
        take: float | None = None,
        order: Order | None = None,
        liquidity: Liquidity = Liquidity.TAKER,
    ) -> tuple[EntryPlan | None, tuple[risk.RiskCheckResult, ...], str | None]:
        """What opening (or adding to) a position at ``price`` would book, changing nothing:
        (plan, verdicts, None), or (None, verdicts, why not). Signal entries (quantity None) are
        sized and risk checked; manual orders carry their quantity and skip the risk checks (the
        user decided). ``order`` is the resting order being filled, whose reserved margin counts."""
        s = self.settings
        spec = self.spec(symbol)
        existing = self.positions.get(symbol)
        if stop is None and take is None and existing is None:
            stop, take = self._default_brackets(side, price, spec)
        elif existing is not None:
            # A manual add's requested brackets replace the position's; one not given stays as it was.
            stop = existing.stop_loss if stop is None else stop
            take = existing.take_profit if take is None else take
        signal_entry = quantity is None
        if quantity is None:
            quantity = self._size(side, price, stop)
            if self._partial:  # otherwise the share is exactly 1.0
                quantity *= broker.partial_ratio(s.seed, self.fill_counter, s.partial_fill_min_ratio)
        quantity = spec.round_quantity(quantity)
        if quantity <= 0:
            return None, (), "quantity rounds to zero"
        long = side is Side.LONG
        entry_fee = broker.fee(quantity, price, s.taker_fee if liquidity is Liquidity.TAKER else s.maker_fee)
        leverage = s.leverage
        add_margin = quantity * price / leverage
        if existing is None:
            total_q, avg_entry, total_margin = quantity, price, add_margin
        else:
            total_q = quantity + existing.quantity
            avg_entry = (existing.quantity * existing.entry_price + quantity * price) / total_q
            total_margin = add_margin + existing.margin
        liq = self._liquidation(symbol, side, total_q, avg_entry, total_margin)
        # The balance first: an order far beyond it is a margin problem, whatever else it breaks.
        exit_reserve = quantity * (price if long else max(liq, price)) * self._exit_fee_rate
        free = self.available()
        if order is not None:
            free += order.reserved_margin
        if add_margin + entry_fee + exit_reserve > free * (1 + 1e-12):
            return None, (), (f"insufficient balance: needs {add_margin + entry_fee + exit_reserve:.8g} "
                              f"{s.account_currency} (margin at {leverage}x and fees), available {free:.8g}")
        if not self._spot:
            notional = total_q * avg_entry
            allowed = margin.max_leverage_for(margin.brackets_for(symbol), notional)
            if leverage > allowed:
                return None, (), (f"leverage {leverage}x exceeds the bracket maximum {allowed}x "
                                  f"for notional {notional:.2f}")
        if stop is not None and liq > 0 and (liq >= stop if long else liq <= stop):
            return None, (), f"liquidation price {liq:.8g} lies inside the stop {stop}"
        verdicts: tuple[risk.RiskCheckResult, ...] = ()
        if signal_entry and not s.risk.enabled:
            verdicts = risk.ALL_OFF
        elif signal_entry:
            candidate = risk.EntryCandidate(symbol, side, price, quantity, stop, liq, s.taker_fee, spec.min_notional)
            verdicts = risk.assess_entry(candidate, self._risk_context(), s.risk)
            failed = [v for v in verdicts if not v.passed]
            if failed:
                return None, verdicts, "; ".join(f"{v.name}: {v.reason}" for v in failed)
        elif quantity * price < spec.min_notional:
            return None, (), f"notional {quantity * price:.8g} is below the minimum {spec.min_notional}"
        plan = EntryPlan(symbol, side, price, time, quantity, stop, take, entry_fee, add_margin, total_q, avg_entry,
                         total_margin, liq, verdicts, existing)
        return plan, verdicts, None

    def _enter(
        self,
        symbol: str,
        side: Side,
        price: float,
        time: int,
        quantity: float | None,
        stop: float | None,
        take: float | None,
        fills: list[Fill],
        order: Order | None,
        liquidity: Liquidity = Liquidity.TAKER,
    ) -> tuple[tuple[risk.RiskCheckResult, ...], str | None]:
        """``plan_entry``, then book the fill it plans."""
        plan, verdicts, rejection = self.plan_entry(symbol, side, price, time, quantity, stop, take, order, liquidity)
        if plan is not None:
            self.book_entry(plan, order, liquidity, fills)
        return verdicts, rejection

    def _risk_context(self) -> risk.RiskContext:
        s = self.settings.risk
        if self.streak_tripped_at is not None and s.is_on("cooldown"):
            if self.now >= risk.cooldown_end(self.streak_tripped_at, s):
                self.consecutive_losses = 0
                self.streak_tripped_at = None
        return risk.RiskContext(
            now=self.now,
            equity=self.equity(),
            day_start_equity=self.day_start_equity,
            positions=tuple(self.positions.values()),
            consecutive_losses=self.consecutive_losses,
            streak_tripped_at=self.streak_tripped_at,
            closes={k: list(v) for k, v in self.closes.items()} if s.is_on("correlation") and self.positions else {},
        )

