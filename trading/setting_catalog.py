"""Every setting a user can change, as the user sees it: label, unit, help, allowed range or choices.

One table serves three readers: the settings classes check values against it (so an error says
"RSI length must be a whole number from 2 to 100, got 100000", never a class name), the API hands
it to the dashboard's settings form, and the docs quote it. Ranges are what makes sense to trade
with: an RSI over 100 candles would keep a session warming up for days; a balance of 1e308 breaks
every sum it enters.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from trading.errors import InvalidInput

NUMBER, INTEGER, CHOICE, FLAG, TEXT, LIST = "number", "integer", "choice", "flag", "text", "list"


@dataclass(frozen=True)
class Setting:
    path: str  # as the API names it: "leverage", "risk.max_daily_loss_pct", "rsi.length"
    section: str  # the API's settings section: basic, strategy or indicators
    label: str
    kind: str = NUMBER
    unit: str = ""
    help: str = ""
    minimum: float | None = None
    maximum: float | None = None
    above_minimum: bool = False  # the minimum itself is not allowed
    below_maximum: bool = False
    choices: tuple[str, ...] = ()
    optional: bool = False  # None (off) is allowed

    def range_text(self) -> str:
        unit = f" {self.unit}" if self.unit and self.unit not in ("%", "x") else self.unit
        low = None if self.minimum is None else f"{self.minimum:g}"
        high = None if self.maximum is None else f"{self.maximum:g}{unit}"
        if low is not None and high is not None:
            if not self.above_minimum and not self.below_maximum:
                return f"from {low} to {high}"
            first = f"above {low}" if self.above_minimum else f"at least {low}"
            second = f"below {high}" if self.below_maximum else f"at most {high}"
            return f"{first} and {second}"
        if low is not None:
            return f"above {low}{unit}" if self.above_minimum else f"at least {low}{unit}"
        if high is not None:
            return f"below {high}" if self.below_maximum else f"at most {high}"
        return ""

    def check(self, value: Any) -> None:
        """``InvalidInput`` naming this setting when ``value`` is not allowed."""
        if value is None and self.optional:
            return
        if self.kind == FLAG:
            if not isinstance(value, bool):
                raise InvalidInput(self.path, f"{self.label} must be true or false, got {value!r}")
            return
        if self.kind == CHOICE:
            if value not in self.choices:
                raise InvalidInput(self.path, f"{self.label} must be one of {', '.join(self.choices)}, got {value!r}")
            return
        if self.kind not in (NUMBER, INTEGER):
            return
        whole = self.kind == INTEGER
        what = "a whole number" if whole else "a number"
        off = " (or off)" if self.optional else ""
        ok = isinstance(value, int) if whole else isinstance(value, (int, float)) and math.isfinite(value)
        if isinstance(value, bool) or not ok or not self._in_range(value):
            raise InvalidInput(self.path, f"{self.label} must be {what} {self.range_text()}{off}, got {value!r}")

    def _in_range(self, value: float) -> bool:
        if self.minimum is not None and (value <= self.minimum if self.above_minimum else value < self.minimum):
            return False
        return not (self.maximum is not None
                    and (value >= self.maximum if self.below_maximum else value > self.maximum))


def _s(path: str, section: str, label: str, **more: Any) -> Setting:
    return Setting(path, section, label, **more)


BASIC, STRATEGY, INDICATORS = "basic", "strategy", "indicators"
PCT = "%"

SETTINGS: dict[str, Setting] = {s.path: s for s in (
    # -- the account and how entries are sized (basic) ----------------------------------------------
    _s("market", BASIC, "Market type", kind=CHOICE, choices=("futures", "spot"),
       help="futures: USDⓈ-M perpetuals, long and short with leverage; spot: long only at 1x. "
            "Changes only on a fresh account."),
    _s("account_currency", BASIC, "Account currency", kind=TEXT,
       help="The currency the balance, fees and profit are in; every symbol traded is quoted in it. "
            "Changes only on a fresh account."),
    _s("leverage", BASIC, "Leverage", kind=INTEGER, unit="x", minimum=1, maximum=125,
       help="Futures only; spot trades at 1x. The exchange's brackets may allow less for large positions."),
    _s("starting_balance", BASIC, "Starting balance", unit="account currency", minimum=0, above_minimum=True,
       maximum=1e9, help="The balance a fresh account opens with (applies from the next reset)."),
    _s("taker_fee", BASIC, "Taker fee", minimum=-0.01, maximum=0.1, below_maximum=True,
       help="Fee of orders that take liquidity, as a fraction (0.0004 = 0.04 %)."),
    _s("maker_fee", BASIC, "Maker fee", minimum=-0.01, maximum=0.1, below_maximum=True,
       help="Fee of resting limit orders that fill, as a fraction; negative is a rebate."),
    _s("slippage_bps", BASIC, "Slippage", unit="bps", minimum=0, maximum=1000, below_maximum=True,
       help="How much worse than the reference price market fills are, in basis points (1 bp = 0.01 %)."),
    _s("fill_price", BASIC, "Fill price of signal trades", kind=CHOICE, choices=("next_open", "close"),
       help="next_open: a decision on a closed candle fills at the next candle's open (as on an exchange); "
            "close: at the deciding candle's close (only for cross-checks with tools that fill so)."),
    _s("stop_loss_pct", BASIC, "Stop loss", unit=PCT, minimum=0, above_minimum=True, maximum=100,
       below_maximum=True, optional=True, help="Distance of the stop from the entry price."),
    _s("take_profit_pct", BASIC, "Take profit", unit=PCT, minimum=0, above_minimum=True, maximum=100,
       below_maximum=True, optional=True, help="Distance of the take-profit from the entry price."),
    _s("trailing_stop_pct", BASIC, "Trailing stop", unit=PCT, minimum=0, above_minimum=True, maximum=100,
       below_maximum=True, optional=True, help="Distance the stop trails behind the best price since entry."),
    _s("position_sizing", BASIC, "Position sizing", kind=CHOICE, choices=("risk", "fixed_quantity", "fixed_notional"),
       help="risk: the loss at the stop is the risk per trade; fixed_quantity / fixed_notional: a set size."),
    _s("fixed_quantity", BASIC, "Fixed quantity", unit="base asset", minimum=0, maximum=1e9,
       help="Quantity of each entry with fixed_quantity sizing."),
    _s("fixed_notional", BASIC, "Fixed notional", unit="account currency", minimum=0, maximum=1e9,
       help="Value of each entry with fixed_notional sizing."),
    _s("min_confidence", BASIC, "Minimum confidence", minimum=0, maximum=1,
       help="Signals less confident than this never enter."),
    _s("close_on_opposite_signal", BASIC, "Close on an opposite signal", kind=FLAG),
    _s("funding_mode", BASIC, "Funding", kind=CHOICE, choices=("series", "constant", "off"),
       help="Futures funding every 8 hours: the exchange's rate series, a constant rate, or none."),
    _s("funding_rate", BASIC, "Funding rate", unit="per 8 h", minimum=-0.05, maximum=0.05,
       help="The constant rate, and the fallback of a series without a value."),
    _s("partial_fill_min_ratio", BASIC, "Smallest partial fill", minimum=0, above_minimum=True, maximum=1,
       help="Below 1, fills take a seeded share between this and 1 of the order."),
    _s("seed", BASIC, "Random seed", kind=INTEGER, minimum=0, maximum=2**31 - 1,
       help="Seeds partial fills, so a run can be repeated exactly."),
    _s("risk.risk_per_trade_pct", BASIC, "Risk per trade", unit=PCT, minimum=0, above_minimum=True, maximum=100,
       help="Loss at the stop, as a share of equity (risk check 1)."),
    _s("risk.max_stop_distance_pct", BASIC, "Largest stop distance", unit=PCT, minimum=0, above_minimum=True,
       maximum=100, help="Entries whose stop is further than this are refused (risk check 2)."),
    _s("risk.max_portfolio_risk_pct", BASIC, "Largest portfolio risk", unit=PCT, minimum=0, above_minimum=True,
       maximum=100, help="Sum of all open positions' risk at their stops (risk check 3)."),
    _s("risk.max_daily_loss_pct", BASIC, "Largest daily loss", unit=PCT, minimum=0, above_minimum=True,
       maximum=100, help="No new entries once the day's loss reaches this (risk check 4)."),
    _s("risk.max_consecutive_losses", BASIC, "Losses in a row before a pause", kind=INTEGER, minimum=1,
       maximum=100, help="Risk check 5."),
    _s("risk.cooldown_minutes", BASIC, "Pause after a losing streak", unit="minutes", minimum=0, maximum=10_080,
       help="Risk check 6: how long entries wait after the streak (at most a week)."),
    _s("risk.max_correlation", BASIC, "Largest correlation", minimum=-1, maximum=1,
       help="Entries correlated more than this with an open position are refused (risk check 7)."),
    _s("risk.correlation_window", BASIC, "Correlation window", kind=INTEGER, unit="candles", minimum=3,
       maximum=10_000),
    _s("risk.min_correlation_returns", BASIC, "Fewest returns to correlate", kind=INTEGER, unit="candles",
       minimum=2, maximum=9_999, help="With fewer overlapping returns the correlation check passes, saying so."),
    _s("risk.enabled", BASIC, "Risk checks on", kind=LIST,
       choices=("risk_per_trade", "stop_loss", "portfolio_risk", "daily_loss", "consecutive_losses", "cooldown",
                "correlation")),
    # -- which strategies vote (strategy) -------------------------------------------------------------
    _s("enabled", STRATEGY, "Strategies that vote", kind=LIST,
       choices=("rsi", "macd", "bollinger", "volume", "stochastic")),
    _s("min_agree", STRATEGY, "Strategies that must agree", kind=INTEGER, minimum=1, maximum=5,
       help="At most the number of strategies that vote."),
    _s("weights", STRATEGY, "Strategy weight", minimum=0, above_minimum=True, maximum=10,
       help="How much each strategy's vote counts (1 each by default)."),
    _s("min_vote_weight", STRATEGY, "Weight that must agree", minimum=0, above_minimum=True, maximum=50,
       optional=True, help="With weights: the weighted votes a direction needs; default: min_agree's share."),
    _s("ai_mode", STRATEGY, "Grok's part", kind=CHOICE, choices=("off", "advisory", "gate", "voter"),
       help="off: not asked; advisory: asked, recorded and shown, not traded; gate: trade only when Grok agrees "
            "with the consensus; voter: Grok votes as a sixth strategy. Without an answer the consensus trades."),
    _s("ai_weight", STRATEGY, "Grok's vote weight", minimum=0, above_minimum=True, maximum=10,
       help="voter: how much Grok's vote counts (a strategy's counts 1 unless weighted)."),
    _s("ai_min_confidence", STRATEGY, "Grok's least confidence", minimum=0, maximum=1,
       help="gate and voter: an answer less confident than this counts as no answer."),
    _s("ai_deadline_s", STRATEGY, "Wait for Grok", unit="seconds", minimum=1, maximum=300,
       help="How long a candle's decision waits for Grok (retries included) before the consensus trades alone."),
    # -- indicator parameters (indicators) ------------------------------------------------------------
    _s("rsi.length", INDICATORS, "RSI length", kind=INTEGER, unit="candles", minimum=2, maximum=100),
    _s("rsi.oversold", INDICATORS, "RSI oversold level", minimum=0, above_minimum=True, maximum=100,
       below_maximum=True),
    _s("rsi.overbought", INDICATORS, "RSI overbought level", minimum=0, above_minimum=True, maximum=100,
       below_maximum=True),
    _s("macd.fast", INDICATORS, "MACD fast length", kind=INTEGER, unit="candles", minimum=2, maximum=100),
    _s("macd.slow", INDICATORS, "MACD slow length", kind=INTEGER, unit="candles", minimum=3, maximum=200),
    _s("macd.signal", INDICATORS, "MACD signal length", kind=INTEGER, unit="candles", minimum=2, maximum=100),
    _s("bollinger.length", INDICATORS, "Bollinger length", kind=INTEGER, unit="candles", minimum=2, maximum=200),
    _s("bollinger.std", INDICATORS, "Bollinger width", unit="standard deviations", minimum=0, above_minimum=True,
       maximum=5),
    _s("volume.length", INDICATORS, "Volume average length", kind=INTEGER, unit="candles", minimum=1, maximum=200),
    _s("volume.min_ratio", INDICATORS, "Volume spike ratio", unit="x the average", minimum=1, above_minimum=True,
       maximum=20),
    _s("stochastic.k", INDICATORS, "Stochastic %K length", kind=INTEGER, unit="candles", minimum=1, maximum=100),
    _s("stochastic.d", INDICATORS, "Stochastic %D length", kind=INTEGER, unit="candles", minimum=2, maximum=20),
    _s("stochastic.smooth_k", INDICATORS, "Stochastic %K smoothing", kind=INTEGER, unit="candles", minimum=1,
       maximum=20),
    _s("stochastic.oversold", INDICATORS, "Stochastic oversold level", minimum=0, above_minimum=True, maximum=100,
       below_maximum=True),
    _s("stochastic.overbought", INDICATORS, "Stochastic overbought level", minimum=0, above_minimum=True,
       maximum=100, below_maximum=True),
    _s("atr_length", INDICATORS, "ATR length", kind=INTEGER, unit="candles", minimum=1, maximum=100),
)}


def label(path: str) -> str:
    """The setting's name as users see it (the path itself for anything not in the table)."""
    found = SETTINGS.get(path)
    return found.label if found else path


def check(path: str, value: Any) -> None:
    SETTINGS[path].check(value)
