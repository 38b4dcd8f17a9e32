"""Shared helpers for the Engine / broker / risk tests (fixtures named uniquely per the project rule)."""

from __future__ import annotations

import pytest

from trading.settings import EngineSettings, FillPrice, FundingMode, PositionSizing, RiskSettings


@pytest.fixture
def engine_plain_settings() -> EngineSettings:
    """No risk checks, no fees, no funding, fixed 1-unit size, signal fills at the deciding candle's
    close: arithmetic is easy to follow. (Fills at the next open have their own tests.)"""
    return EngineSettings(
        fill_price=FillPrice.CLOSE,
        leverage=1,
        starting_balance=100_000.0,
        taker_fee=0.0,
        maker_fee=0.0,
        stop_loss_pct=None,
        take_profit_pct=None,
        position_sizing=PositionSizing.FIXED_QUANTITY,
        fixed_quantity=1.0,
        funding_mode=FundingMode.OFF,
        risk=RiskSettings(enabled=()),
    )
