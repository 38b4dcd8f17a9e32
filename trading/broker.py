"""Paper-broker rules: fill prices, fees, the intrabar exit rule and seeded partial fills.

Pure functions of their arguments; the Engine owns all state.

Intrabar rule (a candle gives only open/high/low/close, not the path between them):
1. A gap beyond a level at the open fills at the open (liquidation first if the open is beyond
   the liquidation price, else the stop, else the take-profit).
2. Otherwise, when the stop (the tighter of stop loss and trailing stop) and the take-profit could
   both trigger inside the candle, the pessimistic outcome wins: the stop.
3. A stop whose fill price (after slippage) lies beyond the liquidation price is a liquidation.
4. The trailing stop is checked against the extreme reached *before* this candle; the candle's own
   favourable extreme raises it only afterwards (we cannot know it came before the low).
"""

from __future__ import annotations

from trading.models import CloseReason, Order, OrderType, Position, Side

_MASK64 = (1 << 64) - 1


def slipped(price: float, buying: bool, slippage_bps: float) -> float:
    """A taker's price: buying pays more, selling receives less."""
    if slippage_bps == 0:
        return price
    factor = slippage_bps / 10_000
    return price * (1 + factor) if buying else price * (1 - factor)


def fee(quantity: float, price: float, rate: float) -> float:
    return quantity * price * rate


def exit_buys(side: Side) -> bool:
    """Closing a short buys; closing a long sells."""
    return side is Side.SHORT


def effective_stop(position: Position) -> tuple[float | None, CloseReason]:
    stop = position.stop_loss
    trail = position.trailing_stop()
    if trail is None:
        return stop, CloseReason.STOP_LOSS
    if stop is None:
        return trail, CloseReason.TRAILING_STOP
    if position.side is Side.LONG:
        return (trail, CloseReason.TRAILING_STOP) if trail > stop else (stop, CloseReason.STOP_LOSS)
    return (trail, CloseReason.TRAILING_STOP) if trail < stop else (stop, CloseReason.STOP_LOSS)


def exit_on_candle(position: Position, open_: float, high: float, low: float) -> tuple[float, CloseReason] | None:
    """The raw (pre-slippage) exit price and reason if this candle closes the position."""
    # Hot path: called on every candle in a position, so fields are read directly.
    stop = position.stop_loss
    stop_reason = CloseReason.STOP_LOSS
    take = position.take_profit
    liq = position.liquidation_price
    trailing = position.trailing_pct
    if position.side is Side.LONG:
        if trailing is not None:
            trail = position.trail_extreme * (1 - trailing / 100)
            if stop is None or trail > stop:
                stop, stop_reason = trail, CloseReason.TRAILING_STOP
        if low > liq and (stop is None or low > stop) and (take is None or high < take):
            return None
        if liq > 0 and open_ <= liq:
            return liq, CloseReason.LIQUIDATION
        if stop is not None and open_ <= stop:
            return open_, stop_reason
        if take is not None and open_ >= take:
            return open_, CloseReason.TAKE_PROFIT
        if stop is not None and low <= stop:
            return stop, stop_reason
        if liq > 0 and low <= liq:
            return liq, CloseReason.LIQUIDATION
        if take is not None and high >= take:
            return take, CloseReason.TAKE_PROFIT
        return None
    if trailing is not None:
        trail = position.trail_extreme * (1 + trailing / 100)
        if stop is None or trail < stop:
            stop, stop_reason = trail, CloseReason.TRAILING_STOP
    if (liq <= 0 or high < liq) and (stop is None or high < stop) and (take is None or low > take):
        return None
    if liq > 0 and open_ >= liq:
        return liq, CloseReason.LIQUIDATION
    if stop is not None and open_ >= stop:
        return open_, stop_reason
    if take is not None and open_ <= take:
        return open_, CloseReason.TAKE_PROFIT
    if stop is not None and high >= stop:
        return stop, stop_reason
    if liq > 0 and high >= liq:
        return liq, CloseReason.LIQUIDATION
    if take is not None and low <= take:
        return take, CloseReason.TAKE_PROFIT
    return None


def beyond_liquidation(position: Position, price: float) -> bool:
    liq = position.liquidation_price
    if liq <= 0:
        return False
    return price <= liq if position.side is Side.LONG else price >= liq


def pending_fill(order: Order, open_: float, high: float, low: float) -> tuple[bool, float | None, bool]:
    """(triggered now, fill price or None, taker?) for a resting order on one candle.

    ``order.side`` is the direction of the position the order opens, or, for a reduce-only
    order, the direction of the position it reduces; ``buys`` says which way the order trades.
    """
    buys = (order.side is Side.LONG) != order.reduce_only
    triggered = order.triggered
    just_triggered = False
    if order.type is OrderType.STOP_LIMIT and not triggered:
        stop = order.stop_price
        assert stop is not None
        if not ((high >= stop) if buys else (low <= stop)):
            return False, None, False
        triggered = just_triggered = True
    limit = order.limit_price
    assert limit is not None
    if just_triggered:
        # Touching the stop turns the order into a limit at that moment: it fills at once (as a
        # taker) only if the limit is marketable at the stop; a limit on the far side waits for
        # a later candle, since we cannot know whether price came back inside this one.
        stop = order.stop_price
        assert stop is not None
        reached = max(open_, stop) if buys else min(open_, stop)
        marketable = reached <= limit if buys else reached >= limit
        return True, (reached if marketable else None), True
    if buys:
        return triggered, (min(open_, limit) if low <= limit else None), False
    return triggered, (max(open_, limit) if high >= limit else None), False


def partial_ratio(seed: int, counter: int, min_ratio: float) -> float:
    """A deterministic share in [min_ratio, 1] from (seed, counter) via SplitMix64."""
    if min_ratio >= 1:
        return 1.0
    z = (seed * 0x9E3779B97F4A7C15 + (counter + 1) * 0xBF58476D1CE4E5B9) & _MASK64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK64
    z ^= z >> 31
    return min_ratio + (1 - min_ratio) * (z / _MASK64)
