"""The checks and merges a trading session's updates share: pure functions, safe in workflow code.

Checks raise ``trading.errors.InvalidInput`` naming the field; the workflow turns one into an
``ApplicationError`` (``rejected``) whose details carry that field, so every channel reports it
without reading the reason's words.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import replace
from typing import Any

from temporalio.exceptions import ApplicationError

from trading.analysis_settings import PARAMS_TYPE, AnalysisSettings
from trading.candle import INTERVAL_MS
from trading.errors import InvalidInput
from trading.models import SymbolSpec
from trading.settings import EngineSettings

# ApplicationError types of a rejected update, read by the application layer.
REJECTED = "UpdateRejected"
NOT_FOUND = "NotFound"
CONFLICT = "Conflict"
KEY_REUSED = "IdempotencyKeyReused"
# Refused to this caller: an agent approving, a channel that may not see a token.
FORBIDDEN = "Forbidden"


class NotFound(InvalidInput):
    """The ID names nothing of this session's (an unknown or closed trade, an unknown order)."""


class Conflict(InvalidInput):
    """The session moved on from what the writer saw (another settings version)."""


def rejected(reason: str, field: str | None = None, kind: str = REJECTED) -> ApplicationError:
    """An update failure the caller sees with its field and reason; it fails only that update."""
    return ApplicationError(reason, {"field": field}, type=kind, non_retryable=True)


def rejection_of(exc: InvalidInput) -> ApplicationError:
    kind = NOT_FOUND if isinstance(exc, NotFound) else CONFLICT if isinstance(exc, Conflict) else REJECTED
    return rejected(exc.reason, exc.field, kind)


@contextmanager
def validating() -> Iterator[None]:
    """In a validator: a refusal carries its field to the caller as the update's failure."""
    try:
        yield
    except InvalidInput as exc:
        raise rejection_of(exc) from None


def session_identity(workflow_id: str) -> tuple[str, str]:
    """(user, mode) from ``session:{user}:{mode}``."""
    parts = workflow_id.split(":")
    if len(parts) != 3 or parts[0] != "session" or not parts[1]:
        raise InvalidInput(None, f"a session's workflow ID is session:{{user}}:{{mode}}, got {workflow_id!r}")
    return parts[1], parts[2]


# The settings objects a patch merges field by field; every other field is replaced whole.
ENGINE_SECTIONS = frozenset({"risk"})
ANALYSIS_SECTIONS = frozenset(PARAMS_TYPE)


def merged(current: Mapping[str, Any], patch: Mapping[str, Any], sections: frozenset[str]) -> dict[str, Any]:
    """``current`` with ``patch`` applied: the named sections merge field by field."""
    out = dict(current)
    for name, value in patch.items():
        old = out.get(name)
        out[name] = {**old, **value} if name in sections and isinstance(old, Mapping) and isinstance(
            value, Mapping) else value
    return out


def _object(changes: Any, what: str) -> Mapping[str, Any]:
    if not isinstance(changes, Mapping):
        raise InvalidInput(what, f"{what} must be an object, got {changes!r}")
    return changes


def merged_engine_settings(current: EngineSettings, changes: dict[str, Any] | None) -> EngineSettings:
    """``current`` with the given fields replaced (``risk`` merged field by field); validated."""
    if not changes:
        return current
    return EngineSettings.from_dict(merged(current.to_dict(), _object(changes, "engine_settings"), ENGINE_SECTIONS))


def merged_analysis_settings(current: AnalysisSettings, changes: dict[str, Any] | None) -> AnalysisSettings:
    """``current`` with the given fields replaced (each strategy's parameters merged field by field)."""
    if not changes:
        return current
    patch = _object(changes, "analysis_settings")
    return AnalysisSettings.from_dict(merged(current.to_dict(), patch, ANALYSIS_SECTIONS))


def checked_settings(engine: EngineSettings, analysis: AnalysisSettings, engine_changes: dict[str, Any] | None,
                     analysis_changes: dict[str, Any] | None, *,
                     fresh: bool) -> tuple[EngineSettings, AnalysisSettings]:
    """The settings a session's ``update_settings`` leads to, or ``InvalidInput`` naming the field. The
    session's validator and the settings dry run both ask this. ``fresh``: the account has not traded
    since it was opened or reset, so its market and currency may still change."""
    if engine_changes is None and analysis_changes is None:
        raise InvalidInput(None, "nothing to change: give engine_settings and/or analysis_settings")
    check_account_kept(engine, engine_changes, fresh=fresh)
    return merged_engine_settings(engine, engine_changes), merged_analysis_settings(analysis, analysis_changes)


ACCOUNT_DEFINING = {"market": "market type", "account_currency": "account currency"}


def check_account_kept(current: EngineSettings, changes: dict[str, Any] | None, *, fresh: bool) -> None:
    """An account's market type and currency are what its balance and history are in: they change
    only on a fresh account (before the first start, or after a reset)."""
    if fresh or not isinstance(changes, Mapping):
        return
    for name, label in ACCOUNT_DEFINING.items():
        now = getattr(current, name)
        if name in changes and changes[name] != now:
            raise InvalidInput(name, f"the {label} changes only with a reset ({now} → {changes[name]}): "
                                     f"reset the account, then start it with the new {label}")


def check_symbols(symbols: Sequence[str]) -> tuple[str, ...]:
    if isinstance(symbols, str) or not symbols:
        raise InvalidInput("symbols", "symbols must be a non-empty list of symbols")
    if len(set(symbols)) != len(symbols) or not all(
        isinstance(s, str) and s.isalnum() and s.isupper() for s in symbols
    ):
        raise InvalidInput("symbols", f"symbols must be distinct upper-case symbols like BTCUSDT, got {list(symbols)}")
    return tuple(symbols)


def check_interval(interval: str) -> str:
    if interval not in INTERVAL_MS:
        raise InvalidInput("interval", f"unknown interval {interval!r}; known: {', '.join(INTERVAL_MS)}")
    return interval


def check_specs_cover(settings: EngineSettings, symbols: Sequence[str]) -> None:
    """An Engine that knows the exchange's filters trades only symbols it has filters for."""
    known = {spec.symbol for spec in settings.symbols}
    missing = [s for s in symbols if s not in known]
    if known and missing:
        raise InvalidInput("symbols", f"no exchange filters for {', '.join(missing)}: the exchange lists "
                                      "what a session may trade (GET /api/market/symbols)")


def with_specs(settings: EngineSettings, specs: Sequence[dict[str, Any]]) -> EngineSettings:
    """``settings`` trading exactly the symbols of ``specs`` (exchange filters as plain dicts)."""
    try:
        return replace(settings, symbols=tuple(SymbolSpec(**spec) for spec in specs))
    except (TypeError, ValueError) as exc:
        raise InvalidInput("specs", f"bad exchange filters: {exc}") from None

