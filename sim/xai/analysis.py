"""The sim's "thinking": fixed rules over the facts a prompt carries in fenced ```json blocks.

Market analysis (a block with ``indicators``): three votes, each +1 / -1 / 0 —
RSI below 35 / above 65, MACD histogram above / below 0, Bollinger %B below 0.2 / above 0.8.
Score >= 1 is long, <= -1 short, else neutral; confidence min(1, 0.5 + 0.15 * |score|), 2 decimals.
Trade review (a block with ``trade``): won when its pnl is above 0, else lost. A lost trade whose
block also carries ``settings`` with ``min_confidence`` suggests raising it by 0.1 (at most 0.95).
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

FENCED_JSON = re.compile(r"```json\s*(.*?)```", re.S | re.I)
HORIZON = "1-4 candles"
PNL_FIELDS = ("pnl", "realized_pnl", "net_pnl", "pnl_usd", "pnl_pct")


def fenced_objects(text: str) -> list[dict[str, Any]]:
    """Every fenced ```json block of ``text`` that holds a JSON object, in order."""
    found = []
    for block in FENCED_JSON.findall(text):
        try:
            doc = json.loads(block)
        except ValueError:
            continue
        if isinstance(doc, dict):
            found.append(doc)
    return found


def _number(value: Any) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return None


def _object(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _fmt(value: float) -> str:
    return f"{value:.10g}"


def _vote(value: float | None, low: float, high: float) -> int:
    """+1 below ``low`` (cheap), -1 above ``high`` (stretched), 0 between or unknown."""
    if value is None:
        return 0
    return 1 if value < low else -1 if value > high else 0


def _sign(value: float | None) -> int:
    """+1 above 0 (momentum up), -1 below, 0 at 0 or unknown."""
    return 0 if value is None else (value > 0) - (value < 0)


def market_analysis(facts: dict[str, Any]) -> dict[str, Any]:
    """The analysis of one candle's facts (``symbol``, ``interval``, ``indicators``, ``consensus``)."""
    indicators = _object(facts.get("indicators"))
    value = {name: _number(indicators.get(name)) for name in
             ("close", "rsi", "macd_histogram", "bb_percent_b", "bb_lower", "bb_upper", "atr", "volume_ratio")}
    votes = {
        "RSI": (value["rsi"], _vote(value["rsi"], 35, 65)),
        "MACD histogram": (value["macd_histogram"], _sign(value["macd_histogram"])),
        "Bollinger %B": (value["bb_percent_b"], _vote(value["bb_percent_b"], 0.2, 0.8)),
    }
    score = sum(vote for _, vote in votes.values())
    direction = "long" if score >= 1 else "short" if score <= -1 else "neutral"
    confidence = round(min(1.0, 0.5 + 0.15 * abs(score)), 2)
    symbol = str(facts.get("symbol") or "the market")
    interval = str(facts.get("interval") or "")
    used = ", ".join(f"{name} {_fmt(v)} ({vote:+d})" if v is not None else f"{name} n/a (0)"
                     for name, (v, vote) in votes.items())
    reasoning = f"{' '.join(filter(None, (symbol, interval)))}: {used}; score {score:+d}, so {direction}."
    consensus = _object(facts.get("consensus"))
    if consensus.get("direction"):
        reasoning += f" The technical consensus says {consensus['direction']}"
        if _number(consensus.get("confidence")) is not None:
            reasoning += f" at {_fmt(float(consensus['confidence']))}"
        reasoning += "."
    return {
        "symbol": symbol,
        "interval": interval,
        "direction": direction,
        "confidence": confidence,
        "reasoning": reasoning,
        "key_levels": {
            "support": [value["bb_lower"]] if value["bb_lower"] is not None else [],
            "resistance": [value["bb_upper"]] if value["bb_upper"] is not None else [],
        },
        "risks": _risks(value, direction, consensus, [n for n, (v, _) in votes.items() if v is None]),
        "horizon": HORIZON,
    }


def _risks(value: dict[str, float | None], direction: str, consensus: dict[str, Any], missing: list[str]) -> list[str]:
    risks = []
    if value["atr"] is not None and value["close"] and value["atr"] / value["close"] > 0.01:
        risks.append("high volatility")
    if value["volume_ratio"] is not None and value["volume_ratio"] < 0.8:
        risks.append("thin volume")
    other = consensus.get("direction")
    if other in ("long", "short") and direction in ("long", "short") and other != direction:
        risks.append("disagrees with the technical consensus")
    if missing:
        risks.append("missing indicators: " + ", ".join(missing))
    return risks or ["a sudden news-driven move"]


def no_market_data(reason: str) -> dict[str, Any]:
    return {"direction": "neutral", "confidence": 0.5, "reasoning": reason,
            "key_levels": {"support": [], "resistance": []}, "risks": ["no market data"], "horizon": HORIZON}


def analysis_text(analysis: dict[str, Any]) -> str:
    levels = analysis["key_levels"]
    support = ", ".join(_fmt(x) for x in levels["support"]) or "n/a"
    resistance = ", ".join(_fmt(x) for x in levels["resistance"]) or "n/a"
    return (f"{analysis['direction'].capitalize()} (confidence {analysis['confidence']:.2f}). {analysis['reasoning']} "
            f"Support {support}, resistance {resistance}. Risks: {'; '.join(analysis['risks'])}. "
            f"Horizon: {analysis['horizon']}.")


def trade_review(trade: dict[str, Any], settings: dict[str, Any] | None = None) -> dict[str, Any]:
    """A closed trade's review: the verdict from the pnl's sign, the reasons it was opened and closed."""
    pnl = next((v for v in (_number(trade.get(name)) for name in PNL_FIELDS) if v is not None), None)
    verdict = "won" if pnl is not None and pnl > 0 else "lost"
    entry = str(trade.get("entry_reason") or "not given")
    exit_ = str(trade.get("exit_reason") or "not given")
    lessons = (["the entry rules worked here: keep them"] if verdict == "won"
               else ["the setup did not follow through: tighten the entry filter"])
    if "stop" in exit_.lower():
        lessons.append("the stop loss capped the loss as planned" if verdict == "lost"
                       else "the trailing stop kept the gain")
    symbol = str(trade.get("symbol") or "the trade")
    summary = f"{symbol} {verdict}" + (f" ({_fmt(pnl)})" if pnl is not None else "") + \
        f": entered on {entry}, exited on {exit_}."
    suggestions = []
    current = _number((settings or {}).get("min_confidence"))
    if verdict == "lost" and current is not None and current < 0.95:
        suggestions.append({"parameter": "min_confidence", "value": round(min(0.95, current + 0.1), 2),
                            "reason": "the signal was not strong enough: ask for more confidence"})
    return {"verdict": verdict, "reasons": [f"entry: {entry}", f"exit: {exit_}"], "lessons": lessons,
            "summary": summary, "suggestions": suggestions}


def review_text(review: dict[str, Any]) -> str:
    return f"{review['summary']} Lessons: {'; '.join(review['lessons'])}."
