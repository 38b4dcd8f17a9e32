"""The checks and merges a trading session's updates share: pure functions, safe in workflow code."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from temporalio.exceptions import ApplicationError

from trading.analysis_settings import AnalysisSettings
from trading.candle import INTERVAL_MS
from trading.settings import EngineSettings


def rejected(reason: str) -> ApplicationError:
    """An update failure the caller sees as the reason; never retried."""
    return ApplicationError(reason, type="UpdateRejected", non_retryable=True)


def session_identity(workflow_id: str) -> tuple[str, str]:
    """(user, mode) from ``session:{user}:{mode}``."""
    parts = workflow_id.split(":")
    if len(parts) != 3 or parts[0] != "session" or not parts[1]:
        raise ValueError(f"a session's workflow ID is session:{{user}}:{{mode}}, got {workflow_id!r}")
    return parts[1], parts[2]


def merged_engine_settings(current: EngineSettings, changes: dict[str, Any] | None) -> EngineSettings:
    """``current`` with the given fields replaced (``risk`` merged field by field); validated."""
    if not changes:
        return current
    if not isinstance(changes, dict):
        raise ValueError(f"engine settings must be an object, got {changes!r}")
    data = current.to_dict()
    for name, value in changes.items():
        if name == "risk" and isinstance(value, dict):
            data["risk"] = {**data["risk"], **value}
        else:
            data[name] = value
    return EngineSettings.from_dict(data)


def merged_analysis_settings(current: AnalysisSettings, changes: dict[str, Any] | None) -> AnalysisSettings:
    if not changes:
        return current
    if not isinstance(changes, dict):
        raise ValueError(f"analysis settings must be an object, got {changes!r}")
    return AnalysisSettings.from_dict({**current.to_dict(), **changes})


def checked_settings(engine: EngineSettings, analysis: AnalysisSettings, engine_changes: dict[str, Any] | None,
                     analysis_changes: dict[str, Any] | None) -> tuple[EngineSettings, AnalysisSettings]:
    """The settings a session's ``update_settings`` leads to, or a ValueError naming the field. The
    session's validator and the gateway's dry run (``POST /settings/check``) both ask this."""
    if engine_changes is None and analysis_changes is None:
        raise ValueError("nothing to change: give engine_settings and/or analysis_settings")
    return merged_engine_settings(engine, engine_changes), merged_analysis_settings(analysis, analysis_changes)


def check_symbols(symbols: Sequence[str]) -> tuple[str, ...]:
    if isinstance(symbols, str) or not symbols:
        raise ValueError("symbols must be a non-empty list of symbols")
    if len(set(symbols)) != len(symbols) or not all(
        isinstance(s, str) and s.isalnum() and s.isupper() for s in symbols
    ):
        raise ValueError(f"symbols must be distinct upper-case symbols like BTCUSDT, got {list(symbols)}")
    return tuple(symbols)


def check_interval(interval: str) -> str:
    if interval not in INTERVAL_MS:
        raise ValueError(f"unknown interval {interval!r}; known: {', '.join(INTERVAL_MS)}")
    return interval
