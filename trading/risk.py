"""The seven risk checks of DESIGN §4, each a named, pure function whose verdict carries its numbers.

Equity is cash + unrealised PnL at the last close. "Loss at the stop" of a position is
``quantity * |entry - stop|`` on the losing side plus the taker fees of entering and leaving
(0 for a stop already in profit). Loss counts use realised PnL. The Engine gathers an
``EntryCandidate`` and a ``RiskContext`` and runs ``assess_entry``; an entry goes ahead only if
every enabled check passes. A disabled check still reports, with ``enabled=False``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from trading.broker import effective_stop
from trading.models import Position, Side
from trading.settings import RISK_CHECK_NAMES, RiskSettings

# Relative slack for "<=" comparisons of amounts computed along different float paths.
_TOLERANCE = 1e-9


@dataclass(frozen=True, slots=True)
class RiskCheckResult:
    name: str
    passed: bool
    enabled: bool
    reason: str
    values: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, object]:
        return {
            "name": self.name,
            "passed": self.passed,
            "enabled": self.enabled,
            "reason": self.reason,
            "values": dict(self.values),
        }


# EntryCandidate and RiskContext are built on every risk-checked entry and never shared: plain slots,
# read-only by convention (a frozen __init__ costs ~7x). The verdicts stay frozen: ALL_OFF and
# _OFF are shared instances.
@dataclass(slots=True)
class EntryCandidate:
    symbol: str
    side: Side
    entry_price: float
    quantity: float  # already sized and rounded
    stop_loss: float | None
    liquidation_price: float  # 0.0: cannot be liquidated
    taker_fee: float
    min_notional: float


@dataclass(slots=True)
class RiskContext:
    now: int  # market time (ms)
    equity: float
    day_start_equity: float
    positions: tuple[Position, ...]
    consecutive_losses: int
    streak_tripped_at: int | None  # market time when check 5 tripped, None if it has not
    closes: dict[str, list[float]]  # recent closes per symbol, oldest first


def loss_at_stop(side: Side, quantity: float, entry: float, stop: float | None, taker_fee: float) -> float:
    """What reaching the stop costs, fees included; infinite without a stop."""
    if stop is None:
        return math.inf
    adverse = (entry - stop) if side is Side.LONG else (stop - entry)
    return quantity * (max(adverse, 0.0) + (entry + stop) * taker_fee)


def size_for_risk(equity: float, risk_pct: float, side: Side, entry: float, stop: float, taker_fee: float) -> float:
    """Unrounded quantity whose loss at the stop equals risk_pct of equity."""
    per_unit = loss_at_stop(side, 1.0, entry, stop, taker_fee)
    return equity * risk_pct / 100 / per_unit if per_unit > 0 else 0.0


def check_risk_per_trade(c: EntryCandidate, ctx: RiskContext, s: RiskSettings) -> RiskCheckResult:
    loss = loss_at_stop(c.side, c.quantity, c.entry_price, c.stop_loss, c.taker_fee)
    limit = ctx.equity * s.risk_per_trade_pct / 100
    notional = c.quantity * c.entry_price
    values = {
        "loss_at_stop": loss,
        "limit": limit,
        "equity": ctx.equity,
        "quantity": c.quantity,
        "notional": notional,
    }
    if c.quantity <= 0:
        return RiskCheckResult("risk_per_trade", False, True, "position sizes to zero at this stop", values)
    if notional < c.min_notional:
        reason = f"notional {notional:.8g} is below the minimum {c.min_notional:.8g}"
        return RiskCheckResult("risk_per_trade", False, True, reason, values)
    passed = loss <= limit * (1 + _TOLERANCE)
    reason = f"loss at stop {loss:.8g} {'<=' if passed else '>'} {s.risk_per_trade_pct}% of equity ({limit:.8g})"
    return RiskCheckResult("risk_per_trade", passed, True, reason, values)


def check_stop_loss(c: EntryCandidate, ctx: RiskContext, s: RiskSettings) -> RiskCheckResult:
    if c.stop_loss is None:
        return RiskCheckResult("stop_loss", False, True, "entry has no stop loss", {})
    distance_pct = abs(c.entry_price - c.stop_loss) / c.entry_price * 100
    values = {
        "entry": c.entry_price,
        "stop": c.stop_loss,
        "distance_pct": distance_pct,
        "max_distance_pct": s.max_stop_distance_pct,
        "liquidation_price": c.liquidation_price,
    }
    wrong_side = c.stop_loss >= c.entry_price if c.side is Side.LONG else c.stop_loss <= c.entry_price
    if wrong_side:
        return RiskCheckResult("stop_loss", False, True, f"stop {c.stop_loss} is not on the losing side", values)
    if distance_pct > s.max_stop_distance_pct * (1 + _TOLERANCE):
        reason = f"stop is {distance_pct:.4g}% from entry, above {s.max_stop_distance_pct}%"
        return RiskCheckResult("stop_loss", False, True, reason, values)
    if c.liquidation_price > 0:
        beyond = c.liquidation_price < c.stop_loss if c.side is Side.LONG else c.liquidation_price > c.stop_loss
        if not beyond:
            reason = f"liquidation price {c.liquidation_price:.8g} lies inside the stop {c.stop_loss}"
            return RiskCheckResult("stop_loss", False, True, reason, values)
    reason = f"stop {distance_pct:.4g}% from entry (max {s.max_stop_distance_pct}%), liquidation beyond it"
    return RiskCheckResult("stop_loss", True, True, reason, values)


def check_portfolio_risk(c: EntryCandidate, ctx: RiskContext, s: RiskSettings, taker_fee: float) -> RiskCheckResult:
    open_risk = sum(
        loss_at_stop(p.side, p.quantity, p.entry_price, effective_stop(p)[0], taker_fee) for p in ctx.positions
    )
    new_risk = loss_at_stop(c.side, c.quantity, c.entry_price, c.stop_loss, c.taker_fee)
    total = open_risk + new_risk
    limit = ctx.equity * s.max_portfolio_risk_pct / 100
    values = {"open_risk": open_risk, "new_risk": new_risk, "total": total, "limit": limit}
    passed = total <= limit * (1 + _TOLERANCE)
    relation = "<=" if passed else ">"
    reason = f"loss at all stops {total:.8g} {relation} {s.max_portfolio_risk_pct}% of equity ({limit:.8g})"
    return RiskCheckResult("portfolio_risk", passed, True, reason, values)


def check_daily_loss(ctx: RiskContext, s: RiskSettings) -> RiskCheckResult:
    loss = ctx.day_start_equity - ctx.equity
    limit = ctx.day_start_equity * s.max_daily_loss_pct / 100
    values = {
        "day_start_equity": ctx.day_start_equity,
        "equity": ctx.equity,
        "loss_today": loss,
        "limit": limit,
    }
    # Reaching the limit stops entries: "at most 3 %" leaves no room for another losing trade.
    passed = loss < limit
    reason = f"loss since the UTC day's start {loss:.8g} {'<' if passed else '>='} limit {limit:.8g}"
    return RiskCheckResult("daily_loss", passed, True, reason, values)


def check_consecutive_losses(ctx: RiskContext, s: RiskSettings) -> RiskCheckResult:
    values = {"consecutive_losses": float(ctx.consecutive_losses), "max": float(s.max_consecutive_losses)}
    passed = ctx.consecutive_losses < s.max_consecutive_losses
    reason = (
        f"{ctx.consecutive_losses} losing trade(s) in a row (stop at {s.max_consecutive_losses})"
        if passed
        else f"{ctx.consecutive_losses} losing trades in a row: no new entry until the cooldown ends"
    )
    return RiskCheckResult("consecutive_losses", passed, True, reason, values)


def cooldown_end(tripped_at: int, s: RiskSettings) -> int:
    return tripped_at + round(s.cooldown_minutes * 60_000)


def check_cooldown(ctx: RiskContext, s: RiskSettings) -> RiskCheckResult:
    if ctx.streak_tripped_at is None:
        return RiskCheckResult("cooldown", True, True, "no cooldown running", {"now": float(ctx.now)})
    end = cooldown_end(ctx.streak_tripped_at, s)
    values = {"now": float(ctx.now), "tripped_at": float(ctx.streak_tripped_at), "ends_at": float(end)}
    passed = ctx.now >= end
    reason = f"cooldown {'ended' if passed else 'runs until'} {end} ({s.cooldown_minutes} min after the loss streak)"
    return RiskCheckResult("cooldown", passed, True, reason, values)


def returns(closes: list[float]) -> list[float]:
    return [closes[i] / closes[i - 1] - 1 for i in range(1, len(closes))]


def correlation(a: list[float], b: list[float]) -> float | None:
    """Pearson correlation of the common tail of two series; None when either is flat."""
    n = min(len(a), len(b))
    a, b = a[-n:], b[-n:]
    mean_a, mean_b = math.fsum(a) / n, math.fsum(b) / n
    da = [x - mean_a for x in a]
    db = [y - mean_b for y in b]
    var_a, var_b = math.fsum(x * x for x in da), math.fsum(y * y for y in db)
    if var_a == 0 or var_b == 0:
        return None
    return math.fsum(x * y for x, y in zip(da, db, strict=True)) / math.sqrt(var_a * var_b)


def check_correlation(c: EntryCandidate, ctx: RiskContext, s: RiskSettings) -> RiskCheckResult:
    same_direction = [p for p in ctx.positions if p.side is c.side and p.symbol != c.symbol]
    if not same_direction:
        return RiskCheckResult("correlation", True, True, "no open position in the same direction", {})
    new_returns = returns(ctx.closes.get(c.symbol, []))
    values: dict[str, float] = {"max_correlation": s.max_correlation}
    worst: tuple[float, str] | None = None
    for p in same_direction:
        other = returns(ctx.closes.get(p.symbol, []))
        if min(len(new_returns), len(other)) < s.min_correlation_returns:
            values[f"returns_{p.symbol}"] = float(min(len(new_returns), len(other)))
            continue
        rho = correlation(new_returns, other)
        if rho is None:
            continue
        values[f"correlation_{p.symbol}"] = rho
        if worst is None or rho > worst[0]:
            worst = (rho, p.symbol)
    if worst is None:
        reason = f"fewer than {s.min_correlation_returns} common returns with open positions: not assessed"
        return RiskCheckResult("correlation", True, True, reason, values)
    passed = worst[0] <= s.max_correlation
    reason = f"highest correlation {worst[0]:.4f} with {worst[1]} {'<=' if passed else '>'} {s.max_correlation}"
    return RiskCheckResult("correlation", passed, True, reason, values)


def assess_entry(c: EntryCandidate, ctx: RiskContext, s: RiskSettings) -> tuple[RiskCheckResult, ...]:
    """All seven verdicts in order; a disabled check is reported as off and not computed.
    Written out (no table of lambdas): this runs on every entry of a backtest."""
    on = s.enabled
    return (
        check_risk_per_trade(c, ctx, s) if "risk_per_trade" in on else _OFF["risk_per_trade"],
        check_stop_loss(c, ctx, s) if "stop_loss" in on else _OFF["stop_loss"],
        check_portfolio_risk(c, ctx, s, c.taker_fee) if "portfolio_risk" in on else _OFF["portfolio_risk"],
        check_daily_loss(ctx, s) if "daily_loss" in on else _OFF["daily_loss"],
        check_consecutive_losses(ctx, s) if "consecutive_losses" in on else _OFF["consecutive_losses"],
        check_cooldown(ctx, s) if "cooldown" in on else _OFF["cooldown"],
        check_correlation(c, ctx, s) if "correlation" in on else _OFF["correlation"],
    )


_OFF = {name: RiskCheckResult(name, True, False, "check is off") for name in RISK_CHECK_NAMES}
ALL_OFF = tuple(_OFF[name] for name in RISK_CHECK_NAMES)


def all_passed(results: tuple[RiskCheckResult, ...]) -> bool:
    return all(r.passed for r in results)
