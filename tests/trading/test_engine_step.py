"""Engine.step semantics: fills at close, intrabar rule, trailing stop, funding grid, validation."""

from __future__ import annotations

from dataclasses import replace

import pytest

from trading import Engine, OrderError
from trading.candle import BadCandleError, Candle
from trading.models import CloseReason, Side
from trading.settings import EngineSettings, FillPrice, FundingMode, MarketType
from trading.signals import Direction, Signal

HOUR = 3_600_000


def make_candle(i: int, o: float, h: float, lo: float, c: float, symbol: str = "BTCUSDT") -> Candle:
    return Candle(i * HOUR, o, h, lo, c, 1.0, HOUR, symbol)


def _signal(candle: Candle, direction: Direction, confidence: float = 1.0) -> Signal:
    return Signal(candle.symbol, candle.open_time, direction, confidence, "test")


def _enter(engine: Engine, direction: Direction, price: float = 100.0, i: int = 0) -> Candle:
    candle = make_candle(i, price, price, price, price)
    result = engine.step(candle, _signal(candle, direction))
    assert result.fills and result.fills[0].price == price
    return candle


def test_signal_fills_at_close_and_opposite_signal_reverses(engine_plain_settings: EngineSettings) -> None:
    engine = Engine(engine_plain_settings)
    candle = make_candle(0, 100, 110, 90, 105)
    result = engine.step(candle, _signal(candle, Direction.LONG))
    assert result.fills[0].price == 105 and result.fills[0].time == candle.close_time
    candle = make_candle(1, 105, 120, 100, 115)
    result = engine.step(candle, _signal(candle, Direction.SHORT))
    (trade,) = result.trades
    assert trade.close_reason is CloseReason.SIGNAL and trade.gross_pnl == 10.0
    assert engine.positions["BTCUSDT"].side is Side.SHORT
    assert engine.cash == 100_010.0


def test_both_stop_and_take_profit_inside_one_candle_takes_the_stop(
    engine_plain_settings: EngineSettings,
) -> None:
    engine = Engine(replace(engine_plain_settings, stop_loss_pct=2.0, take_profit_pct=2.0))
    _enter(engine, Direction.LONG)
    result = engine.step(make_candle(1, 100, 103, 97, 100))
    (trade,) = result.trades
    assert trade.close_reason is CloseReason.STOP_LOSS and trade.exit_price == 98.0


def test_gap_through_the_stop_fills_at_the_open(engine_plain_settings: EngineSettings) -> None:
    engine = Engine(replace(engine_plain_settings, stop_loss_pct=2.0, take_profit_pct=5.0))
    _enter(engine, Direction.LONG)
    (trade,) = engine.step(make_candle(1, 95, 96, 94, 95)).trades
    assert trade.exit_price == 95 and trade.close_reason is CloseReason.STOP_LOSS
    _enter(engine, Direction.SHORT, i=2)
    (trade,) = engine.step(make_candle(3, 90, 91, 89, 90)).trades
    assert trade.exit_price == 90 and trade.close_reason is CloseReason.TAKE_PROFIT


def test_trailing_stop_follows_the_high_of_previous_candles(engine_plain_settings: EngineSettings) -> None:
    engine = Engine(replace(engine_plain_settings, trailing_stop_pct=10.0))
    _enter(engine, Direction.LONG)
    # The candle's own high (200) must not raise the trail before its low (95) is checked.
    assert not engine.step(make_candle(1, 100, 200, 95, 190)).trades
    (trade,) = engine.step(make_candle(2, 190, 191, 170, 175)).trades
    assert trade.close_reason is CloseReason.TRAILING_STOP and trade.exit_price == pytest.approx(180.0)
    assert trade.max_favorable == pytest.approx(100.0) and trade.max_adverse == pytest.approx(-5.0)


def test_liquidation_loses_the_isolated_margin(engine_plain_settings: EngineSettings) -> None:
    engine = Engine(replace(engine_plain_settings, leverage=10))
    _enter(engine, Direction.LONG)
    position = engine.positions["BTCUSDT"]
    assert position.margin == 10.0
    (trade,) = engine.step(make_candle(1, 100, 100, 80, 85)).trades
    assert trade.close_reason is CloseReason.LIQUIDATION
    assert trade.exit_price == position.liquidation_price and trade.gross_pnl == -10.0
    assert engine.cash == 100_000.0 - 10.0


def test_funding_charged_only_when_the_candle_crosses_the_8h_grid(
    engine_plain_settings: EngineSettings,
) -> None:
    settings = replace(engine_plain_settings, funding_mode=FundingMode.CONSTANT, funding_rate=0.001)
    engine = Engine(settings)
    _enter(engine, Direction.LONG, i=0)  # closes 01:00
    for i in range(1, 7):  # closes 02:00 .. 07:00: no grid instant
        engine.step(make_candle(i, 100, 100, 100, 100))
    assert engine.funding_paid == 0.0
    engine.step(make_candle(7, 100, 100, 100, 100))  # closes 08:00
    assert engine.funding_paid == pytest.approx(0.1)
    assert engine.positions["BTCUSDT"].funding == pytest.approx(0.1)


def test_funding_series_timestamps_round_down_and_shorts_receive(
    engine_plain_settings: EngineSettings,
) -> None:
    settings = replace(engine_plain_settings, funding_mode=FundingMode.SERIES, funding_rate=0.0)
    eight = 8 * HOUR
    engine = Engine(settings, {"BTCUSDT": [(eight + 17, 0.002), (2 * eight + 7, -0.001)]})
    _enter(engine, Direction.SHORT, i=6)  # closes 07:00
    engine.step(make_candle(7, 100, 100, 100, 100))  # 08:00: short receives 0.002 * 100
    assert engine.funding_paid == pytest.approx(-0.2)
    for i in range(8, 16):
        engine.step(make_candle(i, 100, 100, 100, 100))  # 16:00: rate -0.001, short pays 0.1
    assert engine.funding_paid == pytest.approx(-0.1)


def test_spot_mode_never_shorts_and_charges_no_funding(engine_plain_settings: EngineSettings) -> None:
    settings = replace(engine_plain_settings, market=MarketType.SPOT, funding_mode=FundingMode.CONSTANT)
    engine = Engine(settings)
    candle = make_candle(0, 100, 100, 100, 100)
    result = engine.step(candle, _signal(candle, Direction.SHORT))
    assert result.rejection == "spot trading cannot open a short" and not engine.positions
    _enter(engine, Direction.LONG, i=1)
    for i in range(2, 12):
        engine.step(make_candle(i, 100, 100, 100, 100))
    assert engine.funding_paid == 0.0 and engine.positions["BTCUSDT"].liquidation_price == 0.0


def test_bad_input_is_refused_with_a_clear_error(engine_plain_settings: EngineSettings) -> None:
    engine = Engine(replace(engine_plain_settings, symbols=()))
    engine.step(make_candle(5, 100, 100, 100, 100))
    with pytest.raises(BadCandleError, match="not after the last"):
        engine.step(make_candle(5, 100, 100, 100, 100))
    with pytest.raises(BadCandleError, match="high 90 is below low 100"):
        engine.step(make_candle(6, 100, 90, 100, 95))
    with pytest.raises(BadCandleError, match="close is nan"):
        engine.step(make_candle(6, 100, 100, 100, float("nan")))
    with pytest.raises(BadCandleError, match="must be positive"):
        engine.step(make_candle(6, 0.0, 100, 0.0, 50))
    candle = make_candle(6, 100, 100, 100, 100)
    with pytest.raises(ValueError, match="does not match candle"):
        engine.step(candle, Signal("BTCUSDT", 0, Direction.LONG, 1.0, "stale"))
    with pytest.raises(BadCandleError, match="before market time"):
        engine.step(make_candle(1, 100, 100, 100, 100, symbol="ETHUSDT"))


def test_manual_orders_are_validated(engine_plain_settings: EngineSettings) -> None:
    from trading.models import SymbolSpec

    engine = Engine(replace(engine_plain_settings, symbols=(SymbolSpec("BTCUSDT", 0.1, 0.001, 5.0),)))
    engine.step(make_candle(0, 100, 100, 100, 100))
    t = engine.now
    with pytest.raises(OrderError, match="unknown symbol 'ETHUSDT'"):
        engine.place_order("ETHUSDT", "long", "market", 1.0, price=100.0, time=t)
    for bad in (0.0, -1.0, float("nan"), float("inf")):
        with pytest.raises(OrderError, match="quantity must be a finite number > 0"):
            engine.place_order("BTCUSDT", "long", "market", bad, price=100.0, time=t)
    with pytest.raises(OrderError, match="below the minimum order quantity 0.001"):
        engine.place_order("BTCUSDT", "long", "market", 0.0001, price=100.0, time=t)
    with pytest.raises(OrderError, match="insufficient balance"):
        engine.place_order("BTCUSDT", "long", "market", 5_000.0, price=100.0, time=t)
    with pytest.raises(OrderError, match="below the minimum"):
        engine.place_order("BTCUSDT", "long", "market", 0.01, price=100.0, time=t)
    with pytest.raises(OrderError, match="needs limit_price"):
        engine.place_order("BTCUSDT", "long", "limit", 1.0, time=t)
    with pytest.raises(OrderError, match="needs stop_price"):
        engine.place_order("BTCUSDT", "long", "stop_limit", 1.0, limit_price=101.0, time=t)
    with pytest.raises(OrderError, match="no long position in BTCUSDT to reduce"):
        engine.place_order("BTCUSDT", "long", "market", 1.0, price=100.0, time=t, reduce_only=True)
    with pytest.raises(OrderError, match="'sideways' is not a valid Side"):
        engine.place_order("BTCUSDT", "sideways", "market", 1.0, price=100.0, time=t)
    with pytest.raises(OrderError, match="before market time"):
        engine.place_order("BTCUSDT", "long", "market", 1.0, price=100.0, time=t - 1)
    with pytest.raises(OrderError, match="no pending order 99"):
        engine.cancel_order(99)
    with pytest.raises(OrderError, match="no open trade 99"):
        engine.close_trade(99, 100.0, t)


def test_order_errors_name_their_field(engine_plain_settings: EngineSettings) -> None:
    engine = Engine(engine_plain_settings)
    engine.step(make_candle(0, 100, 100, 100, 100))
    t = engine.now
    cases = [
        (dict(side="sideways"), "side"), (dict(order_type="iceberg"), "order_type"), (dict(quantity=-1.0), "quantity"),
        (dict(order_type="limit"), "limit_price"), (dict(order_type="limit", limit_price=90.0, stop_price=80.0),
                                                    "stop_price"),
        (dict(quantity=1e6), "quantity"), (dict(stop_loss=float("inf")), "stop_loss"),
        (dict(reduce_only=True), "reduce_only"),
    ]
    for changes, field in cases:
        order = {"symbol": "BTCUSDT", "side": "long", "order_type": "market", "quantity": 1.0, "price": 100.0,
                 "time": t, **changes}
        with pytest.raises(OrderError) as refused:
            engine.place_order(order.pop("symbol"), order.pop("side"), order.pop("order_type"), order.pop("quantity"),
                               **order)
        assert refused.value.field == field, (changes, refused.value)


def test_a_market_order_before_the_first_candle_is_marked_at_its_price(engine_plain_settings: EngineSettings) -> None:
    """A session may take a manual order before its first candle (the price comes from the exchange):
    the position is marked at that price, so the account can be valued at once."""
    engine = Engine(engine_plain_settings)
    _, result = engine.place_order("BTCUSDT", "long", "market", 1.0, price=100.0, time=0)
    assert len(result.fills) == 1
    account = engine.account()
    assert account.open_positions == 1 and account.unrealised == pytest.approx(1.0 * (100.0 - result.fills[0].price))
    engine.step(make_candle(0, 100, 110, 100, 110))
    assert engine.account().unrealised == pytest.approx(1.0 * (110.0 - result.fills[0].price))


def test_limit_stop_limit_reduce_only_and_close_trade(engine_plain_settings: EngineSettings) -> None:
    settings = replace(engine_plain_settings, maker_fee=0.001, taker_fee=0.002, slippage_bps=10.0)
    engine = Engine(settings)
    engine.step(make_candle(0, 100, 100, 100, 100))
    limit, _ = engine.place_order("BTCUSDT", "long", "limit", 2.0, limit_price=95.0, time=engine.now)
    stop, _ = engine.place_order(
        "BTCUSDT", "short", "stop_limit", 1.0, stop_price=90.0, limit_price=89.0, time=engine.now
    )
    assert limit is not None and stop is not None and engine.available() < engine.cash
    assert not engine.step(make_candle(1, 100, 101, 96, 97)).fills
    fills = engine.step(make_candle(2, 97, 98, 94, 96)).fills
    assert [(f.price, f.liquidity, f.fee) for f in fills] == [(95.0, "maker", pytest.approx(0.19))]
    engine.cancel_order(stop.id)
    exit_order, _ = engine.place_order(
        "BTCUSDT", "long", "limit", 1.0, limit_price=99.0, reduce_only=True, time=engine.now
    )
    assert exit_order is not None
    (trade,) = engine.step(make_candle(3, 96, 100, 96, 99)).trades
    assert trade.exit_price == 99.0 and trade.quantity == 1.0 and trade.close_reason is CloseReason.MANUAL
    position = engine.positions["BTCUSDT"]
    assert position.quantity == 1.0
    trade = engine.close_trade(position.trade_id, 100.0, engine.now + 1)
    assert trade.exit_price == pytest.approx(100.0 * (1 - 0.001)) and trade.exit_fee == pytest.approx(
        trade.exit_price * 0.002
    )
    assert not engine.positions and not engine.orders
    _, result = engine.place_order("BTCUSDT", "short", "market", 1.0, price=100.0, time=engine.now + 2)
    assert result.fills[0].price == pytest.approx(99.9)


def test_stop_limit_triggers_then_fills_as_taker(engine_plain_settings: EngineSettings) -> None:
    engine = Engine(engine_plain_settings)
    engine.step(make_candle(0, 100, 100, 100, 100))
    engine.place_order("BTCUSDT", "long", "stop_limit", 1.0, stop_price=105.0, limit_price=106.0, time=engine.now)
    (fill,) = engine.step(make_candle(1, 100, 107, 99, 106)).fills
    assert fill.price == 105.0 and fill.liquidity == "taker"
    assert engine.positions["BTCUSDT"].side is Side.LONG


def test_partial_fills_are_seeded_and_deterministic(engine_plain_settings: EngineSettings) -> None:
    settings = replace(engine_plain_settings, partial_fill_min_ratio=0.3, seed=7)

    def run() -> list[float]:
        engine = Engine(settings)
        engine.step(make_candle(0, 100, 100, 100, 100))
        engine.place_order("BTCUSDT", "long", "limit", 10.0, limit_price=99.0, time=engine.now)
        quantities = []
        i = 1
        while engine.orders:
            quantities += [f.quantity for f in engine.step(make_candle(i, 100, 100, 98, 99)).fills]
            i += 1
        return quantities

    first = run()
    assert first == run()
    assert len(first) > 1 and sum(first) == pytest.approx(10.0)


def test_risk_verdicts_come_with_a_signal_entry() -> None:
    engine = Engine(EngineSettings())
    candle = make_candle(0, 100, 100, 100, 100)
    assert engine.step(candle, _signal(candle, Direction.LONG)).risk == ()  # decided; fills at the next open
    result = engine.step(make_candle(1, 100, 100, 100, 100))
    assert [v.name for v in result.risk] == [
        "risk_per_trade",
        "stop_loss",
        "portfolio_risk",
        "daily_loss",
        "consecutive_losses",
        "cooldown",
        "correlation",
    ]
    assert all(v.passed for v in result.risk)
    sizing = result.risk[0]
    assert sizing.values["loss_at_stop"] == pytest.approx(100.0, rel=1e-6)  # 1 % of 10,000


def _next_open(settings: EngineSettings) -> EngineSettings:
    return replace(settings, fill_price=FillPrice.NEXT_OPEN)


def test_a_signal_fills_at_the_next_candles_open_not_at_its_own_close(engine_plain_settings: EngineSettings) -> None:
    """A decision made on a closed candle cannot fill at that candle's close on any exchange."""
    engine = Engine(replace(_next_open(engine_plain_settings), slippage_bps=10.0))
    decided = make_candle(0, 100, 110, 90, 105)
    assert engine.step(decided, _signal(decided, Direction.LONG)).fills == ()
    assert engine.positions == {} and engine.pending_signals == {"BTCUSDT": (Side.LONG, 1.0)}
    following = make_candle(1, 107, 112, 104, 111)
    (fill,) = engine.step(following).fills
    assert fill.price == pytest.approx(107 * 1.001) and fill.time == following.open_time
    assert engine.positions["BTCUSDT"].entry_time == following.open_time and engine.pending_signals == {}
    # The opposite signal closes (and reverses) at the open after it, too.
    turn = make_candle(2, 111, 115, 108, 113)
    assert engine.step(turn, _signal(turn, Direction.SHORT)).trades == ()
    result = engine.step(make_candle(3, 109, 110, 100, 101))
    (trade,) = result.trades
    assert trade.close_reason is CloseReason.SIGNAL and trade.exit_price == pytest.approx(109 * 0.999)
    assert engine.positions["BTCUSDT"].side is Side.SHORT


def test_an_entry_at_the_open_meets_its_stop_on_the_same_candle(engine_plain_settings: EngineSettings) -> None:
    engine = Engine(replace(_next_open(engine_plain_settings), stop_loss_pct=2.0))
    decided = make_candle(0, 100, 100, 100, 100)
    engine.step(decided, _signal(decided, Direction.LONG))
    result = engine.step(make_candle(1, 100, 101, 97, 98))  # enters at 100, stop 98 touched by the low
    assert [f.opens for f in result.fills] == [True, False]
    assert result.trades[0].close_reason is CloseReason.STOP_LOSS and result.trades[0].exit_price == 98.0


def test_a_waiting_signal_survives_state_and_respects_a_stop(engine_plain_settings: EngineSettings) -> None:
    engine = Engine(_next_open(engine_plain_settings))
    decided = make_candle(0, 100, 100, 100, 100)
    engine.step(decided, _signal(decided, Direction.LONG))
    restored = Engine.from_state(engine.to_state())
    assert restored.pending_signals == {"BTCUSDT": (Side.LONG, 1.0)}
    assert restored.step(make_candle(1, 101, 101, 101, 101)).fills[0].price == 101.0
    # Entries stopped between the decision and the next open: nothing opens.
    stopped = Engine.from_state(engine.to_state())
    stopped.entries_enabled = False
    assert stopped.step(make_candle(1, 101, 101, 101, 101)).rejection == "entries are stopped"
    assert stopped.positions == {}
    # A signal that could not act (a short on spot) is not kept.
    spot = Engine(replace(_next_open(engine_plain_settings), market=MarketType.SPOT))
    spot.step(decided, _signal(decided, Direction.SHORT))
    assert spot.pending_signals == {} and spot.is_idle()
