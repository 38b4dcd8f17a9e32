"""The backtester's fast paths agree exactly with the reference ones they replace.

``Engine.step_side`` / ``step_into`` (no Signal objects, no StepResult), ``Engine.hold_through``
(a holding span in one call), the chain-wise numpy averages of ``sma_cross`` and their re-sums, the numpy metrics of
the equity curve, ``advance_idle`` over
an index range and the covered-long shortcut of ``margin.liquidation_price``.
"""

from __future__ import annotations

import json
import random
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from core.datafiles import load_candles
from trading import margin, metrics
from trading.candle import DAY_MS, Candle
from trading.engine import Engine
from trading.equity_curve import daily_returns as curve_returns
from trading.equity_curve import max_drawdown as curve_drawdown
from trading.models import Side
from trading.settings import EngineSettings, FillPrice, FundingMode, PositionSizing, RiskSettings
from trading.signals import Direction, Signal
from trading.simple_signals import _neumaier_is_python_sum, _neumaier_rows, sma, sma_cross

REPO = Path(__file__).resolve().parents[2]
BTC_5M = REPO / "data" / "candles" / "BTCUSDT-5m-2023-01.csv.gz"
MINUTE = 60_000
HOUR = 60 * MINUTE


def _state(engine: Engine) -> str:
    return json.dumps(engine.to_state(), sort_keys=True)


def _reference_codes(closes: list[float], fast: int, slow: int) -> list[int | None]:
    """sma_cross's definition, written from the two ``sma`` lists."""
    f, s = sma(closes, fast), sma(closes, slow)
    codes: list[int | None] = [None] * min(slow, len(closes))
    for i in range(slow, len(closes)):
        if f[i - 1] < s[i - 1] and f[i] > s[i]:  # type: ignore[operator]
            codes.append(1)
        elif f[i - 1] > s[i - 1] and f[i] < s[i]:  # type: ignore[operator]
            codes.append(-1)
        else:
            codes.append(0)
    return codes


def test_sma_cross_codes_equal_the_two_averages_compared() -> None:
    rng = random.Random(11)
    crosses = 0
    for _ in range(400):
        n = rng.randint(0, 150)
        fast = rng.randint(1, 12)
        slow = rng.randint(fast + 1, 35)
        # Few distinct prices make ties between the averages, where < and > both fail.
        closes = [rng.choice((rng.uniform(1, 2), float(rng.randint(1, 3)), 0.1 * rng.randint(1, 30))) for _ in range(n)]
        candles = [Candle(i * MINUTE, x, x, x, x, 1.0, MINUTE, "X") for i, x in enumerate(closes)]
        codes = sma_cross(candles, fast, slow).direction
        assert codes == _reference_codes(closes, fast, slow)
        crosses += sum(1 for c in codes if c)
    assert crosses > 100, "the random series must cross for this test to mean anything"
    candles = load_candles(BTC_5M)
    assert sma_cross(candles).direction == _reference_codes([c.close for c in candles], 10, 30)


def test_numpy_row_sums_are_pythons_sum_bit_for_bit() -> None:
    """sma_cross's re-sums in numpy against the builtin ``sum`` of each row: values that need the
    compensation (cancelling huge and tiny terms), overflow to inf, signed zeros, ties."""
    rng = np.random.default_rng(7)
    assert _neumaier_is_python_sum()
    for length in (1, 2, 3, 10, 30, 61):
        for values in (
            rng.uniform(1, 2, 3000 * length),
            rng.lognormal(5, 4, 3000 * length),
            rng.choice([1e16, -1e16, 1.0, 3.0, 0.1, -0.0, 1e-300, 1e308, -1e308], 3000 * length),
            rng.standard_normal(3000 * length) * 10.0 ** rng.integers(-20, 20, 3000 * length),
        ):
            rows = values.reshape(-1, length)
            got = _neumaier_rows(rows)
            want = np.array([sum(row) for row in rows.tolist()])
            assert np.array_equal(got.view(np.int64), want.view(np.int64)), length


@pytest.mark.parametrize(
    "settings",
    [
        EngineSettings(),
        EngineSettings(trailing_stop_pct=1.0, slippage_bps=2.0, min_confidence=0.5),
        EngineSettings(
            leverage=1,
            stop_loss_pct=None,
            take_profit_pct=None,
            position_sizing=PositionSizing.FIXED_QUANTITY,
            fixed_quantity=0.01,
            funding_mode=FundingMode.OFF,
            risk=RiskSettings(enabled=()),
        ),
    ],
    ids=["default", "trailing", "fixed-1x"],
)
@pytest.mark.parametrize("fill_price", [FillPrice.NEXT_OPEN, FillPrice.CLOSE])
def test_step_side_and_step_into_give_what_step_gives(settings: EngineSettings, fill_price: FillPrice) -> None:
    settings = replace(settings, fill_price=fill_price)
    candles = load_candles(BTC_5M)[:4000]
    series = sma_cross(candles, 3, 7)
    reference, by_side, into = Engine(settings), Engine(settings), Engine(settings)
    collected_trades: list = []
    rejections = 0
    for i, candle in enumerate(candles):
        signal = series.signal_at(i)
        side: Side | None = None
        if signal is not None and signal.direction is not Direction.NEUTRAL:
            # Confidence 0.3 on some candles exercises min_confidence on both paths alike.
            signal = replace(signal, confidence=0.3 if i % 3 == 0 else 1.0)
            side = Side.LONG if signal.direction is Direction.LONG else Side.SHORT
        confidence = signal.confidence if side is not None and signal is not None else 0.0
        expected = reference.step(candle, signal)
        assert repr(by_side.step_side(candle, side, confidence)) == repr(expected)
        fills: list = []
        verdicts, rejection = into.step_into(candle, side, confidence, fills, collected_trades)
        assert (tuple(fills), verdicts, rejection) == (expected.fills, expected.risk, expected.rejection)
        rejections += rejection is not None
    # At the next open, a signal that cannot act (already in that direction) is not kept: no rejection.
    assert (rejections > 0 or fill_price is FillPrice.NEXT_OPEN) and len(collected_trades) > 50
    assert _state(by_side) == _state(reference) == _state(into)


def _hold_settings() -> list[EngineSettings]:
    plain = EngineSettings(
        leverage=1,
        starting_balance=1e7,
        stop_loss_pct=None,
        take_profit_pct=None,
        position_sizing=PositionSizing.FIXED_QUANTITY,
        fixed_quantity=1.0,
        funding_mode=FundingMode.OFF,
        risk=RiskSettings(enabled=()),
    )
    return [
        EngineSettings(stop_loss_pct=0.5, take_profit_pct=0.8),
        EngineSettings(stop_loss_pct=0.5, take_profit_pct=0.8, funding_mode=FundingMode.OFF),
        EngineSettings(stop_loss_pct=0.5, take_profit_pct=None, trailing_stop_pct=0.4),
        replace(plain, funding_mode=FundingMode.CONSTANT),  # never exits; funding acts
        replace(plain, leverage=50, funding_mode=FundingMode.CONSTANT),
    ]


@pytest.mark.parametrize(
    "settings", _hold_settings(), ids=["levels", "levels-no-funding", "trailing", "covered-1x", "50x-funding"]
)
@pytest.mark.parametrize("direction", [Direction.LONG, Direction.SHORT])
def test_hold_through_equals_stepping_each_candle(settings: EngineSettings, direction: Direction) -> None:
    """Enter on every directional candle while flat (always in ``direction``), then let the position
    run: ``hold_through`` on one engine, ``step`` on every candle on the other."""
    candles = load_candles(REPO / "data" / "candles" / "BTCUSD-1h-2017-2019-coinbase.csv.gz")[:3000]
    columns = ([c.high for c in candles], [c.low for c in candles], [c.close for c in candles])
    close_times = [c.close_time for c in candles]
    codes = sma_cross(candles, 5, 20).direction
    side = Side.LONG if direction is Direction.LONG else Side.SHORT
    fast, stepped = Engine(settings), Engine(settings)
    spans = acted = 0
    i = 0
    while i < len(candles):
        cap = min(i + 40, len(candles))
        if fast.positions:
            end = fast.hold_through(candles, i, cap, columns, close_times)
            for k in range(i, end):
                assert not stepped.step(candles[k]).fills  # nothing acts inside a span
            spans += end > i
            if end < cap:  # the first candle on which an exit level or funding acts
                funding_before = stepped.funding_paid
                result = stepped.step(candles[end])
                assert result.fills or stepped.funding_paid != funding_before
                acted += 1
                fast.step_side(candles[end], None, 0.0)
                end += 1
            assert _state(fast) == _state(stepped)
            i = end
            continue
        candle = candles[i]
        if codes[i]:
            signal = Signal(candle.symbol, candle.open_time, direction, 1.0, "test")
            stepped.step(candle, signal)
            fast.step_side(candle, side, 1.0)
        else:
            stepped.step(candle)
            fast.step_side(candle, None, 0.0)
        i += 1
    assert spans > 15 and acted > 5
    assert _state(fast) == _state(stepped)


def test_advance_idle_over_a_range_equals_the_list_form() -> None:
    candles = load_candles(BTC_5M)[:500]
    closes = [c.close for c in candles]
    whole, ranged, stepped = Engine(EngineSettings()), Engine(EngineSettings()), Engine(EngineSettings())
    for start, end in ((0, 7), (7, 250), (250, 500)):
        whole.advance_idle(candles[start:end])
        ranged.advance_idle(candles, start, end, closes)
        for candle in candles[start:end]:
            stepped.step(candle)
        assert _state(whole) == _state(ranged) == _state(stepped)


def _reference_liquidation(
    brackets: tuple[margin.MarginBracket, ...], side: Side, quantity: float, entry: float, wallet: float
) -> float:
    """margin.liquidation_price without its shortcut: the bracket loop of the module docstring."""
    s = side.sign
    fallback = 0.0
    for bracket in brackets:
        denominator = quantity * bracket.maintenance_rate - s * quantity
        price = (wallet + bracket.maintenance_amount - s * quantity * entry) / denominator
        if price <= 0:
            continue
        if bracket.floor <= quantity * price < bracket.cap:
            return price
        if not fallback:
            fallback = price
    return max(fallback, 0.0)


def test_covered_long_shortcut_gives_the_bracket_loops_answer() -> None:
    rng = random.Random(5)
    steep = margin.build_brackets([(0, 10, 0.3), (1_000, 2, 0.9)])  # a rate > 0.5: no shortcut
    assert not margin._covered_long_never_liquidates(steep)
    assert margin._covered_long_never_liquidates(margin.BTCUSDT_BRACKETS)
    for _ in range(20_000):
        quantity = rng.choice((rng.uniform(1e-6, 1e3), 0.25, 2.0**-20 * rng.randint(1, 10**6)))
        entry = rng.lognormvariate(5, 4)
        leverage = rng.choice((1, 1, 2, 20, 125))
        wallet = quantity * entry / leverage * rng.choice((1.0, 1.0, 1 - 1e-12, 1 + 1e-12, rng.uniform(0.5, 2)))
        for brackets in (margin.BTCUSDT_BRACKETS, margin.DEFAULT_BRACKETS, steep):
            for side in (Side.LONG, Side.SHORT):
                got = margin.liquidation_price(brackets, side, quantity, entry, wallet)
                assert repr(got) == repr(_reference_liquidation(brackets, side, quantity, entry, wallet))


def test_equity_curve_metrics_equal_the_pure_python_ones() -> None:
    """The backtester's numpy daily returns and drawdown against trading.metrics' loops, on curves
    that go through zero and below (a non-positive peak or previous day) and close times with gaps
    and closes exactly at midnight."""
    rng = random.Random(23)
    for _ in range(300):
        n = rng.randint(0, 400)
        times, t = [], rng.choice((0, DAY_MS - HOUR, 5 * DAY_MS))
        for _ in range(n):
            t += rng.choice((HOUR, HOUR, 5 * MINUTE, DAY_MS, 3 * DAY_MS + HOUR))
            times.append(t)
        balance = rng.choice((10_000.0, 1.0, 0.0))
        equity = [rng.choice((rng.uniform(-5, 20_000), 0.0, balance, rng.uniform(9_000, 11_000))) for _ in range(n)]
        array = np.array(equity)
        stamps = np.array(times, dtype=np.int64)
        assert repr(curve_returns(stamps, array, balance)) == repr(metrics.daily_returns(times, equity, balance))
        assert repr(curve_drawdown(array, balance)) == repr(metrics.max_drawdown(equity, balance))
