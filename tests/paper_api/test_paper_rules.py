"""The pure rules behind trade analyses and config suggestions: each rule fires on its numbers
and stays quiet just below them."""

from __future__ import annotations

import pytest

from trading.analysis_settings import AnalysisSettings
from trading.config_rules import suggest
from trading.settings import EngineSettings
from trading.trade_review import review_trade
from trading.tuning_table import Change, Tier, check_changes

ENGINE = EngineSettings().to_dict()
ANALYSIS = AnalysisSettings().to_dict()


def trade(**changes) -> dict:
    base = {"id": 7, "symbol": "ETHBTC", "side": "long", "quantity": 10.0, "leverage": 10, "entry_time": 1_000,
            "entry_price": 100.0, "exit_time": 301_000, "exit_price": 98.0, "entry_fee": 0.4, "exit_fee": 0.39,
            "funding": 0.0, "gross_pnl": -20.0, "net_pnl": -20.79, "max_favorable": 35.0, "max_adverse": -20.0,
            "close_reason": "stop_loss"}
    return {**base, **changes}


def snapshot(*directions: str, consensus: str = "long") -> dict:
    names = ("rsi", "macd", "bollinger", "volume", "stochastic")
    return {"direction": consensus, "confidence": 0.6, "reason": "3 of 5 agree",
            "verdicts": [{"strategy": n, "direction": d, "confidence": 0.5, "reason": "x"}
                         for n, d in zip(names, directions, strict=False)]}


def test_review_counts_backing_excursions_and_says_what_happened():
    row = {"status": "closed", "trade": trade(),
           "entry_analysis": snapshot("long", "long", "long", "short", "neutral"),
           "exit_analysis": {**snapshot("short", "short", "neutral", "neutral", "neutral", consensus="short"),
                             "indicators": {"rsi": 71.5, "atr": None}}}
    review = review_trade(row)
    assert review.entry is not None and review.entry.indicators == {}  # a record from before indicators were kept
    assert review.exit is not None and review.exit.indicators == {"rsi": 71.5, "atr": None}
    assert review.outcome == "loss" and review.close_reason == "stop_loss"
    assert review.entry is not None and review.entry.agreeing == ("rsi", "macd", "bollinger")
    assert review.entry.opposing == ("volume",) and review.entry.neutral == ("stochastic",)
    assert review.exit is not None and review.exit.opposing == ("rsi", "macd")
    assert review.mfe_pct == pytest.approx(3.5) and review.mae_pct == pytest.approx(-2.0)
    assert review.return_pct == pytest.approx(-20.79 / 100 * 100)
    assert review.duration_ms == 300_000 and not review.manual_entry
    assert review.verdict.startswith("stopped out with a loss of -20.79, entered with 3 of 5 strategies agreeing "
                                     "and 1 against")
    assert "gave it back" in review.verdict


def test_review_of_a_manual_win_and_of_an_open_trade():
    win = review_trade({"status": "closed", "trade": trade(net_pnl=5.0, gross_pnl=5.8, max_favorable=6.0,
                                                             close_reason="manual")})
    assert win.manual_entry and win.entry is None and win.captured == pytest.approx(5 / 6)
    assert win.verdict == "closed by hand with a win of 5, a manual entry"
    with pytest.raises(ValueError, match="only closed trades"):
        review_trade({"status": "open", "position": {}})


def test_low_win_rate_raises_min_agree_then_min_confidence():
    metrics = {"trades": 20, "win_rate": 0.30, "max_drawdown": 0.05}
    (s,) = suggest(metrics, [], ENGINE, ANALYSIS)
    assert (s.rule, s.parameter, s.current, s.proposed, s.tier) == ("low_win_rate", "min_agree", 3, 4, "NONE")
    assert "30%" in s.reason and "20 trades" in s.reason
    assert suggest({**metrics, "trades": 19}, [], ENGINE, ANALYSIS) == []
    assert suggest({**metrics, "win_rate": 0.35}, [], ENGINE, ANALYSIS) == []
    (s,) = suggest(metrics, [], ENGINE, {**ANALYSIS, "min_agree": 5})
    assert (s.parameter, s.current, s.proposed) == ("min_confidence", 0.0, 0.1)


def test_stops_after_a_run_suggest_a_trailing_stop_then_a_nearer_take_profit():
    # Stop distance: 100 * 10 * 2% = 20; a run above 1.5x is MFE > 30.
    ran = [trade(id=i, max_favorable=35.0) for i in range(5)]
    (s,) = suggest({}, ran, ENGINE, ANALYSIS)
    assert (s.rule, s.parameter, s.current, s.proposed, s.tier) == (
        "stopped_after_running", "trailing_stop_pct", None, 2.0, "NONE")
    (s,) = suggest({}, ran, {**ENGINE, "trailing_stop_pct": 1.0}, ANALYSIS)
    # Tiers as a proposal would take them (trading.tuning_table): adding a stop lowers risk, moving
    # the take profit needs a confirmation.
    assert (s.parameter, s.current, s.proposed, s.tier) == ("take_profit_pct", 4.0, 3.5, "YELLOW")
    assert suggest({}, [trade(id=i, max_favorable=29.0) for i in range(5)], ENGINE, ANALYSIS) == []
    assert suggest({}, ran[:4], ENGINE, ANALYSIS) == []
    # Half of the stops must have run first.
    flat = [trade(id=10 + i, max_favorable=1.0) for i in range(6)]
    assert suggest({}, ran + flat, ENGINE, ANALYSIS) == []


def test_deep_drawdown_halves_leverage_and_fees_ask_for_fewer_trades():
    (s,) = suggest({"max_drawdown": 0.25}, [], ENGINE, ANALYSIS)
    assert (s.rule, s.parameter, s.current, s.proposed, s.tier) == ("deep_drawdown", "leverage", 10, 5, "NONE")
    assert suggest({"max_drawdown": 0.20}, [], ENGINE, ANALYSIS) == []
    assert suggest({"max_drawdown": 0.5}, [], {**ENGINE, "leverage": 1}, ANALYSIS) == []
    churn = [trade(id=i, gross_pnl=-1.0, net_pnl=-1.79, close_reason="manual", max_favorable=0.0)
             for i in range(10)]
    (s,) = suggest({}, churn, ENGINE, ANALYSIS)
    assert (s.rule, s.parameter, s.proposed, s.tier) == ("fees_eat_profit", "min_confidence", 0.1, "NONE")
    assert suggest({}, churn[:9], ENGINE, ANALYSIS) == []
    assert suggest({}, [trade(id=i, gross_pnl=-10.0, close_reason="manual") for i in range(10)],
                   ENGINE, ANALYSIS) == []


def test_suggestions_are_values_tuning_accepts():
    # A 1% stop (distance 10) and runs of 2.37% median: the take profit goes to 2.4 (its 0.1 grid),
    # and from 12 at most 5 down in one adjustment.
    ran = [trade(id=i, max_favorable=23.7) for i in range(5)]
    engine = {**ENGINE, "stop_loss_pct": 1.0, "trailing_stop_pct": 1.0}
    (s,) = suggest({}, ran, engine, ANALYSIS)
    assert (s.parameter, s.proposed, s.tier) == ("take_profit_pct", 2.4, "YELLOW")
    (s,) = suggest({}, ran, {**engine, "take_profit_pct": 12.0}, ANALYSIS)
    assert (s.parameter, s.proposed) == ("take_profit_pct", 7.0)
    # Already at the grid value nearest the median: no suggestion.
    assert suggest({}, ran, {**engine, "take_profit_pct": 2.4}, ANALYSIS) == []



def test_a_restore_that_switches_a_risk_check_off_is_red_and_one_that_switches_checks_on_lowers_risk():
    every = ["risk_per_trade", "stop_loss", "daily_loss"]
    assert Change("risk.enabled", every, every[:2]).tier == Tier.RED
    assert Change("risk.enabled", every[:2], every).tier == Tier.NONE
    assert check_changes([Change("risk.enabled", every, every[1:]), Change("leverage", 2, 3)], restoring=True) \
        == Tier.RED
    assert Change("enabled", ["rsi"], ["rsi", "macd"]).tier == Tier.YELLOW  # other untabled settings: a person
