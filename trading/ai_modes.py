"""Grok's part in a trading decision (the ``ai_mode`` analysis setting). Pure: a session and a
backtest replaying its decision records reach the same signal from the same inputs.

- ``off``: Grok is not asked; the consensus trades.
- ``advisory``: Grok is asked; its answer is recorded and shown, and the consensus trades.
- ``gate``: a long or short consensus trades only when Grok answers the same direction; an answer
  against it (or neutral) makes the candle neutral.
- ``voter``: Grok votes as a sixth strategy with ``ai_weight``; the consensus threshold is unchanged,
  so its vote can carry a direction over it, hold one back (a conflict) or add to its confidence.

Without a usable answer (any fallback, or an answer less confident than ``ai_min_confidence``) every
mode trades the consensus as it is: an outage of Grok never stops a session.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from trading.analysis_settings import AnalysisSettings

OFF, ADVISORY, GATE, VOTER = "off", "advisory", "gate", "voter"
ASKING_MODES = (ADVISORY, GATE, VOTER)
TRADING_MODES = (GATE, VOTER)  # modes in which Grok's answer can change what is traded


@dataclass(frozen=True, slots=True)
class Decision:
    direction: str  # long | short | neutral
    confidence: float
    reason: str


def vote_threshold(settings: AnalysisSettings) -> float:
    """The votes a direction needs (``trading.consensus.combine``'s threshold)."""
    weights = settings.enabled_weights()
    if settings.weights is None:
        return float(settings.min_agree)
    if settings.min_vote_weight is not None:
        return settings.min_vote_weight
    return sum(weights.values()) * settings.min_agree / len(weights)


def usable(answer: Mapping[str, Any] | None, settings: AnalysisSettings) -> bool:
    return answer is not None and float(answer["confidence"]) >= settings.ai_min_confidence


def decide(settings: AnalysisSettings, technical: Decision, verdicts: Sequence[Mapping[str, Any]],
           answer: Mapping[str, Any] | None, fallback: str | None = None) -> Decision:
    """The signal a candle trades on: the technical consensus ``technical`` (with the strategies'
    ``verdicts``) and Grok's ``answer`` (None: ``fallback`` says why) under the settings' mode."""
    mode = settings.ai_mode
    if mode not in TRADING_MODES:
        return technical
    if not usable(answer, settings):
        why = fallback or (f"confidence {float(answer['confidence']):.2f} below {settings.ai_min_confidence:g}"
                           if answer is not None else "no answer")
        return Decision(technical.direction, technical.confidence, f"{technical.reason}; Grok: {why}, the "
                                                                   f"consensus trades alone")
    assert answer is not None
    grok, grok_confidence = answer["direction"], float(answer["confidence"])
    if mode == GATE:
        if technical.direction == "neutral":
            return technical
        if grok == technical.direction:
            return Decision(technical.direction, technical.confidence,
                            f"{technical.reason}; Grok agrees ({grok_confidence:.2f})")
        return Decision("neutral", 0.0, f"gate closed: the consensus says {technical.direction}, Grok says "
                                        f"{grok} ({grok_confidence:.2f})")
    return _vote(settings, verdicts, grok, grok_confidence)


def _vote(settings: AnalysisSettings, verdicts: Sequence[Mapping[str, Any]], grok: str,
          grok_confidence: float) -> Decision:
    weights = settings.enabled_weights()
    votes = {"long": 0.0, "short": 0.0}
    support = {"long": 0.0, "short": 0.0}
    agreeing: dict[str, list[str]] = {"long": [], "short": []}
    for verdict in verdicts:
        name, side = verdict["strategy"], verdict["direction"]
        if name not in weights or side not in votes:
            continue
        votes[side] += weights[name]
        support[side] += weights[name] * float(verdict["confidence"])
        agreeing[side].append(f"{name} {float(verdict['confidence']):.2f}")
    ai_weight = settings.ai_weight
    if grok in votes:
        votes[grok] += ai_weight
        support[grok] += ai_weight * grok_confidence
        agreeing[grok].append(f"grok {grok_confidence:.2f}")
    total = sum(weights.values()) + ai_weight
    threshold = vote_threshold(settings)
    reach = threshold - 1e-9 * total  # as the consensus: float sums must still reach the threshold
    long_reaches, short_reaches = votes["long"] >= reach, votes["short"] >= reach
    if long_reaches and short_reaches:
        return Decision("neutral", 0.0, f"neutral: conflict with Grok's vote, vote {votes['long']:g} long and "
                                        f"{votes['short']:g} short both reach {threshold:g}")
    for side, reaches in (("long", long_reaches), ("short", short_reaches)):
        if reaches:
            return Decision(side, support[side] / total, f"{side}: vote {votes[side]:g} >= {threshold:g} of "
                                                         f"{total:g} with Grok ({', '.join(agreeing[side])})")
    return Decision("neutral", 0.0, f"neutral: vote {votes['long']:g} long, {votes['short']:g} short with Grok; "
                                    f"need {threshold:g}")
