"""Hypothesis properties of the Engine's accounting on random markets, signals and settings."""

from __future__ import annotations

import math

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from trading import Engine
from trading.candle import Candle
from trading.funding import FUNDING_INTERVAL_MS, boundaries_in
from trading.margin import BTCUSDT_BRACKETS, liquidation_price, max_leverage_for
from trading.models import Side
from trading.settings import EngineSettings, FundingMode, PositionSizing, RiskSettings
from trading.signals import Direction, Signal

STEP = 20 * 60_000  # 20-minute candles: some cross the 8-hour grid, most do not


@st.composite
def markets(draw: st.DrawFn) -> list[tuple[Candle, Signal | None]]:
    n = draw(st.integers(5, 120))
    price = draw(st.floats(10, 50_000))
    start = draw(st.integers(0, 500)) * STEP
    moves = draw(st.lists(st.floats(-0.08, 0.08), min_size=n, max_size=n))
    wicks = draw(st.lists(st.tuples(st.floats(0, 0.05), st.floats(0, 0.05)), min_size=n, max_size=n))
    kinds = draw(st.lists(st.sampled_from([None, None, "long", "short", "neutral"]), min_size=n, max_size=n))
    out = []
    for i in range(n):
        open_ = price
        close = max(price * (1 + moves[i]), 1e-3)
        high = max(open_, close) * (1 + wicks[i][0])
        low = min(open_, close) * (1 - wicks[i][1])
        candle = Candle(start + i * STEP, open_, high, low, close, 1.0, STEP, "BTCUSDT")
        signal = None if kinds[i] is None else Signal("BTCUSDT", candle.open_time, Direction(kinds[i]), 1.0, "h")
        out.append((candle, signal))
        price = close
    return out


@st.composite
def engine_settings(draw: st.DrawFn) -> EngineSettings:
    risk_on = draw(st.booleans())
    stop = draw(st.one_of(st.none(), st.floats(0.2, 5.0))) if not risk_on else draw(st.floats(0.2, 5.0))
    return EngineSettings(
        leverage=draw(st.integers(1, 125)),
        starting_balance=draw(st.floats(100, 1_000_000)),
        taker_fee=draw(st.floats(0, 0.002)),
        maker_fee=draw(st.floats(0, 0.001)),
        slippage_bps=draw(st.floats(0, 20)),
        stop_loss_pct=stop,
        take_profit_pct=draw(st.one_of(st.none(), st.floats(0.2, 20))),
        trailing_stop_pct=draw(st.one_of(st.none(), st.floats(0.2, 10))),
        position_sizing=PositionSizing.RISK if risk_on else PositionSizing.FIXED_NOTIONAL,
        fixed_notional=draw(st.floats(10, 10_000)),
        funding_mode=FundingMode.CONSTANT,
        funding_rate=draw(st.floats(-0.003, 0.003)),
        partial_fill_min_ratio=draw(st.sampled_from([1.0, 0.5])),
        seed=draw(st.integers(0, 1000)),
        risk=RiskSettings() if risk_on else RiskSettings(enabled=()),
    )


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(market=markets(), config=engine_settings())
def test_accounting_invariants(market: list[tuple[Candle, Signal | None]], config: EngineSettings) -> None:
    engine = Engine(config)
    trades = []
    for candle, signal in market:
        funding_before = engine.funding_paid
        result = engine.step(candle, signal)
        trades.extend(result.trades)
        open_positions = list(engine.positions.values())
        # equity = cash + unrealised PnL at the last close
        unrealised = sum(p.unrealised(engine.last_close[p.symbol]) for p in open_positions)
        assert engine.equity() == pytest.approx(engine.cash + unrealised, rel=1e-12, abs=1e-9)
        # fees and funding are conserved: every charge sits in a closed trade or an open position
        fees = math.fsum([t.entry_fee + t.exit_fee for t in trades] + [p.entry_fee for p in open_positions])
        funding = math.fsum([t.funding for t in trades] + [p.funding for p in open_positions])
        assert engine.fees_paid == pytest.approx(fees, rel=1e-9, abs=1e-9)
        assert engine.funding_paid == pytest.approx(funding, rel=1e-9, abs=1e-9)
        # cash is the starting balance plus what closed and open trades booked
        booked = math.fsum([t.net_pnl for t in trades] + [-p.entry_fee - p.funding for p in open_positions])
        assert engine.cash == pytest.approx(config.starting_balance + booked, rel=1e-9, abs=1e-6)
        # no negative balance short of liquidation (isolated margin caps every loss)
        assert engine.cash >= -1e-9 * config.starting_balance
        # funding only on the 8-hour grid
        if engine.funding_paid != funding_before:
            assert list(boundaries_in(candle.open_time, candle.close_time))
            assert all(b % FUNDING_INTERVAL_MS == 0 for b in boundaries_in(candle.open_time, candle.close_time))
        # no entry whose liquidation price lies inside its stop. Funding charged later on the same
        # candle (an entry at the open, a funding instant inside the candle) moves liquidation
        # after the entry, as it may on any later candle: the entry is judged before any funding.
        for fill in result.fills:
            if fill.opens and fill.symbol in engine.positions:
                p = engine.positions[fill.symbol]
                if p.stop_loss is not None and p.liquidation_price > 0 and p.funding == 0:
                    assert (
                        (p.liquidation_price < p.stop_loss)
                        if p.side is Side.LONG
                        else (p.liquidation_price > p.stop_loss)
                    )


@settings(max_examples=200, deadline=None)
@given(
    price=st.floats(0.0001, 1e6),
    quantity=st.floats(0.001, 100),
    leverage=st.integers(1, 125),
    side=st.sampled_from(["long", "short"]),
)
def test_round_trip_at_the_same_price_without_fees_is_flat(
    price: float, quantity: float, leverage: int, side: str
) -> None:
    assume(leverage <= max_leverage_for(BTCUSDT_BRACKETS, price * quantity))
    config = EngineSettings(
        leverage=leverage,
        starting_balance=price * quantity * 2,
        taker_fee=0.0,
        maker_fee=0.0,
        stop_loss_pct=None,
        take_profit_pct=None,
        position_sizing=PositionSizing.FIXED_QUANTITY,
        fixed_quantity=1.0,
        funding_mode=FundingMode.OFF,
        risk=RiskSettings(enabled=()),
    )
    engine = Engine(config)
    _, opened = engine.place_order("BTCUSDT", side, "market", quantity, price=price, time=0)
    trade = engine.close_trade(engine.positions["BTCUSDT"].trade_id, price, 0)
    assert trade.gross_pnl == 0.0 and trade.net_pnl == 0.0
    assert engine.cash == config.starting_balance


@settings(max_examples=200, deadline=None)
@given(
    quantity=st.floats(0.001, 50),
    entry=st.floats(1_000, 100_000),
    leverage=st.integers(2, 125),
    side=st.sampled_from([Side.LONG, Side.SHORT]),
)
def test_liquidation_price_leaves_exactly_the_maintenance_margin(
    quantity: float, entry: float, leverage: int, side: Side
) -> None:
    assume(leverage <= max_leverage_for(BTCUSDT_BRACKETS, quantity * entry))
    margin = quantity * entry / leverage
    price = liquidation_price(BTCUSDT_BRACKETS, side, quantity, entry, margin)
    assert price > 0
    assert (price < entry) if side is Side.LONG else (price > entry)
    left = margin + side.sign * quantity * (price - entry)
    notional = quantity * price
    bracket = next(b for b in BTCUSDT_BRACKETS if b.floor <= notional < b.cap)
    assert left == pytest.approx(notional * bracket.maintenance_rate - bracket.maintenance_amount, rel=1e-6, abs=1e-6)
