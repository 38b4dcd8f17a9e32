"""Binance USDⓈ-M style maintenance-margin brackets and the isolated liquidation price.

A bracket covers position notionals ``[floor, cap)`` with a maximum leverage, a maintenance
margin rate (MMR) and a maintenance amount ("cum"). Binance publishes cum so that the
maintenance margin ``notional * MMR - cum`` is continuous across bracket edges; we derive it the
same way: ``cum_i = cum_{i-1} + floor_i * (MMR_i - MMR_{i-1})``.

Isolated margin, one-way mode, one position (Binance's formula with no cross terms)::

    LP = (WB + cum - side * Q * EP) / (Q * MMR - side * Q)      side = +1 long, -1 short

where WB is the position's isolated margin. The bracket is the one containing the notional at
the liquidation price itself (``Q * LP``), as on the exchange. Worked examples (BTCUSDT brackets,
tested in tests/trading/test_broker_margin.py):

* long 1 BTC at 20,000, 10x: WB 2,000, tier 1 (MMR 0.4%, cum 0):
  LP = (2000 - 20000) / (0.004 - 1) = 18,072.289156626506
* short 1 BTC at 20,000, 10x: LP = (2000 + 20000) / (0.004 + 1) = 21,912.350597609562
* long 5 BTC at 20,000, 20x: WB 5,000; Q*LP ≈ 95k is tier 2 (MMR 0.5%, cum 50):
  LP = (5000 + 50 - 100000) / (0.025 - 5) = 19,085.427135678393
"""

from __future__ import annotations

from dataclasses import dataclass

from trading.models import Side


@dataclass(frozen=True, slots=True)
class MarginBracket:
    floor: float  # notional from which this bracket applies
    cap: float  # notional up to which it applies (exclusive); float("inf") for the last
    max_leverage: int
    maintenance_rate: float
    maintenance_amount: float


def build_brackets(tiers: list[tuple[float, int, float]]) -> tuple[MarginBracket, ...]:
    """``tiers`` = [(notional floor, max leverage, maintenance rate), ...] from 0 upwards."""
    if not tiers or tiers[0][0] != 0:
        raise ValueError("margin tiers must start at notional 0")
    out: list[MarginBracket] = []
    cum = 0.0
    for i, (floor, max_leverage, rate) in enumerate(tiers):
        if i:
            previous = tiers[i - 1]
            if floor <= previous[0]:
                raise ValueError(f"margin tier {i}: floor {floor} must exceed the previous {previous[0]}")
            cum += floor * (rate - previous[2])
        cap = tiers[i + 1][0] if i + 1 < len(tiers) else float("inf")
        out.append(MarginBracket(float(floor), float(cap), max_leverage, rate, cum))
    return tuple(out)


# Binance BTCUSDT perpetual brackets (notional floor in USDT, max leverage, maintenance rate).
BTCUSDT_BRACKETS = build_brackets(
    [
        (0, 125, 0.004),
        (50_000, 100, 0.005),
        (250_000, 50, 0.01),
        (3_000_000, 20, 0.025),
        (15_000_000, 10, 0.05),
        (30_000_000, 5, 0.10),
        (80_000_000, 4, 0.125),
        (100_000_000, 3, 0.15),
        (200_000_000, 2, 0.25),
        (300_000_000, 1, 0.50),
    ]
)

# Brackets used for symbols without their own table: Binance's common tier set for mid-caps.
DEFAULT_BRACKETS = build_brackets(
    [
        (0, 75, 0.005),
        (10_000, 50, 0.01),
        (50_000, 25, 0.02),
        (250_000, 10, 0.05),
        (1_000_000, 5, 0.10),
        (2_000_000, 4, 0.125),
        (5_000_000, 3, 0.15),
        (10_000_000, 2, 0.25),
        (20_000_000, 1, 0.50),
    ]
)

BRACKETS_BY_SYMBOL: dict[str, tuple[MarginBracket, ...]] = {"BTCUSDT": BTCUSDT_BRACKETS}


def brackets_for(symbol: str) -> tuple[MarginBracket, ...]:
    return BRACKETS_BY_SYMBOL.get(symbol, DEFAULT_BRACKETS)


def bracket_for_notional(brackets: tuple[MarginBracket, ...], notional: float) -> MarginBracket:
    for bracket in brackets:
        if notional < bracket.cap:
            return bracket
    return brackets[-1]


def max_leverage_for(brackets: tuple[MarginBracket, ...], notional: float) -> int:
    return bracket_for_notional(brackets, notional).max_leverage


def maintenance_margin(brackets: tuple[MarginBracket, ...], notional: float) -> float:
    bracket = bracket_for_notional(brackets, notional)
    return notional * bracket.maintenance_rate - bracket.maintenance_amount


_COVERED_LONG: dict[int, tuple[tuple[MarginBracket, ...], bool]] = {}


def _covered_long_never_liquidates(brackets: tuple[MarginBracket, ...]) -> bool:
    """Whether a long whose margin covers its notional (1x) can skip the bracket loop: true when
    every maintenance amount is >= 0 (so the numerators stay >= 0 in floating point, rounding being
    monotone) and every rate is <= 0.5 (so Q*MMR rounds strictly below Q). Cached per table
    object: a long at 1x enters on every other reversal of a backtest."""
    known = _COVERED_LONG.get(id(brackets))
    if known is None or known[0] is not brackets:
        safe = all(b.maintenance_amount >= 0 and 0 <= b.maintenance_rate <= 0.5 for b in brackets)
        known = _COVERED_LONG[id(brackets)] = (brackets, safe)
    return known[1]


def liquidation_price(
    brackets: tuple[MarginBracket, ...], side: Side, quantity: float, entry_price: float, margin: float
) -> float:
    """Isolated liquidation price; 0.0 when the position cannot be liquidated (a long whose
    margin covers the whole notional plus maintenance never reaches a positive price)."""
    if quantity <= 0:
        raise ValueError(f"quantity must be positive, got {quantity}")
    s = side.sign
    if s == 1 and margin >= quantity * entry_price and _covered_long_never_liquidates(brackets):
        # Every bracket's numerator (margin + cum) - Q*EP is then >= 0 and its denominator
        # Q*MMR - Q < 0, so no bracket gives a positive price: the loop below would return 0.0.
        return 0.0
    fallback = 0.0
    for bracket in brackets:
        denominator = quantity * bracket.maintenance_rate - s * quantity
        price = (margin + bracket.maintenance_amount - s * quantity * entry_price) / denominator
        if price <= 0:
            continue
        notional = quantity * price
        if bracket.floor <= notional < bracket.cap:
            return price
        if not fallback:
            fallback = price
    return max(fallback, 0.0)
