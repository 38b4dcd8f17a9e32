"""The backtester: the same ``trading.Engine`` over a candle series, with signals precomputed.

It may skip candles where nothing can happen:

* idle (no position, no order): a candle whose signal cannot act (None, neutral, too little
  confidence, a short in spot mode) only moves clocks and marks: ``Engine.advance_idle``;
* holding one position (no order): until the next long/short signal, the first candle that
  reaches an exit level or crosses a funding instant, candles only move marks, MFE/MAE and the
  trailing extreme: ``Engine.hold_through`` finds that candle (from the span's extremes with
  fixed levels, candle by candle with a trailing stop) and advances over the ones before it.

Everywhere else it calls ``Engine.step_into``, which is ``step`` without the input checks (the
series was validated once), without ``Signal`` objects (signals stay arrays of direction codes)
and without building a ``StepResult``. The candle that ends a skipped span is stepped at once.

The equity is recorded as spans of constant cash and position and drawn in numpy at the end
(``trading.equity_curve``), daily returns and drawdown with it; columns a signal series already
read from the same candle sequence are reused. ``skip_idle=False`` steps every candle through
``Engine.step``, marks every candle with ``Engine.equity()`` and computes the metrics in pure Python:
tests prove both give byte-identical JSON and equity curves on every file in data/.

Warm-up: signals are computed by the caller from the anchor (``warmup_from``); the Engine sees
candles from ``trade_from`` on, as a paper session started at that candle would.
"""

from __future__ import annotations

import bisect
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import compress, count, repeat
from operator import attrgetter, le, lt
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from trading.candle import Candle, CandleLists, validate_candles
from trading.engine import Engine
from trading.equity_curve import EquitySpans, daily_returns, max_drawdown
from trading.metrics import compute_metrics
from trading.models import Fill, Side, Trade
from trading.settings import EngineSettings, FillPrice, MarketType
from trading.signals import Direction, Signal
from trading.simple_signals import SimpleSignalSeries


class SignalSource(Protocol):
    """A list of ``Signal | None`` or ``trading.analysis.SignalSeries`` (arrays + ``signal_at``)."""

    def __len__(self) -> int: ...


@dataclass(frozen=True, slots=True)
class BacktestResult:
    symbol: str
    settings: EngineSettings
    trades: tuple[Trade, ...]
    close_times: tuple[int, ...]
    equity: tuple[float, ...]  # after each traded candle
    candles_in_position: int
    entries_rejected: int
    final_state: dict[str, Any]
    metrics: dict[str, float | int | None]

    def to_json_dict(self) -> dict[str, Any]:
        return {
            "symbol": self.symbol,
            "from": self.close_times[0] if self.close_times else None,
            "to": self.close_times[-1] if self.close_times else None,
            "candles": len(self.close_times),
            "candles_in_position": self.candles_in_position,
            "entries_rejected": self.entries_rejected,
            "metrics": self.metrics,
            "trades": [t.to_dict() for t in self.trades],
            "final_state": self.final_state,
        }

    def to_json(self) -> str:
        """Canonical JSON: the same input gives the same bytes."""
        return json.dumps(self.to_json_dict(), sort_keys=True, separators=(",", ":"), allow_nan=False)


def _acts(signal: Signal | None, settings: EngineSettings) -> bool:
    if signal is None or signal.direction is Direction.NEUTRAL:
        return False
    if signal.confidence < settings.min_confidence:
        # Too weak to enter, but an opposite signal still closes a position, so it is not idle
        # unless closing on signals is off; while idle there is nothing to close either way.
        return False
    return not (signal.direction is Direction.SHORT and settings.market is MarketType.SPOT)


class _Signals:
    """Uniform per-candle access to a list of signals or a lazy series (``direction`` codes +
    ``signal_at``): a SignalSeries of trading.analysis (numpy arrays) or a SimpleSignalSeries (lists).

    ``decision(i)`` gives what the Engine reads from signal i (side, confidence) without building a
    ``Signal``; ``signal(i)`` builds the Signal itself, for the reference path through ``Engine.step``."""

    def __init__(self, source: Any, settings: EngineSettings) -> None:
        self._list: Sequence[Signal | None] | None = None
        self._series: Any = None
        spot = settings.market is MarketType.SPOT
        floor = settings.min_confidence
        if hasattr(source, "signal_at") and hasattr(source, "direction"):
            self._series = source
            direction = source.direction
            codes = direction if isinstance(direction, list) else direction.tolist()  # None/0: neutral
            # signal_at gives None before a series' warm-up whatever its codes say.
            warmup = getattr(source, "warmup", 0)
            if warmup > 0 and any(codes[:warmup]):
                codes = [0] * warmup + codes[warmup:]
            self._codes = codes
            # A SimpleSignalSeries' directional signals all have confidence 1.0 (see signal_at).
            self._fixed_confidence = 1.0 if isinstance(source, SimpleSignalSeries) else None
            self._confidence: Any = None if self._fixed_confidence is not None else source.confidence
            self.directional = list(compress(count(), codes))  # indices of nonzero codes
            actionable = self.directional
            if floor > 0:
                actionable = [i for i in actionable if self._confidence_at(i) >= floor]
            if spot:
                actionable = [i for i in actionable if codes[i] > 0]
            self.actionable = list(actionable) if actionable is self.directional else actionable
        else:
            self._list = source
            self.actionable = [i for i, s in enumerate(source) if _acts(s, settings)]
            self.directional = [
                i for i, s in enumerate(source) if s is not None and s.direction is not Direction.NEUTRAL
            ]

    def _confidence_at(self, i: int) -> float:
        if self._fixed_confidence is not None:
            return self._fixed_confidence
        return float(self._confidence[i])  # as SignalSeries.signal_at converts it

    def signal(self, i: int) -> Signal | None:
        if self._list is not None:
            return self._list[i]
        # Neutral and None have the same effect on the Engine; only build real signals.
        return self._series.signal_at(i) if self._codes[i] else None

    def decision(self, i: int) -> tuple[Side | None, float]:
        """(side, confidence) exactly as ``Engine.step_trusted`` derives them from ``signal(i)``."""
        if self._list is not None:
            s = self._list[i]
            if s is None or s.direction is Direction.NEUTRAL:
                return None, 0.0
            return (Side.LONG if s.direction is Direction.LONG else Side.SHORT), s.confidence
        code = self._codes[i]
        if not code:
            return None, 0.0
        return (Side.LONG if code > 0 else Side.SHORT), self._confidence_at(i)


def _check_signals(candles: Sequence[Candle], signals: Any, source: _Signals, start: int, end: int) -> None:
    if source._series is not None:
        if isinstance(signals, SimpleSignalSeries) and signals.candles is candles:
            return  # computed from this very sequence
        data = getattr(signals, "candle_data", None)
        if data is not None and data.lists is not None and data.lists.source is candles:
            return  # an analysis SignalSeries computed from this very sequence
        times = signals.open_time
        times = times if isinstance(times, list) else times.tolist()
        if signals.symbol != candles[0].symbol or times != list(map(attrgetter("open_time"), candles)):
            raise ValueError(f"the signal series ({signals.symbol}) was not computed from these candles")
        return
    for i in range(start, end):
        s = source.signal(i)
        if s is not None and (s.symbol != candles[i].symbol or s.open_time != candles[i].open_time):
            raise ValueError(
                f"signal {i} is for {s.symbol}@{s.open_time}, candle {i} is {candles[i].symbol}@{candles[i].open_time}"
            )


def _prepare(
    candles: Sequence[Candle], signals: Any, validated: bool
) -> tuple[list[float], list[float], list[float], list[int], npt.NDArray[np.float64] | None]:
    """Validate (unless the caller already did) and split the series into highs, lows, closes and
    close times, with the closes as an array too when the signal series has one.

    Columns a signal series read from this very sequence are reused (an analysis ``SignalSeries``
    keeps all of them, a ``SimpleSignalSeries`` its closes); the others are read with comprehensions,
    which CPython 3.12 runs faster than ``map(attrgetter(...))``. validate_candles' rules are checked
    column-wise with C-level ``map`` (a NaN fails every comparison); on any doubt validate_candles runs
    and names the bad row."""
    data = getattr(signals, "candle_data", None)
    lists: CandleLists | None = data.lists if data is not None else None
    close_array = data.close if data is not None and lists is not None and lists.source is candles else None
    if lists is not None and lists.source is not candles:
        lists = None
    if lists is None and len({c.symbol for c in candles}) != 1:
        # (with lists, the analysis' CandleArrays.from_candles checked that there is one symbol)
        first = candles[0].symbol
        bad = next(i for i, c in enumerate(candles) if c.symbol != first)
        raise ValueError(f"one symbol per backtest: row {bad + 1} is {candles[bad].symbol}, not {first}")
    intervals = {c.interval_ms for c in candles}
    if len(intervals) != 1:
        raise ValueError(f"one interval per backtest, got {sorted(intervals)}")
    step = intervals.pop()
    if lists is None:
        known = None
        if isinstance(signals, SimpleSignalSeries) and signals.candles is candles:
            known, close_array = signals.closes, signals.close_array
        lists = CandleLists(
            candles,
            [],  # open times, opens and volumes: not needed (close times come straight from the candles)
            [],
            [c.high for c in candles],
            [c.low for c in candles],
            known if known is not None else [c.close for c in candles],
            [],
        )
        close_times = [c.open_time + step for c in candles]
    else:
        # The analysis' int64 open times (converted exactly from these ints) + step: int arithmetic
        # either way, faster through numpy.
        close_times = (signals.open_time + step).tolist()
    if not validated and not _sound(candles, lists, close_times):
        validate_candles(candles)
    return lists.high, lists.low, lists.close, close_times, close_array


def _sound(candles: Sequence[Candle], lists: CandleLists, times: list[int]) -> bool:
    highs, lows, closes = lists.high, lists.low, lists.close
    opens = lists.open or list(map(attrgetter("open"), candles))
    volumes = lists.volume or list(map(attrgetter("volume"), candles))
    try:
        sound = (
            all(map(le, lows, opens))
            and all(map(le, opens, highs))
            and all(map(le, lows, closes))
            and all(map(le, closes, highs))
            and min(lows) > 0
            and max(highs) < math.inf
            and all(map(le, repeat(0.0), volumes))
            and max(volumes) < math.inf
            and all(map(lt, times, times[1:]))
        )
    except TypeError:
        sound = False
    return sound


def run_backtest(
    candles: Sequence[Candle],
    signals: Any,
    settings: EngineSettings,
    *,
    trade_from: int | None = None,
    trade_to: int | None = None,
    funding_series: dict[str, list[tuple[int, float]]] | None = None,
    skip_idle: bool = True,
    candles_validated: bool = False,
) -> BacktestResult:
    """Trade candles with ``trade_from <= open_time < trade_to`` (ms; None = unbounded).

    ``signals`` has one entry per candle (the whole series from the anchor).
    ``candles_validated=True`` skips re-checking candles that ``validate_candles`` (or
    ``core.datafiles.load_candles``) already passed; symbol and interval are always checked.
    """
    if len(signals) != len(candles):
        raise ValueError(f"{len(signals)} signals for {len(candles)} candles: need one per candle")
    if not candles:
        raise ValueError("no candles")
    highs, lows, closes, all_close_times, close_array = _prepare(candles, signals, candles_validated)
    step_ms = candles[0].interval_ms
    # Bisect on close times: open_time >= x  <=>  close_time >= x + interval (one interval per series).
    start = bisect.bisect_left(all_close_times, trade_from + step_ms) if trade_from is not None else 0
    end = bisect.bisect_left(all_close_times, trade_to + step_ms) if trade_to is not None else len(candles)
    if start >= end:
        raise ValueError("no candle to trade between trade_from and trade_to")
    source = _Signals(signals, settings)
    _check_signals(candles, signals, source, start, end)
    engine = Engine(settings, funding_series)
    trades: list[Trade] = []
    # The fast path records the equity as spans, drawn in numpy at the end; the reference marks
    # every candle with Engine.equity().
    spans = EquitySpans(start)
    record = spans.record  # (end, cash, quantity, entry, sign): see EquitySpans
    stepped_equity: list[float] = []
    in_position = 0
    rejected = 0
    actionable = source.actionable
    actionable_set = set(actionable)
    directional = source.directional
    columns = (highs, lows, closes)
    decision = source.decision
    step_into = engine.step_into
    fills: list[Fill] = []  # the Engine's fills of one step; the result keeps none
    positions = engine.positions
    orders = engine.orders
    pending = engine.pending_signals  # a decision waiting for the next open needs that candle stepped
    # The candle whose step may answer for a signal's entry: its own, or with fills at the next open,
    # the next one's.
    decided = 1 if settings.fill_price is FillPrice.NEXT_OPEN else 0
    symbol = candles[0].symbol
    i = start
    while i < end:
        if skip_idle and not positions and not orders and not pending:
            k = bisect.bisect_left(actionable, i)
            nxt = min(actionable[k] if k < len(actionable) else end, end)
            if nxt > i:
                engine.advance_idle(candles, i, nxt, closes)
                record((nxt, engine.cash, 0.0, 0.0, 0))
                i = nxt
                if i == end:
                    break
                # Candle i carries an actionable signal: step it without asking again.
        if skip_idle and len(positions) == 1 and not orders and not pending:
            # Holding: any long/short signal (even a weak one closes an opposite position), an
            # exit level or a funding instant needs a real step; the candles before it do not.
            k = bisect.bisect_left(directional, i)
            limit = min(directional[k] if k < len(directional) else end, end)
            span_end = engine.hold_through(candles, i, limit, columns, all_close_times) if limit > i else i
            if span_end > i:
                position = positions[symbol]
                record((span_end, engine.cash, position.quantity, position.entry_price, position.side.sign))
                in_position += span_end - i
                i = span_end
                if i == end:
                    break
                # Candle i has a signal, an exit level or a funding instant acting: step it
                # without asking again (asking would only find the span empty).
        if skip_idle:
            side, confidence = decision(i)
            # Closed trades go straight into ``trades``; no StepResult is built.
            rejection = step_into(candles[i], side, confidence, fills, trades)[1]
            fills.clear()
        else:
            result = engine.step(candles[i], source.signal(i))
            trades.extend(result.trades)
            rejection = result.rejection
        # Ignored signals (too weak, a short in spot) count as rejected entries nowhere, so
        # skipping them cannot change the count.
        if rejection is not None and i - decided in actionable_set:
            rejected += 1
        if positions:
            in_position += 1
        if not skip_idle:
            stepped_equity.append(engine.equity())
        elif positions:
            position = positions[symbol]
            record((i + 1, engine.cash, position.quantity, position.entry_price, position.side.sign))
        else:
            record((i + 1, engine.cash, 0.0, 0.0, 0))
        i += 1
    close_times = tuple(all_close_times[start:end])
    account = engine.account()
    balance = settings.starting_balance
    if skip_idle:
        curve = spans.curve(closes if close_array is None else close_array)
        times = np.fromiter(close_times, dtype=np.int64, count=len(close_times))
        equity: list[float] = curve.tolist()
        metrics = compute_metrics(
            trades,
            close_times,
            equity,
            balance,
            in_position,
            account.fees_paid,
            account.funding_paid,
            days=daily_returns(times, curve, balance),
            drawdown=max_drawdown(curve, balance),
        )
    else:
        equity = stepped_equity
        metrics = compute_metrics(
            trades, close_times, equity, balance, in_position, account.fees_paid, account.funding_paid
        )
    return BacktestResult(
        symbol=candles[0].symbol,
        settings=settings,
        trades=tuple(trades),
        close_times=close_times,
        equity=tuple(equity),
        candles_in_position=in_position,
        entries_rejected=rejected,
        final_state=engine.to_state(),
        metrics=metrics,
    )
