"""trading.Engine: one account's positions, orders and risk state, advanced candle by candle.

``Engine.step(candle, signal)`` is the reference semantics shared by paper sessions and backtests.
One step, in this order:

1. validate the candle (bad values, unknown symbol, not newer than the symbol's last candle, or
   closing before market time) and the signal (same symbol and open time);
2. market time becomes the candle's close time; on a new UTC day, the day's start equity is the
   equity at the previous marks;
3. resting limit / stop-limit orders of the symbol fill against the candle (trading.broker);
4. the symbol's position (unless it was opened on this very candle) meets SL / TP / trailing stop /
   liquidation on the candle's open/high/low with the intrabar rule of trading.broker;
5. funding for every 8-hour UTC grid instant inside (open_time, close_time] while it stays open;
6. the close is marked (last price, correlation window, MFE/MAE, trailing extreme);
7. the signal: an opposite direction closes the position (if ``close_on_opposite_signal``), then a
   long/short signal with enough confidence, while entries are enabled and the symbol is flat, runs
   the seven risk checks and fills a market order with the taker fee. With ``fill_price`` next_open
   (the default) the signal waits, and all of this happens first thing on the symbol's next candle,
   at its open ± slippage (step 2½); with ``close``, at this candle's close ± slippage.

State is compact (closed trades are output, never kept) and ``to_state()`` / ``from_state()``
round-trip it through plain JSON exactly. No I/O, no wall clock, no numpy/pandas; randomness only
from ``settings.seed``.
"""

from __future__ import annotations

from collections import deque

from trading import broker, risk
from trading.candle import DAY_MS, Candle, candle_problem
from trading.engine_types import EMPTY_STEP, CandleRejected, OrderError, StepResult
from trading.fast_paths import FastPaths
from trading.funding import FUNDING_INTERVAL_MS
from trading.ledger import EntryPlan
from trading.models import Fill, Order, Position, Side, Trade
from trading.order_book import OrderBook
from trading.settings import EngineSettings, FillPrice
from trading.signals import Direction, Signal

__all__ = ["EMPTY_STEP", "CandleRejected", "Engine", "EntryPlan", "OrderError", "StepResult"]

STATE_VERSION = 1


class Engine(OrderBook, FastPaths):
    """One account stepped candle by candle (module docstring); the parts live in ``trading.ledger``,
    ``trading.entry_planning``, ``trading.order_book`` and ``trading.fast_paths``."""

    def step(self, candle: Candle, signal: Signal | None = None) -> StepResult:
        problem = candle_problem(candle)
        if problem:
            raise CandleRejected(candle, problem)
        self.spec(candle.symbol)
        previous = self.last_open_time.get(candle.symbol)
        if previous is not None and candle.open_time <= previous:
            raise CandleRejected(candle, f"open_time {candle.open_time} is not after the last {previous}")
        if candle.open_time + candle.interval_ms < self.now:
            raise CandleRejected(candle, f"closes at {candle.close_time}, before market time {self.now}")
        if signal is not None and (signal.symbol != candle.symbol or signal.open_time != candle.open_time):
            raise ValueError(
                f"signal for {signal.symbol}@{signal.open_time} "
                f"does not match candle {candle.symbol}@{candle.open_time}"
            )
        return self.step_trusted(candle, signal)

    def step_trusted(self, candle: Candle, signal: Signal | None) -> StepResult:
        """``step`` without the input checks, for callers that validated the whole series."""
        if signal is None or signal.direction is Direction.NEUTRAL:
            return self.step_side(candle, None, 0.0)
        side = Side.LONG if signal.direction is Direction.LONG else Side.SHORT
        return self.step_side(candle, side, signal.confidence)

    def step_side(self, candle: Candle, side: Side | None, confidence: float) -> StepResult:
        """``step_trusted`` with the signal reduced to what the Engine reads from it: the side it
        calls for (None: no signal or neutral) and its confidence. Lets callers that keep signals
        as arrays of direction codes skip building ``Signal`` objects."""
        fills: list[Fill] = []
        trades: list[Trade] = []
        verdicts, rejection = self.step_into(candle, side, confidence, fills, trades)
        if not fills and not verdicts and rejection is None:
            return EMPTY_STEP
        return StepResult(tuple(fills), tuple(trades), verdicts, rejection)

    def step_into(
        self, candle: Candle, side: Side | None, confidence: float, fills: list[Fill], trades: list[Trade]
    ) -> tuple[tuple[risk.RiskCheckResult, ...], str | None]:
        """``step_side`` appending its fills and closed trades to the caller's lists and returning
        (risk verdicts, rejection): the backtester's path, which builds no ``StepResult``."""
        symbol = candle.symbol
        open_time = candle.open_time
        close_time = open_time + candle.interval_ms
        day = close_time // DAY_MS
        if day != self.day:
            self.day_start_equity = self.equity()
            self.day = day
        verdicts: tuple[risk.RiskCheckResult, ...] = ()
        rejection: str | None = None
        waiting = self.pending_signals.pop(symbol, None) if self.pending_signals else None
        if waiting is not None:
            # Decided on the previous candle's close, filled at this candle's open: the first price an
            # order sent after that close can get.
            self.now = max(self.now, open_time)
            verdicts, rejection = self._on_signal(waiting[0], waiting[1], symbol, candle.open, open_time, fills,
                                                  trades)
        self.now = close_time
        if self.orders:
            self._process_orders(candle, fills, trades)
        position = self.positions.get(symbol) if self.positions else None
        if position is not None and position.entry_time != close_time:
            hit = broker.exit_on_candle(position, candle.open, candle.high, candle.low)
            if hit is not None:
                self._close(position, hit[0], hit[1], close_time, position.quantity, fills, trades)
                position = None
        close = candle.close
        if position is not None:
            # Integer test first: most candles cross no 8-hour grid instant.
            if self._funding_on and close_time // FUNDING_INTERVAL_MS != open_time // FUNDING_INTERVAL_MS:
                self._apply_funding(position, candle, fills, trades)
                position = self.positions.get(symbol)
            if position is not None:
                # Inlined _mark_position: this runs on every candle spent in a position.
                high, low = candle.high, candle.low
                q, entry = position.quantity, position.entry_price
                if position.side is Side.LONG:
                    favorable, adverse = q * (high - entry), q * (low - entry)
                    if position.trailing_pct is not None and high > position.trail_extreme:
                        position.trail_extreme = high
                else:
                    favorable, adverse = q * (entry - low), q * (entry - high)
                    if position.trailing_pct is not None and low < position.trail_extreme:
                        position.trail_extreme = low
                if favorable > position.max_favorable:
                    position.max_favorable = favorable
                if adverse < position.max_adverse:
                    position.max_adverse = adverse
        self.last_close[symbol] = close
        self.last_open_time[symbol] = open_time
        window = self.closes.get(symbol)
        if window is None:
            window = self.closes[symbol] = deque(maxlen=self.settings.risk.correlation_window)
        window.append(close)
        if side is None:
            return verdicts, rejection
        if self._next_open:
            if self._could_act(symbol, side, confidence):
                self.pending_signals[symbol] = (side, confidence)
            return verdicts, rejection
        return self._on_signal(side, confidence, symbol, close, close_time, fills, trades)

    def act_at_open(self, symbol: str, price: float, time: int) -> StepResult:
        """The waiting decision of ``symbol`` acted on at an open at ``price`` and market time ``time``
        (what the next step would do first), booked on this Engine. A real session calls it on a copy
        the moment a candle closes: the exchange's book then offers the next open, so the fills it
        returns are the orders to send, sized as paper and backtest size them."""
        waiting = self.pending_signals.pop(symbol, None) if self.pending_signals else None
        if waiting is None:
            return EMPTY_STEP
        fills: list[Fill] = []
        trades: list[Trade] = []
        self.now = max(self.now, time)
        verdicts, rejection = self._on_signal(waiting[0], waiting[1], symbol, price, time, fills, trades)
        return StepResult(tuple(fills), tuple(trades), verdicts, rejection)

    def _could_act(self, symbol: str, side: Side, confidence: float) -> bool:
        """Whether a signal can change anything at the next open (nothing happens to the symbol's
        position before then): close an opposite position, or open one. Others are not kept, so an
        ignored signal leaves the state as it found it."""
        position = self.positions.get(symbol)
        if position is not None:
            return position.side is not side and self.settings.close_on_opposite_signal
        return confidence >= self.settings.min_confidence and not (side is Side.SHORT and self._spot)

    def to_state(self) -> dict[str, object]:
        return {
            "version": STATE_VERSION,
            "settings": self.settings.to_dict(),
            "cash": self.cash,
            "fees_paid": self.fees_paid,
            "funding_paid": self.funding_paid,
            "positions": [p.to_dict() for p in self.positions.values()],
            "orders": [o.to_dict() for o in self.orders.values()],
            "last_close": dict(self.last_close),
            "last_open_time": dict(self.last_open_time),
            "closes": {k: list(v) for k, v in self.closes.items()},
            "now": self.now,
            "day": self.day,
            "day_start_equity": self.day_start_equity,
            "consecutive_losses": self.consecutive_losses,
            "streak_tripped_at": self.streak_tripped_at,
            "next_trade_id": self.next_trade_id,
            "next_order_id": self.next_order_id,
            "fill_counter": self.fill_counter,
            "entries_enabled": self.entries_enabled,
            "pending_signals": {k: [side.value, confidence] for k, (side, confidence) in self.pending_signals.items()},
            **({"funding_rates": {k: sorted(v.items()) for k, v in self.learned_rates.items()}}
               if self.learned_rates else {}),
        }

    @classmethod
    def from_state(
        cls, state: dict[str, object], funding_series: dict[str, list[tuple[int, float]]] | None = None
    ) -> Engine:
        if state.get("version") != STATE_VERSION:
            raise ValueError(f"engine state version {state.get('version')!r}, expected {STATE_VERSION}")
        data: dict = dict(state)
        # Engines saved before fills at the next open filled signals at the close: they still do.
        settings = {"fill_price": FillPrice.CLOSE.value, **data["settings"]}
        engine = cls(EngineSettings.from_dict(settings), funding_series)
        engine.cash = data["cash"]
        engine.fees_paid = data["fees_paid"]
        engine.funding_paid = data["funding_paid"]
        engine.positions = {p["symbol"]: Position.from_dict(p) for p in data["positions"]}
        engine.orders = {o["id"]: Order.from_dict(o) for o in data["orders"]}
        engine.last_close = dict(data["last_close"])
        engine.last_open_time = dict(data["last_open_time"])
        window = engine.settings.risk.correlation_window
        engine.closes = {k: deque(v, maxlen=window) for k, v in data["closes"].items()}
        engine.now = data["now"]
        engine.day = data["day"]
        engine.day_start_equity = data["day_start_equity"]
        engine.consecutive_losses = data["consecutive_losses"]
        engine.streak_tripped_at = data["streak_tripped_at"]
        engine.next_trade_id = data["next_trade_id"]
        engine.next_order_id = data["next_order_id"]
        engine.fill_counter = data["fill_counter"]
        engine.entries_enabled = data["entries_enabled"]
        # States saved before fills at the next open have none waiting.
        engine.pending_signals = {k: (Side(v[0]), v[1]) for k, v in data.get("pending_signals", {}).items()}
        engine.learned_rates = {k: {int(t): r for t, r in v} for k, v in data.get("funding_rates", {}).items()}
        return engine

