"""Grok's part in a session's decisions: the records a decision leaves (``ai_decisions``, replayed
by backtests) and what ``AISignalReceived`` says of it. Pure and deterministic: workflow code."""

from __future__ import annotations

from typing import Any

from core.ai_contracts import ANSWERED, AskGrokResult
from core.contracts import CandleClosed
from trading.ai_modes import Decision
from trading.analysis_settings import AnalysisSettings

# Marks the first candle a session asked Grok about: histories from before replay as they ran.
PATCH_AI_MODES = "grok-ai-modes"
# A session's retries of one ask; the settings' ``ai_deadline_s`` bounds them all.
GROK_ATTEMPTS = 3
GROK_RETRY_S = 1.0


def decision_id(session_id: str, generation: int, closed: CandleClosed) -> str:
    return f"{session_id}:{generation}:{closed.symbol}:{closed.interval}:{closed.open_time}"


def decision_record(session_id: str, generation: int, closed: CandleClosed, settings: AnalysisSettings,
                    technical: Decision, grok: AskGrokResult, decided: Decision) -> dict[str, Any]:
    """Everything the candle's decision used: enough for a backtest to make the same one."""
    answered = grok.outcome == ANSWERED and grok.answer is not None
    return {
        "decision_id": decision_id(session_id, generation, closed),
        "symbol": closed.symbol, "interval": closed.interval, "open_time": closed.open_time,
        "mode": settings.ai_mode,
        "technical": {"direction": technical.direction, "confidence": technical.confidence},
        "verdicts": [{"strategy": v["strategy"], "direction": v["direction"], "confidence": v["confidence"]}
                     for v in grok.verdicts],
        "grok": {"outcome": grok.outcome, "model": grok.model, "question_key": grok.question_key,
                 "direction": grok.answer["direction"] if answered and grok.answer else None,
                 "confidence": grok.answer["confidence"] if answered and grok.answer else None,
                 "reasoning": grok.answer["reasoning"] if answered and grok.answer else None,
                 "reason": grok.reason, "detail": grok.detail, "shared": grok.shared,
                 "cost_nano_usd": grok.cost_nano_usd},
        "decided": {"direction": decided.direction, "confidence": decided.confidence, "reason": decided.reason},
    }


def ai_summary(record: dict[str, Any]) -> dict[str, Any]:
    """Grok's part as ``AISignalReceived`` and ``ai_signals`` show it."""
    grok = record["grok"]
    return {"mode": record["mode"], "source": "grok" if grok["outcome"] == ANSWERED else "fallback",
            "grok_direction": grok["direction"], "grok_confidence": grok["confidence"],
            "grok_reasoning": grok["reasoning"], "fallback_reason": grok["reason"],
            "technical": record["technical"], "decision_id": record["decision_id"]}
