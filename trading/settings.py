"""EngineSettings: everything that shapes the Engine's decisions, validated with errors naming the field.

Percentages are in percent (1.0 means 1 %); fees are fractions (0.0004 = 0.04 %); slippage is in
basis points. Settings round-trip through plain JSON (``to_dict`` / ``from_dict``).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields, replace
from enum import StrEnum
from typing import Any

from trading.errors import InvalidInput
from trading.models import SymbolSpec


class MarketType(StrEnum):
    FUTURES = "futures"  # USDⓈ-M perpetual: long/short, leverage, funding, liquidation
    SPOT = "spot"  # long only, 1x, no funding


class FundingMode(StrEnum):
    SERIES = "series"  # a funding-rate series per symbol, constant rate where it has no value
    CONSTANT = "constant"
    OFF = "off"


class PositionSizing(StrEnum):
    RISK = "risk"  # risk check 1: loss at the stop = risk_per_trade_pct of equity
    FIXED_QUANTITY = "fixed_quantity"
    FIXED_NOTIONAL = "fixed_notional"


RISK_CHECK_NAMES = (
    "risk_per_trade",
    "stop_loss",
    "portfolio_risk",
    "daily_loss",
    "consecutive_losses",
    "cooldown",
    "correlation",
)


def _require(condition: bool, name: str, message: str) -> None:
    if not condition:
        raise InvalidInput(name, f"setting {name}: {message}")


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


@dataclass(frozen=True, slots=True)
class RiskSettings:
    risk_per_trade_pct: float = 1.0
    max_stop_distance_pct: float = 5.0
    max_portfolio_risk_pct: float = 10.0
    max_daily_loss_pct: float = 3.0
    max_consecutive_losses: int = 3
    cooldown_minutes: float = 60.0
    max_correlation: float = 0.70
    correlation_window: int = 100  # closes kept per symbol
    min_correlation_returns: int = 20  # fewer overlapping returns: the check passes, saying so
    enabled: tuple[str, ...] = RISK_CHECK_NAMES

    def __post_init__(self) -> None:
        for name in (
            "risk_per_trade_pct",
            "max_stop_distance_pct",
            "max_portfolio_risk_pct",
            "max_daily_loss_pct",
        ):
            value = getattr(self, name)
            _require(_finite(value) and 0 < value <= 100, f"risk.{name}", f"must be in (0, 100], got {value!r}")
        _require(
            isinstance(self.max_consecutive_losses, int) and self.max_consecutive_losses >= 1,
            "risk.max_consecutive_losses",
            f"must be an integer >= 1, got {self.max_consecutive_losses!r}",
        )
        _require(
            _finite(self.cooldown_minutes) and self.cooldown_minutes >= 0,
            "risk.cooldown_minutes",
            f"must be >= 0, got {self.cooldown_minutes!r}",
        )
        _require(
            _finite(self.max_correlation) and -1 <= self.max_correlation <= 1,
            "risk.max_correlation",
            f"must be in [-1, 1], got {self.max_correlation!r}",
        )
        _require(
            isinstance(self.correlation_window, int) and 3 <= self.correlation_window <= 10_000,
            "risk.correlation_window",
            f"must be an integer in [3, 10000], got {self.correlation_window!r}",
        )
        _require(
            isinstance(self.min_correlation_returns, int)
            and 2 <= self.min_correlation_returns < self.correlation_window,
            "risk.min_correlation_returns",
            f"must be an integer in [2, correlation_window), got {self.min_correlation_returns!r}",
        )
        unknown = [n for n in self.enabled if n not in RISK_CHECK_NAMES]
        _require(not unknown, "risk.enabled", f"unknown checks {unknown}; known: {', '.join(RISK_CHECK_NAMES)}")

    def is_on(self, check: str) -> bool:
        return check in self.enabled


@dataclass(frozen=True, slots=True)
class EngineSettings:
    market: MarketType = MarketType.FUTURES
    leverage: int = 10
    starting_balance: float = 10_000.0
    taker_fee: float = 0.0004
    maker_fee: float = 0.0002
    slippage_bps: float = 0.0
    stop_loss_pct: float | None = 2.0  # distance from entry; None = no stop (only if check 2 is off)
    take_profit_pct: float | None = 4.0
    trailing_stop_pct: float | None = None
    position_sizing: PositionSizing = PositionSizing.RISK
    fixed_quantity: float = 0.0
    fixed_notional: float = 0.0
    min_confidence: float = 0.0  # signals below this confidence never enter
    close_on_opposite_signal: bool = True
    funding_mode: FundingMode = FundingMode.CONSTANT
    funding_rate: float = 0.0001  # per 8 h; the constant rate, and the fallback of a series
    partial_fill_min_ratio: float = 1.0  # < 1: fills take a seeded share in [min_ratio, 1]
    seed: int = 0
    risk: RiskSettings = field(default_factory=RiskSettings)
    symbols: tuple[SymbolSpec, ...] = ()  # empty: any symbol, no rounding, no minimum notional

    def __post_init__(self) -> None:
        for name, enum in (
            ("market", MarketType),
            ("funding_mode", FundingMode),
            ("position_sizing", PositionSizing),
        ):
            value = getattr(self, name)
            if isinstance(value, str) and not isinstance(value, enum):
                try:
                    object.__setattr__(self, name, enum(value))
                except ValueError:
                    known = ", ".join(e.value for e in enum)
                    raise InvalidInput(name, f"setting {name}: unknown value {value!r}; known: {known}") from None
        _require(isinstance(self.market, MarketType), "market", f"must be a MarketType, got {self.market!r}")
        _require(
            isinstance(self.leverage, int) and not isinstance(self.leverage, bool) and 1 <= self.leverage <= 125,
            "leverage",
            f"must be an integer in [1, 125], got {self.leverage!r}",
        )
        _require(
            self.market is MarketType.FUTURES or self.leverage == 1,
            "leverage",
            "spot trading uses leverage 1",
        )
        _require(
            _finite(self.starting_balance) and self.starting_balance > 0,
            "starting_balance",
            f"must be > 0, got {self.starting_balance!r}",
        )
        for name in ("taker_fee", "maker_fee"):
            value = getattr(self, name)
            _require(
                _finite(value) and -0.01 <= value < 0.1,
                name,
                f"must be a fraction in [-0.01, 0.1), got {value!r}",
            )
        _require(
            _finite(self.slippage_bps) and 0 <= self.slippage_bps < 1000,
            "slippage_bps",
            f"must be in [0, 1000), got {self.slippage_bps!r}",
        )
        for name in ("stop_loss_pct", "take_profit_pct", "trailing_stop_pct"):
            value = getattr(self, name)
            _require(
                value is None or (_finite(value) and 0 < value < 100),
                name,
                f"must be None or in (0, 100), got {value!r}",
            )
        _require(
            self.stop_loss_pct is not None or not self.risk.is_on("stop_loss"),
            "stop_loss_pct",
            "is required while risk check 'stop_loss' is on (every entry needs a stop)",
        )
        _require(
            isinstance(self.position_sizing, PositionSizing),
            "position_sizing",
            f"must be a PositionSizing, got {self.position_sizing!r}",
        )
        if self.position_sizing is PositionSizing.RISK:
            _require(
                self.risk.is_on("risk_per_trade") and self.stop_loss_pct is not None,
                "position_sizing",
                "'risk' sizing needs risk check 'risk_per_trade' on and a stop_loss_pct",
            )
        if self.position_sizing is PositionSizing.FIXED_QUANTITY:
            _require(
                _finite(self.fixed_quantity) and self.fixed_quantity > 0,
                "fixed_quantity",
                f"must be > 0 with fixed_quantity sizing, got {self.fixed_quantity!r}",
            )
        if self.position_sizing is PositionSizing.FIXED_NOTIONAL:
            _require(
                _finite(self.fixed_notional) and self.fixed_notional > 0,
                "fixed_notional",
                f"must be > 0 with fixed_notional sizing, got {self.fixed_notional!r}",
            )
        _require(
            _finite(self.min_confidence) and 0 <= self.min_confidence <= 1,
            "min_confidence",
            f"must be in [0, 1], got {self.min_confidence!r}",
        )
        _require(isinstance(self.funding_mode, FundingMode), "funding_mode", f"got {self.funding_mode!r}")
        _require(
            _finite(self.funding_rate) and abs(self.funding_rate) <= 0.05,
            "funding_rate",
            f"must be in [-0.05, 0.05] per 8 h, got {self.funding_rate!r}",
        )
        _require(
            _finite(self.partial_fill_min_ratio) and 0 < self.partial_fill_min_ratio <= 1,
            "partial_fill_min_ratio",
            f"must be in (0, 1], got {self.partial_fill_min_ratio!r}",
        )
        _require(
            isinstance(self.seed, int) and self.seed >= 0,
            "seed",
            f"must be an integer >= 0, got {self.seed!r}",
        )
        names = [s.symbol for s in self.symbols]
        _require(len(names) == len(set(names)), "symbols", f"duplicate symbol in {names}")

    @property
    def funding_on(self) -> bool:
        return self.market is MarketType.FUTURES and self.funding_mode is not FundingMode.OFF

    def with_risk(self, **changes: Any) -> EngineSettings:
        return replace(self, risk=replace(self.risk, **changes))

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["risk"]["enabled"] = list(self.risk.enabled)
        data["symbols"] = [asdict(s) for s in self.symbols]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EngineSettings:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise InvalidInput("settings", f"unknown settings {unknown}")
        values = dict(data)
        if "risk" in values:
            if not isinstance(values["risk"], dict):
                raise InvalidInput("risk", f"setting risk: must be an object, got {values['risk']!r}")
            risk = dict(values["risk"])
            unknown_risk = sorted(set(risk) - {f.name for f in fields(RiskSettings)})
            if unknown_risk:
                raise InvalidInput("risk", f"unknown risk settings {unknown_risk}")
            if "enabled" in risk:
                risk["enabled"] = tuple(risk["enabled"])
            values["risk"] = RiskSettings(**risk)
        if "symbols" in values:
            values["symbols"] = tuple(SymbolSpec(**s) for s in values["symbols"])
        return cls(**values)
