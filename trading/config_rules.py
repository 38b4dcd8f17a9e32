"""Configuration suggestions from documented rules over a session's recent results.

Until AI tuning arrives, suggestions come from these rules over the session's running metrics
(``RunningMetrics.snapshot()``) and its last closed trades (``Trade.to_dict()``, newest first).
Each names the parameter, its current and proposed value, the reason with the numbers, the rule,
and the tier a proposal of it would take (``trading.tuning_table``: NONE lowers risk and applies at
once; GREEN applies at once; YELLOW needs a confirmation; RED an explicit approval).

1. ``low_win_rate``: at least 20 trades and a win rate below 35% → require one more agreeing
   strategy (``min_agree`` + 1); when every enabled strategy must agree already, raise
   ``min_confidence`` by 0.1 instead.
2. ``stopped_after_running``: at least 5 of the recent stop-loss exits, and at least half of them,
   had run in profit by more than 1.5x their stop distance first → trail the stop
   (``trailing_stop_pct`` = ``stop_loss_pct``), or if a trailing stop is on already, bring the take
   profit to the median of those runs.
3. ``deep_drawdown``: max drawdown above 20% → halve ``leverage`` (at least 1).
4. ``fees_eat_profit``: at least 10 recent trades whose fees exceed 30% of their absolute gross
   PnL → trade less: ``min_confidence`` + 0.1 (at most 1).

Pure Python, no I/O.
"""

from __future__ import annotations

import statistics
from dataclasses import asdict, dataclass
from typing import Any

from trading.tuning_table import TUNABLES

RECENT_TRADES = 50
MIN_TRADES_WIN_RATE = 20
LOW_WIN_RATE = 0.35
MIN_RUNNING_STOPS = 5
RUN_MULTIPLE = 1.5
MAX_DRAWDOWN = 0.20
MIN_TRADES_FEES = 10
FEE_SHARE = 0.30


@dataclass(frozen=True)
class Suggestion:
    rule: str
    parameter: str
    current: Any
    proposed: Any
    reason: str
    tier: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _suggest(rule: str, parameter: str, current: Any, proposed: Any, reason: str) -> Suggestion:
    """A suggestion self-tuning can take as it is: its value on the parameter's grid and within one
    adjustment (``trading.tuning_table``), with the tier a proposal of it takes."""
    tunable = TUNABLES[parameter]
    if isinstance(proposed, (int, float)) and not isinstance(proposed, bool):
        snapped = tunable.nearest(current, proposed)
        proposed = int(snapped) if isinstance(proposed, int) else snapped
    return Suggestion(rule, parameter, current, proposed, reason, tunable.tier_of(current, proposed).name)


def _more_confidence(rule: str, current: float, reason: str) -> Suggestion | None:
    proposed = round(min(1.0, current + 0.1), 4)
    return _suggest(rule, "min_confidence", current, proposed, reason) if proposed > current else None


def suggest(metrics: dict[str, Any], trades: list[dict[str, Any]], engine: dict[str, Any],
            analysis: dict[str, Any]) -> list[Suggestion]:
    """The suggestions the rules make; one per parameter (the first rule that names it wins)."""
    recent = trades[:RECENT_TRADES]
    found = [s for s in (
        _low_win_rate(metrics, engine, analysis),
        _stopped_after_running(recent, engine),
        _deep_drawdown(metrics, engine),
        _fees_eat_profit(recent, engine),
    ) if s is not None]
    seen: set[str] = set()
    unique = []
    for s in found:
        if s.proposed == s.current:
            continue  # nothing left to change once on the parameter's grid
        if s.parameter not in seen:
            seen.add(s.parameter)
            unique.append(s)
    return unique


def _low_win_rate(metrics: dict[str, Any], engine: dict[str, Any], analysis: dict[str, Any]) -> Suggestion | None:
    count, rate = int(metrics.get("trades") or 0), metrics.get("win_rate")
    if count < MIN_TRADES_WIN_RATE or rate is None or rate >= LOW_WIN_RATE:
        return None
    reason = f"win rate {rate:.0%} over {count} trades is below {LOW_WIN_RATE:.0%}: wait for broader agreement"
    current, enabled = int(analysis.get("min_agree", 3)), len(analysis.get("enabled") or ())
    if current < enabled:
        return _suggest("low_win_rate", "min_agree", current, current + 1, reason)
    return _more_confidence("low_win_rate", float(engine.get("min_confidence", 0.0)), reason)


def _stop_distance(trade: dict[str, Any], stop_loss_pct: float) -> float:
    return float(trade["entry_price"]) * float(trade["quantity"]) * stop_loss_pct / 100


def _stopped_after_running(trades: list[dict[str, Any]], engine: dict[str, Any]) -> Suggestion | None:
    stop_pct = engine.get("stop_loss_pct")
    if not stop_pct:
        return None
    stops = [t for t in trades if t.get("close_reason") == "stop_loss"]
    ran = [t for t in stops if float(t["max_favorable"]) > RUN_MULTIPLE * _stop_distance(t, stop_pct)]
    if len(ran) < MIN_RUNNING_STOPS or len(ran) * 2 < len(stops):
        return None
    reason = (f"{len(ran)} of {len(stops)} recent stop-loss exits had first run in profit by more than "
              f"{RUN_MULTIPLE}x their stop distance")
    trailing = engine.get("trailing_stop_pct")
    if trailing is None:
        return _suggest("stopped_after_running", "trailing_stop_pct", None, stop_pct,
                        reason + ": a trailing stop would have kept part of those runs")
    runs = [float(t["max_favorable"]) / (float(t["entry_price"]) * float(t["quantity"])) * 100 for t in ran]
    proposed = round(statistics.median(runs), 2)
    current = engine.get("take_profit_pct")
    if current is not None and proposed >= current:
        return None
    return _suggest("stopped_after_running", "take_profit_pct", current, proposed,
                    reason + f": a take profit at their median run ({proposed}%) would have closed them in profit")


def _deep_drawdown(metrics: dict[str, Any], engine: dict[str, Any]) -> Suggestion | None:
    drawdown = metrics.get("max_drawdown")
    leverage = int(engine.get("leverage", 1))
    if drawdown is None or drawdown <= MAX_DRAWDOWN or leverage <= 1:
        return None
    return _suggest("deep_drawdown", "leverage", leverage, max(1, leverage // 2),
                    f"max drawdown {drawdown:.0%} is above {MAX_DRAWDOWN:.0%}: halve the leverage")


def _fees_eat_profit(trades: list[dict[str, Any]], engine: dict[str, Any]) -> Suggestion | None:
    if len(trades) < MIN_TRADES_FEES:
        return None
    fees = sum(float(t["entry_fee"]) + float(t["exit_fee"]) for t in trades)
    gross = sum(abs(float(t["gross_pnl"])) for t in trades)
    if gross <= 0 or fees <= FEE_SHARE * gross:
        return None
    return _more_confidence("fees_eat_profit", float(engine.get("min_confidence", 0.0)),
                            f"fees {fees:.8g} are {fees / gross:.0%} of the gross PnL {gross:.8g} of the last "
                            f"{len(trades)} trades (above {FEE_SHARE:.0%}): trade only on stronger signals")
