"""A backtest over several symbols sharing one account, stepped as a multi-symbol paper session steps.

One ``Engine`` takes every candle of the traded window through ``Engine.step`` in (open time,
symbol) order, all symbols' candles of one open time before any of the next, with the signal each
symbol's series gives that candle (built only for long/short candles: a neutral signal and none
act alike). Equity is recorded once per open time, after its last candle, so ``close_times`` and
``equity`` have one point per time slot; exposure is the share of slots ending with a position.

Signals come from each symbol's anchor (its first candle, as the caller cut it), exactly as in
``trading.backtest``; a symbol whose candles start later simply joins the account later.
``backtest_symbols`` picks the single-symbol fast path for one symbol, this one for several, so the
CLI and the web backtests decide the same way.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from trading.backtest import BacktestResult, run_backtest
from trading.candle import Candle, validate_candles
from trading.engine import Engine
from trading.metrics import compute_metrics
from trading.models import Trade
from trading.settings import EngineSettings, FillPrice, MarketType


@dataclass(frozen=True, slots=True)
class MultiBacktestResult:
    symbols: tuple[str, ...]
    settings: EngineSettings
    trades: tuple[Trade, ...]
    close_times: tuple[int, ...]  # one per time slot
    equity: tuple[float, ...]  # after each time slot
    candles_in_position: int  # time slots ending with a position open
    entries_rejected: int
    final_state: dict[str, Any]
    metrics: dict[str, float | int | None]


def _codes(series: Any) -> tuple[list[int], list[float] | None]:
    """Direction codes (+1, -1, 0) and confidences of a signal series (numpy arrays or lists)."""
    direction = series.direction
    codes = direction if isinstance(direction, list) else direction.tolist()
    codes = [int(c or 0) for c in codes]
    warmup = getattr(series, "warmup", 0)
    codes[:warmup] = [0] * min(warmup, len(codes))  # signal_at gives None during warm-up
    confidence = getattr(series, "confidence", None)
    if confidence is None:
        return codes, None
    return codes, confidence if isinstance(confidence, list) else confidence.tolist()


def run_multi_backtest(
    candles: Mapping[str, Sequence[Candle]],
    signals: Mapping[str, Any],
    settings: EngineSettings,
    *,
    trade_from: int | None = None,
    trade_to: int | None = None,
    funding_series: dict[str, list[tuple[int, float]]] | None = None,
    candles_validated: bool = False,
) -> MultiBacktestResult:
    """Trade every symbol's candles with ``trade_from <= open_time < trade_to`` (ms; None = unbounded).

    ``signals[symbol]`` is a lazy series (``trading.analysis.SignalSeries`` or a simple generator's)
    with one entry per candle of ``candles[symbol]``."""
    if not candles:
        raise ValueError("no symbol to backtest")
    intervals: dict[int, str] = {}
    steps: list[tuple[int, str, int]] = []
    decisions: dict[str, tuple[list[int], list[float] | None]] = {}
    for symbol in sorted(candles):
        series = candles[symbol]
        if not series:
            raise ValueError(f"{symbol}: no candles")
        if symbol not in signals or len(signals[symbol]) != len(series):
            have = len(signals[symbol]) if symbol in signals else 0
            raise ValueError(f"{symbol}: {have} signals for {len(series)} candles: need one per candle")
        if getattr(signals[symbol], "symbol", symbol) != symbol:
            raise ValueError(f"{symbol}: its signals were computed for {signals[symbol].symbol}")
        if not candles_validated:
            validate_candles(series)
        wrong = next((c for c in series if c.symbol != symbol), None)
        if wrong is not None:
            raise ValueError(f"{symbol}: a candle of {wrong.symbol} at {wrong.open_time} is among its candles")
        intervals.setdefault(series[0].interval_ms, symbol)
        if len({c.interval_ms for c in series}) != 1 or len(intervals) != 1:
            raise ValueError("one interval per backtest: the symbols' candles have different intervals")
        decisions[symbol] = _codes(signals[symbol])
        steps += [(c.open_time, symbol, i) for i, c in enumerate(series)
                  if (trade_from is None or c.open_time >= trade_from) and (trade_to is None or c.open_time < trade_to)]
    if not steps:
        raise ValueError("no candle to trade between trade_from and trade_to")
    steps.sort()
    step_ms = next(iter(intervals))
    spot = settings.market is MarketType.SPOT
    floor = settings.min_confidence
    engine = Engine(settings, funding_series)
    trades: list[Trade] = []
    close_times: list[int] = []
    equity: list[float] = []
    in_position = rejected = 0
    positions = engine.positions
    # The candle whose signal a step's rejection answers for: its own, or with fills at the next open, the
    # symbol's previous one.
    decided = 1 if settings.fill_price is FillPrice.NEXT_OPEN else 0
    for k, (open_time, symbol, i) in enumerate(steps):
        code = decisions[symbol][0][i]
        signal = signals[symbol].signal_at(i) if code else None
        result = engine.step(candles[symbol][i], signal)
        trades.extend(result.trades)
        j = i - decided
        acting = decisions[symbol][0][j] if j >= 0 else 0
        if result.rejection is not None and acting:
            # As trading.backtest counts: only signals that could enter (strong enough, not a spot short).
            confidences = decisions[symbol][1]
            confidence = 1.0 if confidences is None else float(confidences[j])
            if confidence >= floor and not (spot and acting < 0):
                rejected += 1
        if k + 1 == len(steps) or steps[k + 1][0] != open_time:
            close_times.append(open_time + step_ms)
            equity.append(engine.equity())
            if positions:
                in_position += 1
    account = engine.account()
    metrics = compute_metrics(trades, close_times, equity, settings.starting_balance, in_position,
                              account.fees_paid, account.funding_paid)
    return MultiBacktestResult(
        symbols=tuple(sorted(candles)), settings=settings, trades=tuple(trades), close_times=tuple(close_times),
        equity=tuple(equity), candles_in_position=in_position, entries_rejected=rejected,
        final_state=engine.to_state(), metrics=metrics,
    )


def backtest_symbols(
    candles: Mapping[str, Sequence[Candle]],
    signals: Mapping[str, Any],
    settings: EngineSettings,
    *,
    trade_from: int | None = None,
    trade_to: int | None = None,
    candles_validated: bool = False,
) -> BacktestResult | MultiBacktestResult:
    """One symbol: ``trading.backtest.run_backtest`` (the fast path); several: ``run_multi_backtest``.
    Exchange filters apply when the settings hold them for every symbol traded (a session's, backtested on
    its own symbols); filters of other symbols are left out rather than refusing the run."""
    listed = {spec.symbol for spec in settings.symbols}
    if listed:
        covered = set(candles) <= listed
        settings = replace(settings, symbols=tuple(s for s in settings.symbols if covered and s.symbol in candles))
    if len(candles) == 1:
        (symbol, series), = candles.items()
        return run_backtest(series, signals[symbol], settings, trade_from=trade_from, trade_to=trade_to,
                            candles_validated=candles_validated)
    return run_multi_backtest(candles, signals, settings, trade_from=trade_from, trade_to=trade_to,
                              candles_validated=candles_validated)


def symbols_of(result: BacktestResult | MultiBacktestResult) -> tuple[str, ...]:
    return result.symbols if isinstance(result, MultiBacktestResult) else (result.symbol,)
