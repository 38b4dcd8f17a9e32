"""Turning wanted values into a checked ``ProposeInput``: what a person's, an agent's and a rule's
proposals share (the application layer mints tokens on top; the auto-apply activity does not need any)."""

from __future__ import annotations

from typing import Any

from core.tuning_contracts import ParameterChange, ProposeInput, Proposer
from trading.setting_catalog import INTEGER, SETTINGS, label
from trading.tuning_table import Change, Tier, approval_text, check_changes, cooldown_s, value_in


def changes_of(engine: dict[str, Any], analysis: dict[str, Any], values: dict[str, Any]) -> list[Change]:
    """Each wanted value against the session's current one."""
    return [Change(path, value_in(engine, analysis, path), _as_kind(path, value)) for path, value in values.items()]


def _as_kind(path: str, value: Any) -> Any:
    """A whole number as the setting takes it: JSON and the API's number fields give 5.0 for a leverage of 5,
    which a whole-number setting refuses when the proposal is applied."""
    found = SETTINGS.get(path)
    if found is not None and found.kind == INTEGER and isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def expected_effect(changes: list[Change]) -> str:
    return "; ".join(f"{label(c.path)} {c.current!r} → {c.proposed!r}{' (lowers risk)' if c.tier == Tier.NONE else ''}"
                     for c in changes)


def propose_input(*, user_id: str, session_id: str, changes: list[Change], reason: str, proposer: Proposer,
                  version: int | None, cooldown_overrides: dict[Tier, float | None], expiry_s: float,
                  token_hmacs: dict[str, str] | None = None, restoring: str | None = None,
                  effect: str = "", mode: str = "paper") -> ProposeInput:
    """The proposal of ``changes``; ``trading.errors.InvalidInput`` names the first change out of bounds."""
    tier = check_changes(changes, restoring=restoring is not None)
    return ProposeInput(
        user_id=user_id, session_id=session_id, mode=mode,
        changes=tuple(ParameterChange(c.path, c.current, c.proposed) for c in changes), tier=int(tier),
        reason=reason or "proposed by hand", proposer=proposer, expected_version=version,
        cooldowns_s={c.path: cooldown_s(c.path, cooldown_overrides) for c in changes if c.tier != Tier.NONE},
        expiry_s=expiry_s, token_hmacs=dict(token_hmacs or {}),
        approval_text=approval_text(changes) if tier == Tier.RED else "",
        restoring=restoring, expected_effect=effect or expected_effect(changes))
