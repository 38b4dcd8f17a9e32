"""Every parameter self-tuning may change: its tier, bounds, largest step and cooldown.

GREEN applies at once and notifies; YELLOW waits for a one-time confirmation by the owner; RED
waits for the owner to type an exact approval text. What lowers risk is never tiered: lowering
leverage or size, tightening or adding a stop, lowering a risk limit, a longer pause after losses,
switching a risk check on, asking for more agreement or confidence. Stop, close and flatten are
not parameters at all and never pass through here.

Pure Python, no I/O: the application layer checks a proposal with it before a workflow sees it,
and the docs (docs/tuning.md) print the same table.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import IntEnum
from typing import Any

from trading.errors import InvalidInput
from trading.setting_catalog import SETTINGS, label

HOUR_S = 3600.0


class Tier(IntEnum):
    """Ordered: a proposal takes the tier of its most dangerous change."""

    NONE = 0  # lowers risk: applies at once, no cooldown
    GREEN = 1
    YELLOW = 2
    RED = 3


# Which way a parameter raises risk: "up" (a larger value is riskier), "down" (a smaller one is),
# "any" (no direction is safer: every change is tiered).
UP, DOWN, ANY = "up", "down", "any"


@dataclass(frozen=True)
class Tunable:
    path: str  # as the settings API names it: "leverage", "risk.max_daily_loss_pct", "rsi.oversold"
    tier: Tier
    minimum: float
    maximum: float
    step: float
    max_change: float  # the largest change one adjustment may make (absolute)
    cooldown_s: float
    riskier: str = ANY
    optional: bool = False  # None (off) is allowed; turning it off is a change in the riskier direction
    max_factor: float | None = None  # sizes: one adjustment at most multiplies by this (else max_change)
    name: str = ""  # what the settings catalog does not name

    @property
    def label(self) -> str:
        return self.name or label(self.path)

    @property
    def largest_change(self) -> str:
        return f"x{self.max_factor:g}" if self.max_factor is not None else f"{self.max_change:g}"

    def lowers_risk(self, current: Any, proposed: Any) -> bool:
        """Whether the change only lowers risk (never tiered, never cooled down)."""
        if self.riskier == ANY or current == proposed:
            return False
        if self.optional:
            if proposed is None:
                return False  # switching a stop or a limit off
            if current is None:
                return True  # adding a stop
        return proposed < current if self.riskier == UP else proposed > current

    def check(self, current: Any, proposed: Any, *, restoring: bool = False) -> None:
        """``InvalidInput`` naming the bound a proposed value breaks. A restore returns to a saved
        state: only the bounds apply, not the largest step."""
        if proposed is None:
            if self.optional:
                return
            raise InvalidInput(self.path, f"{self.label} cannot be switched off")
        if isinstance(proposed, bool) or not isinstance(proposed, (int, float)) or not math.isfinite(proposed):
            raise InvalidInput(self.path, f"{self.label} must be a number, got {proposed!r}")
        if not self.minimum <= proposed <= self.maximum:
            raise InvalidInput(self.path, f"{self.label} may be tuned from {self.minimum:g} to {self.maximum:g}, "
                                          f"got {proposed:g}")
        steps = (proposed - self.minimum) / self.step
        if abs(steps - round(steps)) > 1e-6:
            raise InvalidInput(self.path, f"{self.label} moves in steps of {self.step:g} from {self.minimum:g}, "
                                          f"got {proposed:g}")
        if restoring or current is None or self.lowers_risk(current, proposed):
            return
        if self.max_factor is not None:
            if current > 0 and proposed > current * self.max_factor + 1e-9:
                raise InvalidInput(self.path, f"{self.label} may grow at most {self.max_factor:g}x in one "
                                              f"adjustment ({current:g} → {proposed:g})")
            return
        if abs(proposed - current) > self.max_change + 1e-9:
            raise InvalidInput(self.path, f"{self.label} may change by at most {self.max_change:g} in one "
                                          f"adjustment ({current:g} → {proposed:g})")

    def nearest(self, current: Any, wanted: float) -> float:
        """The value closest to ``wanted`` that one adjustment from ``current`` may reach: within the
        bounds, on the step grid, no further than the largest change (what a rule should propose)."""
        value = min(max(wanted, self.minimum), self.maximum)
        if isinstance(current, (int, float)) and not self.lowers_risk(current, value):
            if self.max_factor is not None and current > 0:
                value = min(value, current * self.max_factor)
            elif self.max_factor is None:
                value = min(max(value, current - self.max_change), current + self.max_change)
        snapped = self.minimum + round((value - self.minimum) / self.step) * self.step
        return round(min(max(snapped, self.minimum), self.maximum), 10)

    def tier_of(self, current: Any, proposed: Any) -> Tier:
        return Tier.NONE if self.lowers_risk(current, proposed) else self.tier


def _t(path: str, tier: Tier, minimum: float, maximum: float, step: float, max_change: float, cooldown_h: float,
       riskier: str = ANY, optional: bool = False, max_factor: float | None = None, name: str = "") -> Tunable:
    return Tunable(path, tier, minimum, maximum, step, max_change, cooldown_h * HOUR_S, riskier, optional,
                   max_factor, name)


G, Y, R = Tier.GREEN, Tier.YELLOW, Tier.RED
TUNABLES: dict[str, Tunable] = {t.path: t for t in (
    # GREEN: what the strategies listen for. Asking for more agreement or confidence lowers risk.
    _t("min_confidence", G, 0.0, 0.95, 0.05, 0.2, 2, riskier=DOWN),
    _t("min_agree", G, 1, 5, 1, 1, 2, riskier=DOWN),
    _t("rsi.length", G, 5, 50, 1, 7, 1),
    _t("rsi.oversold", G, 10, 45, 1, 10, 1),
    _t("rsi.overbought", G, 55, 90, 1, 10, 1),
    _t("macd.fast", G, 3, 50, 1, 6, 2),
    _t("macd.slow", G, 10, 100, 1, 13, 2),
    _t("macd.signal", G, 3, 50, 1, 5, 2),
    _t("bollinger.length", G, 5, 100, 1, 10, 2),
    _t("bollinger.std", G, 1.0, 4.0, 0.1, 0.5, 2),
    _t("volume.min_ratio", G, 1.1, 5.0, 0.1, 1.0, 1),
    _t("stochastic.oversold", G, 5, 45, 1, 10, 1),
    _t("stochastic.overbought", G, 55, 95, 1, 10, 1),
    # YELLOW: where positions exit and how large they are. Tightening a stop, adding one, or a
    # smaller size or leverage lowers risk.
    _t("stop_loss_pct", Y, 0.2, 20, 0.1, 2, 6, riskier=UP, optional=True),
    _t("trailing_stop_pct", Y, 0.2, 20, 0.1, 2, 6, riskier=UP, optional=True),
    _t("take_profit_pct", Y, 0.2, 50, 0.1, 5, 6, optional=True),
    _t("leverage", Y, 1, 20, 1, 5, 6, riskier=UP),
    _t("fixed_notional", Y, 0, 1e9, 0.01, 0, 6, riskier=UP, max_factor=2),
    _t("fixed_quantity", Y, 0, 1e9, 1e-8, 0, 6, riskier=UP, max_factor=2),
    # RED: the seven risk checks' limits. Raising one (a shorter pause after a losing streak) needs
    # the typed approval; lowering one never waits.
    _t("risk.risk_per_trade_pct", R, 0.1, 5, 0.1, 1, 6, riskier=UP),
    _t("risk.max_stop_distance_pct", R, 0.5, 20, 0.5, 5, 6, riskier=UP),
    _t("risk.max_portfolio_risk_pct", R, 1, 50, 1, 10, 6, riskier=UP),
    _t("risk.max_daily_loss_pct", R, 0.5, 20, 0.5, 5, 6, riskier=UP),
    _t("risk.max_consecutive_losses", R, 1, 20, 1, 3, 6, riskier=UP),
    _t("risk.cooldown_minutes", R, 0, 1440, 5, 60, 1, riskier=DOWN),
    _t("risk.max_correlation", R, 0.0, 1.0, 0.05, 0.2, 6, riskier=UP),
)}
# Turning a real trading engine on: RED, cooldown 1 h (a real session starts only after it).
REAL_TRADING = _t("real_trading", R, 0, 1, 1, 1, 1, riskier=UP, name="Real trading engine on")
ALL_TUNABLES: dict[str, Tunable] = {**TUNABLES, REAL_TRADING.path: REAL_TRADING}
# What a restore or a settings write may carry that is no tuning parameter: any change to it needs a
# person's confirmation (YELLOW); what only a fresh account may change is never restored.
UNTABLED_TIER = Tier.YELLOW
# The list of risk checks that run: switching one off is as dangerous as the riskiest risk limit (RED);
# switching one on only lowers risk.
RISK_CHECKS = "risk.enabled"
NEVER_RESTORED = frozenset({"market", "account_currency", "starting_balance", "symbols"})


@dataclass(frozen=True)
class Change:
    path: str
    current: Any
    proposed: Any

    @property
    def tier(self) -> Tier:
        found = ALL_TUNABLES.get(self.path)
        if self.path == RISK_CHECKS:
            return Tier.RED if set(self.current or ()) - set(self.proposed or ()) else Tier.NONE
        if found is None:
            return Tier.NONE if self.current == self.proposed else UNTABLED_TIER
        return found.tier_of(self.current, self.proposed)


def tunable(path: str) -> Tunable:
    found = ALL_TUNABLES.get(path)
    if found is None:
        raise InvalidInput(path, f"{label(path)} is not a tunable parameter; tunable: {', '.join(TUNABLES)}")
    return found


def check_changes(changes: list[Change], *, restoring: bool = False) -> Tier:
    """The tier of a proposal of ``changes`` (its most dangerous one), or ``InvalidInput`` naming the
    first change out of bounds. A restore may carry untabled settings; a proposal may not."""
    if not changes:
        raise InvalidInput("changes", "a proposal changes at least one parameter")
    seen: set[str] = set()
    for change in changes:
        if change.path in seen:
            raise InvalidInput(change.path, f"{label(change.path)} appears twice in one proposal")
        seen.add(change.path)
        if change.path in NEVER_RESTORED:
            raise InvalidInput(change.path, f"{label(change.path)} changes only on a fresh account, never by tuning")
        if restoring and change.path not in ALL_TUNABLES:
            continue
        tunable(change.path).check(change.current, change.proposed, restoring=restoring)
        if change.current == change.proposed:
            raise InvalidInput(change.path, f"{label(change.path)} is {change.current!r} already")
    return max(c.tier for c in changes)


def approval_text(changes: list[Change]) -> str:
    """The exact text a person types to approve a RED proposal: it names each parameter and value."""
    parts = ", ".join(f"{c.path} = {_value_text(c.proposed)}" for c in changes)
    return f"I approve {parts}"


def _value_text(value: Any) -> str:
    if value is None:
        return "off"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def cooldown_s(path: str, tier_overrides: dict[Tier, float | None] | None = None) -> float:
    """The cooldown after ``path`` changed: the table's, unless settings override its tier's."""
    found = ALL_TUNABLES.get(path)
    if found is None:
        return 0.0
    override = (tier_overrides or {}).get(found.tier)
    return found.cooldown_s if override is None else override


def get_path(settings: dict[str, Any], path: str) -> Any:
    """A value of a settings dict by its dotted path (None where absent)."""
    node: Any = settings
    for part in path.split("."):
        if not isinstance(node, dict):
            return None
        node = node.get(part)
    return node


def value_in(engine: dict[str, Any], analysis: dict[str, Any], path: str) -> Any:
    """A parameter's value in a session's engine or analysis settings."""
    found = get_path(engine, path)
    return found if found is not None else get_path(analysis, path)


def patch_of(changes: list[Change], *, analysis: bool) -> dict[str, Any] | None:
    """The nested settings patch of the engine's (or the analysis') changes, as the session merges it."""
    patch: dict[str, Any] = {}
    for change in changes:
        if change.path == REAL_TRADING.path or _is_analysis(change.path) != analysis:
            continue
        node = patch
        *parents, leaf = change.path.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = change.proposed
    return patch or None


def _is_analysis(path: str) -> bool:
    found = SETTINGS.get(path) or SETTINGS.get(path.split(".")[0])
    return found is not None and found.section != "basic"
