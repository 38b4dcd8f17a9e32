"""Each of the seven risk checks: its formula, its numbers and its reason, alone and in the Engine."""

from __future__ import annotations

from dataclasses import replace

import pytest

from trading import Engine
from trading.candle import Candle
from trading.models import Position, Side
from trading.risk import (
    EntryCandidate,
    RiskContext,
    assess_entry,
    check_consecutive_losses,
    check_cooldown,
    check_correlation,
    check_daily_loss,
    check_portfolio_risk,
    check_risk_per_trade,
    check_stop_loss,
    loss_at_stop,
    size_for_risk,
)
from trading.settings import EngineSettings, FillPrice, RiskSettings
from trading.signals import Direction, Signal

RISK = RiskSettings()
HOUR = 3_600_000


def _candidate(**changes: object) -> EntryCandidate:
    base = EntryCandidate("BTCUSDT", Side.LONG, 100.0, 10.0, 98.0, 50.0, 0.0, 0.0)
    return replace(base, **changes)


def _context(**changes: object) -> RiskContext:
    base = RiskContext(0, 10_000.0, 10_000.0, (), 0, None, {})
    return replace(base, **changes)


def _position(symbol: str, side: Side, quantity: float, entry: float, stop: float) -> Position:
    return Position(1, symbol, side, quantity, entry, 0, 1, quantity * entry, 0.0, stop, None, None, entry, 0.0)


def test_risk_per_trade_sizes_to_one_percent_including_fees() -> None:
    quantity = size_for_risk(10_000.0, 1.0, Side.LONG, 100.0, 98.0, 0.001)
    assert loss_at_stop(Side.LONG, quantity, 100.0, 98.0, 0.001) == pytest.approx(100.0)
    ok = check_risk_per_trade(_candidate(quantity=50.0), _context(), RISK)
    assert ok.passed and ok.values["loss_at_stop"] == 100.0 and ok.values["limit"] == 100.0
    too_big = check_risk_per_trade(_candidate(quantity=51.0), _context(), RISK)
    assert not too_big.passed and "loss at stop 102 > 1.0% of equity (100)" in too_big.reason
    tiny = check_risk_per_trade(_candidate(quantity=0.01, min_notional=5.0), _context(), RISK)
    assert not tiny.passed and "below the minimum" in tiny.reason


def test_stop_loss_must_exist_be_close_and_lie_before_liquidation() -> None:
    assert not check_stop_loss(_candidate(stop_loss=None), _context(), RISK).passed
    far = check_stop_loss(_candidate(stop_loss=94.0), _context(), RISK)
    assert not far.passed and far.values["distance_pct"] == pytest.approx(6.0)
    inside = check_stop_loss(_candidate(liquidation_price=98.5), _context(), RISK)
    assert not inside.passed and "lies inside the stop" in inside.reason
    wrong = check_stop_loss(_candidate(stop_loss=101.0), _context(), RISK)
    assert not wrong.passed and "losing side" in wrong.reason
    assert check_stop_loss(
        _candidate(side=Side.SHORT, stop_loss=102.0, liquidation_price=110.0), _context(), RISK
    ).passed


def test_portfolio_risk_adds_the_loss_at_every_open_stop() -> None:
    open_positions = (
        _position("ETHUSDT", Side.LONG, 10, 100, 90),
        _position("XRPUSDT", Side.SHORT, 5, 100, 115),
    )
    result = check_portfolio_risk(_candidate(), _context(positions=open_positions), RISK, 0.0)
    assert result.values == {"open_risk": 175.0, "new_risk": 20.0, "total": 195.0, "limit": 1000.0}
    assert result.passed
    crowded = open_positions + (_position("ADAUSDT", Side.LONG, 100, 100, 91),)
    assert not check_portfolio_risk(_candidate(), _context(positions=crowded), RISK, 0.0).passed


def test_daily_loss_counts_from_the_days_start_equity() -> None:
    assert check_daily_loss(_context(equity=9_701.0), RISK).passed
    blocked = check_daily_loss(_context(equity=9_700.0), RISK)
    assert not blocked.passed and blocked.values["loss_today"] == 300.0 and blocked.values["limit"] == 300.0


def test_consecutive_losses_and_cooldown() -> None:
    assert check_consecutive_losses(_context(consecutive_losses=2), RISK).passed
    assert not check_consecutive_losses(_context(consecutive_losses=3), RISK).passed
    running = check_cooldown(_context(now=HOUR - 1, streak_tripped_at=0), RISK)
    assert not running.passed and running.values["ends_at"] == HOUR
    assert check_cooldown(_context(now=HOUR, streak_tripped_at=0), RISK).passed


def test_correlation_with_same_direction_positions_only() -> None:
    up = [100 * 1.01**i + (i % 3) for i in range(60)]
    alike = [2 * x for x in up]
    opposite = [300 - x for x in up]
    closes = {"BTCUSDT": up, "ETHUSDT": alike, "XRPUSDT": opposite}
    long_eth = (_position("ETHUSDT", Side.LONG, 1, 100, 95),)
    high = check_correlation(_candidate(), _context(positions=long_eth, closes=closes), RISK)
    assert not high.passed and high.values["correlation_ETHUSDT"] == pytest.approx(1.0)
    short_eth = (_position("ETHUSDT", Side.SHORT, 1, 100, 105),)
    assert check_correlation(_candidate(), _context(positions=short_eth, closes=closes), RISK).passed
    long_xrp = (_position("XRPUSDT", Side.LONG, 1, 100, 95),)
    assert check_correlation(_candidate(), _context(positions=long_xrp, closes=closes), RISK).passed
    short_history = {k: v[:10] for k, v in closes.items()}
    few = check_correlation(_candidate(), _context(positions=long_eth, closes=short_history), RISK)
    assert few.passed and "not assessed" in few.reason


def test_disabled_checks_report_but_never_block() -> None:
    only_daily = RiskSettings(enabled=("daily_loss",))
    results = assess_entry(_candidate(stop_loss=None, quantity=1e6), _context(), only_daily)
    assert all(r.passed for r in results)
    assert [r.enabled for r in results] == [False, False, False, True, False, False, False]


def test_engine_stops_entering_after_three_losses_for_sixty_minutes() -> None:
    settings = EngineSettings(taker_fee=0.0, stop_loss_pct=1.0, take_profit_pct=None, fill_price=FillPrice.CLOSE)
    settings = settings.with_risk(enabled=("risk_per_trade", "stop_loss", "consecutive_losses", "cooldown"))
    engine = Engine(settings)
    minute = 60_000

    def candle(i: int, low: float = 100.0) -> Candle:
        return Candle(i * 10 * minute, 100.0, 100.0, low, 100.0, 1.0, 10 * minute, "BTCUSDT")

    def long(c: Candle) -> Signal:
        return Signal("BTCUSDT", c.open_time, Direction.LONG, 1.0, "test")

    i = 0
    for _ in range(3):  # enter, then stop out on the next candle
        c = candle(i)
        assert engine.step(c, long(c)).fills
        assert engine.step(candle(i + 1, low=98.0)).trades
        i += 2
    tripped_at = candle(i - 1).close_time
    assert engine.consecutive_losses == 3 and engine.streak_tripped_at == tripped_at
    c = candle(i)
    result = engine.step(c, long(c))
    assert not result.fills and "consecutive_losses" in (result.rejection or "")
    while candle(i).close_time < tripped_at + 60 * minute:
        i += 1
    c = candle(i)
    result = engine.step(c, long(c))
    assert result.fills and engine.consecutive_losses == 0
