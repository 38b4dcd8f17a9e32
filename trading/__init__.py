"""The pure trading domain shared by paper sessions and backtests (no numpy/pandas at import)."""

from trading.engine import EMPTY_STEP, Engine, OrderError, StepResult
from trading.models import (
    Account,
    CloseReason,
    Fill,
    Liquidity,
    Order,
    OrderType,
    Position,
    Side,
    SymbolSpec,
    Trade,
)
from trading.risk import RiskCheckResult
from trading.settings import EngineSettings, FundingMode, MarketType, PositionSizing, RiskSettings

__all__ = [
    "EMPTY_STEP",
    "Account",
    "CloseReason",
    "Engine",
    "EngineSettings",
    "Fill",
    "FundingMode",
    "Liquidity",
    "MarketType",
    "Order",
    "OrderError",
    "OrderType",
    "Position",
    "PositionSizing",
    "RiskCheckResult",
    "RiskSettings",
    "Side",
    "StepResult",
    "SymbolSpec",
    "Trade",
]
