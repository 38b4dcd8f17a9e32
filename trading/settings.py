"""EngineSettings: everything that shapes the Engine's decisions, validated with errors naming the field.

Percentages are in percent (1.0 means 1 %); fees are fractions (0.0004 = 0.04 %); slippage is in
basis points. Settings round-trip through plain JSON (``to_dict`` / ``from_dict``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields, replace
from enum import StrEnum
from typing import Any

from trading.errors import InvalidInput
from trading.models import SymbolSpec
from trading.setting_catalog import check, label


class MarketType(StrEnum):
    FUTURES = "futures"  # USDⓈ-M perpetual: long/short, leverage, funding, liquidation
    SPOT = "spot"  # long only, 1x, no funding


class FundingMode(StrEnum):
    SERIES = "series"  # a funding-rate series per symbol, constant rate where it has no value
    CONSTANT = "constant"
    OFF = "off"


class FillPrice(StrEnum):
    NEXT_OPEN = "next_open"  # a decision on a closed candle fills at the next candle's open ± slippage
    CLOSE = "close"  # at the deciding candle's close: only to cross-check peers that fill so


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
        raise InvalidInput(name, f"{label(name)} {message}")


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
        for name in ("risk_per_trade_pct", "max_stop_distance_pct", "max_portfolio_risk_pct", "max_daily_loss_pct",
                     "max_consecutive_losses", "cooldown_minutes", "max_correlation", "correlation_window",
                     "min_correlation_returns"):
            check(f"risk.{name}", getattr(self, name))
        _require(self.min_correlation_returns < self.correlation_window, "risk.min_correlation_returns",
                 f"must be below the correlation window ({self.correlation_window}), "
                 f"got {self.min_correlation_returns}")
        unknown = [n for n in self.enabled if n not in RISK_CHECK_NAMES]
        _require(not unknown, "risk.enabled", f"has unknown checks {unknown}; known: {', '.join(RISK_CHECK_NAMES)}")

    def is_on(self, check: str) -> bool:
        return check in self.enabled


@dataclass(frozen=True, slots=True)
class EngineSettings:
    market: MarketType = MarketType.FUTURES
    # The one currency cash, fees and profit are booked in: every symbol traded is quoted in it.
    account_currency: str = "USDT"
    leverage: int = 10
    starting_balance: float = 10_000.0
    taker_fee: float = 0.0004
    maker_fee: float = 0.0002
    slippage_bps: float = 0.0
    fill_price: FillPrice = FillPrice.NEXT_OPEN
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
            ("fill_price", FillPrice),
        ):
            value = getattr(self, name)
            check(name, value.value if isinstance(value, enum) else value)
            object.__setattr__(self, name, enum(value))
        _require(
            isinstance(self.account_currency, str) and self.account_currency.isalnum()
            and self.account_currency.isupper() and 2 <= len(self.account_currency) <= 10,
            "account_currency",
            f"must be an asset name such as USDT or BTC, got {self.account_currency!r}",
        )
        for name in ("leverage", "starting_balance", "taker_fee", "maker_fee", "slippage_bps", "stop_loss_pct",
                     "take_profit_pct", "trailing_stop_pct", "fixed_quantity", "fixed_notional", "min_confidence",
                     "close_on_opposite_signal", "funding_rate", "partial_fill_min_ratio", "seed"):
            check(name, getattr(self, name))
        _require(self.market is MarketType.FUTURES or self.leverage == 1, "leverage",
                 f"must be 1 on a spot account, got {self.leverage}")
        _require(
            self.stop_loss_pct is not None or not self.risk.is_on("stop_loss"),
            "stop_loss_pct",
            "is required while the risk check 'stop_loss' is on (every entry needs a stop)",
        )
        if self.position_sizing is PositionSizing.RISK:
            _require(
                self.risk.is_on("risk_per_trade") and self.stop_loss_pct is not None,
                "position_sizing",
                "'risk' needs the risk check 'risk_per_trade' on and a stop loss",
            )
        if self.position_sizing is PositionSizing.FIXED_QUANTITY:
            _require(self.fixed_quantity > 0, "fixed_quantity", f"must be above 0 with fixed_quantity sizing, got "
                                                                f"{self.fixed_quantity!r}")
        if self.position_sizing is PositionSizing.FIXED_NOTIONAL:
            _require(self.fixed_notional > 0, "fixed_notional", f"must be above 0 with fixed_notional sizing, got "
                                                                f"{self.fixed_notional!r}")
        names = [s.symbol for s in self.symbols]
        _require(len(names) == len(set(names)), "symbols", f"lists a symbol twice: {names}")
        foreign = [s.symbol for s in self.symbols if s.quote_asset and s.quote_asset != self.account_currency]
        _require(not foreign, "symbols",
                 f"{', '.join(foreign)} quoted in another currency than the account's {self.account_currency}")

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
