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
   the seven risk checks and fills a market order at close ± slippage with the taker fee.

State is compact (closed trades are output, never kept) and ``to_state()`` / ``from_state()``
round-trip it through plain JSON exactly. No I/O, no wall clock, no numpy/pandas; randomness only
from ``settings.seed``.
"""

from __future__ import annotations

import bisect
import math
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

from trading import broker, margin, risk
from trading.candle import DAY_MS, BadCandleError, Candle, candle_problem
from trading.funding import FUNDING_INTERVAL_MS, FundingSchedule, boundaries_in
from trading.models import (
    Account,
    CloseReason,
    Fill,
    Liquidity,
    Order,
    OrderType,
    Position,
    Side,
    SymbolSpec,
    Trade,
)
from trading.settings import EngineSettings, FundingMode, MarketType, PositionSizing
from trading.signals import Direction, Signal

STATE_VERSION = 1

CandleColumns = tuple[list[float], list[float], list[float]]  # highs, lows, closes


class CandleRejected(BadCandleError):
    """A candle the Engine will not step: bad values, unknown symbol, or out of time order."""

    def __init__(self, candle: Candle, reason: str) -> None:
        super().__init__(0, reason, candle.open_time)
        ValueError.__init__(self, f"bad candle {candle.symbol or '?'}@{candle.open_time}: {reason}")


class OrderError(ValueError):
    """A manual order or close the Engine refuses, with the reason."""


@dataclass(frozen=True, slots=True)
class StepResult:
    fills: tuple[Fill, ...] = ()
    trades: tuple[Trade, ...] = ()  # trades closed during the step
    risk: tuple[risk.RiskCheckResult, ...] = ()  # verdicts of an attempted entry
    rejection: str | None = None  # why an entry signal did not trade


EMPTY_STEP = StepResult()


def _first_funding_candle(close_times: Sequence[int], interval: int, start: int, stop: int) -> int:
    """The first index in [start, stop) whose candle spans an 8-hour funding instant (``stop`` if
    none), for candles of one interval: the per-candle test ``close // grid != open // grid`` of
    ``step``, found by bisection on the close times (gaps in the series are allowed)."""
    grid = FUNDING_INTERVAL_MS
    k = start
    while k < stop:
        instant = ((close_times[k] - interval) // grid + 1) * grid  # the first instant after candle k opens
        k = bisect.bisect_left(close_times, instant, k, stop)  # the first candle closing at or after it
        if k == stop or close_times[k] - interval < instant:
            return k
        # A gap: candle k opens after that instant; look again from it.
    return stop


def _finite_positive(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and value > 0


class Engine:
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
        self._funding_series = dict(funding_series or {})
        self._funding: dict[str, FundingSchedule] = {}
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

    # ------------------------------------------------------------------ queries
    def spec(self, symbol: str) -> SymbolSpec:
        if not self._specs:
            spec = self._open_specs.get(symbol)
            if spec is None:
                spec = self._open_specs[symbol] = SymbolSpec(symbol)
            return spec
        try:
            return self._specs[symbol]
        except KeyError:
            raise OrderError(f"unknown symbol {symbol!r}; this engine trades {', '.join(self._specs)}") from None

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
            schedule = FundingSchedule(series, s.funding_rate)
            self._funding[symbol] = schedule
        return schedule

    def is_idle(self) -> bool:
        """No position and no order: a neutral candle can only move marks and clocks."""
        return not self.positions and not self.orders

    # ------------------------------------------------------------------ stepping
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
            return (), None
        return self._on_signal(side, confidence, symbol, close, close_time, fills, trades)

    def advance_idle(
        self, candles: Sequence[Candle], start: int = 0, end: int | None = None, closes: Sequence[float] | None = None
    ) -> None:
        """Move an idle engine over ``candles[start:end]`` (one symbol) whose signals cannot act, with
        exactly the effect of stepping each: clocks, day start, last close and the correlation window.
        ``closes`` (the closes of the whole series) only saves work."""
        if end is None:
            end = len(candles)
        if end <= start:
            return
        if not self.is_idle():
            raise RuntimeError("advance_idle needs an engine with no position and no order")
        last = candles[end - 1]
        close_time = last.open_time + last.interval_ms
        day = close_time // DAY_MS
        if day != self.day:
            self.day_start_equity = self.cash  # flat: equity is cash at every candle of the run
            self.day = day
        self.now = close_time
        symbol = last.symbol
        self.last_close[symbol] = last.close
        self.last_open_time[symbol] = last.open_time
        window = self.closes.get(symbol)
        if window is None:
            window = self.closes[symbol] = deque(maxlen=self.settings.risk.correlation_window)
        # Only the last maxlen closes survive in the window.
        first = max(start, end - (window.maxlen or 0))
        if closes is None:
            window.extend([c.close for c in candles[first:end]])
        else:
            window.extend(closes[first:end])

    def advance_holding(
        self,
        candles: Sequence[Candle],
        start: int,
        end: int,
        columns: CandleColumns | None = None,
        close_times: Sequence[int] | None = None,
    ) -> None:
        """Move over ``candles[start:end]`` of the one open position's symbol on which, as the caller
        checked (``holding_span_end``), no exit level, funding instant, order or signal acts, with
        exactly the effect of stepping each: MFE/MAE, trailing extreme, day start, clocks and marks.
        ``columns`` (highs, lows, closes of the whole series) and ``close_times`` (of the whole
        series) only save work."""
        if end <= start:
            return
        p = self._only_position("advance_holding")
        if columns is None:
            span = candles[start:end]
            columns = ([c.high for c in span], [c.low for c in span], [c.close for c in span])
            start, end = 0, len(span)
            candles = span
            close_times = None
        highs, lows, closes = columns
        self._advance_position(p, candles, start, end, max(highs[start:end]), min(lows[start:end]), closes, close_times)

    def hold_through(
        self, candles: Sequence[Candle], start: int, stop: int, columns: CandleColumns, close_times: list[int]
    ) -> int:
        """``holding_span_end`` and ``advance_holding`` in one, for the backtester: move the one
        open position over the candles of ``[start, stop)`` before the first one on which an exit
        level or a funding instant may act, and return that candle's index (``stop`` if none).
        ``candles`` is one symbol at one interval; ``columns`` and ``close_times`` are its highs,
        lows, closes and close times."""
        if stop <= start:
            return start
        p = self._only_position("hold_through")
        if self._funding_on:
            stop = _first_funding_candle(close_times, candles[start].interval_ms, start, stop)
            if stop == start:
                return start
        highs, lows, closes = columns
        if p.trailing_pct is not None:  # the trailing level moves candle by candle
            end = self.holding_span_end(candles, start, stop)
            if end > start:
                self._advance_position(
                    p, candles, start, end, max(highs[start:end]), min(lows[start:end]), closes, close_times
                )
            return end
        # Fixed levels. For a long, broker.exit_on_candle's "no exit" test
        # ``low > liq and low > stop and high < take`` fails exactly when low <= max(liq, stop) or
        # high >= take (prices are finite); for a short, when high >= min(liq if liq > 0, stop) or
        # low <= take. The span's extremes answer for the whole span at once.
        stop_level, take, liq = p.stop_loss, p.take_profit, p.liquidation_price
        low_at: float | None
        high_at: float | None
        if p.side is Side.LONG:
            low_at = liq if stop_level is None else max(liq, stop_level)
            high_at = take
        else:
            low_at = take
            high_at = stop_level if liq <= 0 else (liq if stop_level is None else min(liq, stop_level))
        high = max(highs[start:stop])
        low = min(lows[start:stop])
        end = stop
        if (low_at is not None and low <= low_at) or (high_at is not None and high >= high_at):
            end = start
            while (low_at is None or lows[end] > low_at) and (high_at is None or highs[end] < high_at):
                end += 1  # stops inside the span: its extremes showed a touch
            if end == start:
                return start
            high = max(highs[start:end])
            low = min(lows[start:end])
        self._advance_position(p, candles, start, end, high, low, closes, close_times)
        return end

    def _only_position(self, caller: str) -> Position:
        if len(self.positions) != 1 or self.orders:
            raise RuntimeError(f"{caller} needs exactly one position and no order")
        return next(iter(self.positions.values()))

    def _advance_position(
        self,
        p: Position,
        candles: Sequence[Candle],
        start: int,
        end: int,
        high: float,
        low: float,
        closes: Sequence[float],
        close_times: Sequence[int] | None,
    ) -> None:
        """The effect of stepping ``candles[start:end]`` (highest high ``high``, lowest low ``low``)
        on which nothing acts on the position ``p``."""
        q, entry = p.quantity, p.entry_price
        # q * (x - entry) is monotone in x in floating point, so the extreme of the per-candle
        # excursions is the excursion at the extreme price: identical to stepping.
        if p.side is Side.LONG:
            favorable, adverse = q * (high - entry), q * (low - entry)
            if p.trailing_pct is not None and high > p.trail_extreme:
                p.trail_extreme = high
        else:
            favorable, adverse = q * (entry - low), q * (entry - high)
            if p.trailing_pct is not None and low < p.trail_extreme:
                p.trail_extreme = low
        if favorable > p.max_favorable:
            p.max_favorable = favorable
        if adverse < p.max_adverse:
            p.max_adverse = adverse
        symbol = p.symbol
        last = candles[end - 1]
        close_time = last.open_time + last.interval_ms
        day = close_time // DAY_MS
        if day != self.day:
            # m: the span's first candle closing on the new day; the day starts at the equity
            # marked by the candle before it.
            if close_times is not None:
                m = bisect.bisect_left(close_times, day * DAY_MS, start, end)
            else:
                m = end - 1
                while m > start and (candles[m - 1].open_time + candles[m - 1].interval_ms) // DAY_MS == day:
                    m -= 1
            previous_close = closes[m - 1] if m > start else self.last_close[symbol]
            self.day_start_equity = self.cash + p.unrealised(previous_close)
            self.day = day
        self.now = close_time
        self.last_close[symbol] = last.close
        self.last_open_time[symbol] = last.open_time
        window = self.closes[symbol]
        window.extend(closes[max(start, end - (window.maxlen or 0)) : end])

    def holding_span_end(self, candles: Sequence[Candle], start: int, stop: int) -> int:
        """The first index in [start, stop) whose candle may trigger an exit or funding for the one
        open position (``stop`` if none): candles before it can go to ``advance_holding``."""
        p = next(iter(self.positions.values()))
        fixed_stop = p.stop_loss
        take = p.take_profit
        liq = p.liquidation_price
        trailing = p.trailing_pct
        extreme = p.trail_extreme
        funding = self._funding_on
        grid = FUNDING_INTERVAL_MS
        long = p.side is Side.LONG
        for k in range(start, stop):
            c = candles[k]
            if funding and (c.open_time + c.interval_ms) // grid != c.open_time // grid:
                return k
            # The same float expressions as broker.exit_on_candle, so the verdicts agree exactly.
            level = fixed_stop
            if long:
                if trailing is not None:
                    trail = extreme * (1 - trailing / 100)
                    if level is None or trail > level:
                        level = trail
                if not (c.low > liq and (level is None or c.low > level) and (take is None or c.high < take)):
                    return k
                if trailing is not None and c.high > extreme:
                    extreme = c.high
            else:
                if trailing is not None:
                    trail = extreme * (1 + trailing / 100)
                    if level is None or trail < level:
                        level = trail
                if not (
                    (liq <= 0 or c.high < liq) and (level is None or c.high < level) and (take is None or c.low > take)
                ):
                    return k
                if trailing is not None and c.low < extreme:
                    extreme = c.low
        return stop

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

    # ------------------------------------------------------------------ signals and entries
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
        """Open (or add to) a position at ``price``. Signal entries (quantity None) are sized and risk
        checked; manual orders carry their quantity and skip the risk checks (the user decided)."""
        s = self.settings
        spec = self.spec(symbol)
        existing = self.positions.get(symbol)
        if stop is None and take is None and existing is None:
            stop, take = self._default_brackets(side, price, spec)
        elif existing is not None:
            stop, take = existing.stop_loss, existing.take_profit
        signal_entry = quantity is None
        if quantity is None:
            quantity = self._size(side, price, stop)
            if self._partial:  # otherwise the share is exactly 1.0
                quantity *= broker.partial_ratio(s.seed, self.fill_counter, s.partial_fill_min_ratio)
        quantity = spec.round_quantity(quantity)
        if quantity <= 0:
            return (), "quantity rounds to zero"
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
        if not self._spot:
            notional = total_q * avg_entry
            allowed = margin.max_leverage_for(margin.brackets_for(symbol), notional)
            if leverage > allowed:
                return (), f"leverage {leverage}x exceeds the bracket maximum {allowed}x for notional {notional:.2f}"
        if stop is not None and liq > 0 and (liq >= stop if long else liq <= stop):
            return (), f"liquidation price {liq:.8g} lies inside the stop {stop}"
        exit_reserve = quantity * (price if long else max(liq, price)) * self._exit_fee_rate
        free = self.available()
        if order is not None:
            free += order.reserved_margin
        if add_margin + entry_fee + exit_reserve > free * (1 + 1e-12):
            return (
                (),
                f"insufficient balance: needs {add_margin + entry_fee + exit_reserve:.8g}, available {free:.8g}",
            )
        verdicts: tuple[risk.RiskCheckResult, ...] = ()
        if signal_entry and not s.risk.enabled:
            verdicts = risk.ALL_OFF
        elif signal_entry:
            candidate = risk.EntryCandidate(symbol, side, price, quantity, stop, liq, s.taker_fee, spec.min_notional)
            verdicts = risk.assess_entry(candidate, self._risk_context(), s.risk)
            failed = [v for v in verdicts if not v.passed]
            if failed:
                return verdicts, "; ".join(f"{v.name}: {v.reason}" for v in failed)
        elif quantity * price < spec.min_notional:
            return (), f"notional {quantity * price:.8g} is below the minimum {spec.min_notional}"
        self.fill_counter += 1
        self.cash -= entry_fee
        self.fees_paid += entry_fee
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
                leverage,
                add_margin,
                liq,
                stop,
                take,
                s.trailing_stop_pct,
                price,
                entry_fee,
            )
        else:
            existing.quantity = total_q
            existing.entry_price = avg_entry
            existing.margin = total_margin
            existing.liquidation_price = liq
            existing.entry_fee += entry_fee
        fills.append(Fill(order.id if order else None, symbol, side, True, quantity, price, entry_fee, liquidity, time))
        return verdicts, None

    def _new_trade_id(self) -> int:
        trade_id = self.next_trade_id
        self.next_trade_id += 1
        return trade_id

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

    # ------------------------------------------------------------------ exits
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

    # ------------------------------------------------------------------ resting orders
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

    # ------------------------------------------------------------------ manual API
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
            order_type = OrderType(order_type)
        except ValueError as exc:
            raise OrderError(str(exc)) from None
        if not _finite_positive(quantity):
            raise OrderError(f"quantity must be a finite number > 0, got {quantity!r}")
        rounded = spec.round_quantity(quantity)
        if rounded <= 0:
            raise OrderError(f"quantity {quantity} is below the step size {spec.step_size}")
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
                raise OrderError(f"{name} must be a finite number > 0, got {value!r}")
        if side is Side.SHORT and self.settings.market is MarketType.SPOT and not reduce_only:
            raise OrderError("spot trading cannot open a short")
        position = self.positions.get(symbol)
        if reduce_only and (position is None or position.side is not side):
            raise OrderError(f"reduce-only order: no {side} position in {symbol} to reduce")
        if not reduce_only and position is not None and position.side is not side:
            raise OrderError(f"{symbol} holds a {position.side} position: close it or use reduce_only")
        if order_type is OrderType.MARKET:
            if price is None:
                raise OrderError("a market order needs the latest price")
            return None, self._market(symbol, side, rounded, price, time, reduce_only, stop_loss, take_profit)
        if limit_price is None:
            raise OrderError(f"a {order_type} order needs limit_price")
        if order_type is OrderType.STOP_LIMIT and stop_price is None:
            raise OrderError("a stop_limit order needs stop_price")
        if order_type is OrderType.LIMIT and stop_price is not None:
            raise OrderError("a limit order takes no stop_price")
        limit_price = spec.round_price(limit_price)
        reserved = 0.0
        if not reduce_only:
            reserved = rounded * limit_price / self.settings.leverage
            reserved += rounded * limit_price * max(self.settings.maker_fee, self.settings.taker_fee, 0.0) * 3
            if reserved > self.available():
                raise OrderError(
                    f"insufficient balance: the order needs {reserved:.8g}, available {self.available():.8g}"
                )
            if rounded * limit_price < spec.min_notional:
                raise OrderError(f"notional {rounded * limit_price:.8g} is below the minimum {spec.min_notional}")
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
            raise OrderError(rejection)
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
            raise OrderError(f"price must be a finite number > 0, got {price!r}")
        if time < self.now:
            raise OrderError(f"time {time} is before market time {self.now}")
        for position in self.positions.values():
            if position.trade_id == trade_id:
                fills: list[Fill] = []
                trades: list[Trade] = []
                self._close(position, price, CloseReason.MANUAL, time, position.quantity, fills, trades)
                return trades[0]
        raise OrderError(f"no open trade {trade_id}")

    # ------------------------------------------------------------------ state
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
        }

    @classmethod
    def from_state(
        cls, state: dict[str, object], funding_series: dict[str, list[tuple[int, float]]] | None = None
    ) -> Engine:
        if state.get("version") != STATE_VERSION:
            raise ValueError(f"engine state version {state.get('version')!r}, expected {STATE_VERSION}")
        data: dict = dict(state)
        engine = cls(EngineSettings.from_dict(data["settings"]), funding_series)
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
        return engine
