"""Liquidation prices against the worked examples documented in trading/margin.py."""

from __future__ import annotations

import pytest

from trading.margin import (
    BTCUSDT_BRACKETS,
    bracket_for_notional,
    build_brackets,
    liquidation_price,
    maintenance_margin,
)
from trading.models import Side


def test_btcusdt_maintenance_amounts_match_binance_published_table() -> None:
    published = [0, 50, 1_300, 46_300, 421_300, 1_921_300, 3_921_300, 6_421_300, 26_421_300, 101_421_300]
    assert [b.maintenance_amount for b in BTCUSDT_BRACKETS] == pytest.approx(published)


def test_maintenance_margin_is_continuous_at_bracket_edges() -> None:
    for bracket in BTCUSDT_BRACKETS[1:]:
        below = maintenance_margin(BTCUSDT_BRACKETS, bracket.floor - 1e-6)
        at = maintenance_margin(BTCUSDT_BRACKETS, bracket.floor)
        assert at == pytest.approx(below, abs=1e-3)


@pytest.mark.parametrize(
    ("side", "quantity", "entry", "leverage", "expected"),
    [
        (Side.LONG, 1.0, 20_000.0, 10, 18_072.289156626506),
        (Side.SHORT, 1.0, 20_000.0, 10, 21_912.350597609562),
        (Side.LONG, 5.0, 20_000.0, 20, 19_085.427135678393),
    ],
)
def test_worked_liquidation_examples(side: Side, quantity: float, entry: float, leverage: int, expected: float) -> None:
    margin = quantity * entry / leverage
    price = liquidation_price(BTCUSDT_BRACKETS, side, quantity, entry, margin)
    assert price == pytest.approx(expected, rel=1e-12)
    # At that price the margin left equals the maintenance margin: the definition of liquidation.
    left = margin + side.sign * quantity * (price - entry)
    assert left == pytest.approx(maintenance_margin(BTCUSDT_BRACKETS, quantity * price), rel=1e-9)


def test_a_fully_collateralised_long_cannot_be_liquidated() -> None:
    assert liquidation_price(BTCUSDT_BRACKETS, Side.LONG, 1.0, 20_000.0, 20_000.0) == 0.0


def test_bracket_lookup_and_bad_tables() -> None:
    assert bracket_for_notional(BTCUSDT_BRACKETS, 49_999).max_leverage == 125
    assert bracket_for_notional(BTCUSDT_BRACKETS, 50_000).max_leverage == 100
    assert bracket_for_notional(BTCUSDT_BRACKETS, 1e12).max_leverage == 1
    with pytest.raises(ValueError, match="start at notional 0"):
        build_brackets([(10, 5, 0.01)])
    with pytest.raises(ValueError, match="must exceed"):
        build_brackets([(0, 5, 0.01), (0, 4, 0.02)])
    with pytest.raises(ValueError, match="quantity must be positive"):
        liquidation_price(BTCUSDT_BRACKETS, Side.LONG, 0.0, 1.0, 1.0)
