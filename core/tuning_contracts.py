"""The contracts of self-tuning: ``TuningWorkflow`` (``tuning:{user}``), ``TuningApprovalWorkflow``
(``approval:{user}:{n}``) and their activities.

No one-time secret ever crosses these boundaries: the application layer mints a token, keeps it to
show its owner once, and hands the workflows only its HMAC.
"""

# No ``from __future__ import annotations``: see core.contracts.
from dataclasses import dataclass, field
from typing import Any

from core.contracts import SessionSettingsRecord

# Proposal states (PROPOSED → AWAITING → APPROVED | REJECTED | EXPIRED → APPLIED | FAILED).
PROPOSED, AWAITING, APPROVED, REJECTED, EXPIRED, APPLIED, FAILED = (
    "PROPOSED", "AWAITING", "APPROVED", "REJECTED", "EXPIRED", "APPLIED", "FAILED")
FINAL_STATES = frozenset({REJECTED, EXPIRED, APPLIED, FAILED})
# The human channels that carry their own one-time approval token.
TOKEN_CHANNELS = ("dashboard", "telegram")
# Who may propose (any of them); only a human session approves, whoever proposed.
PROPOSER_KINDS = ("user", "rule", "ai", "agent")
# The session-workflow handlers the apply activity calls by name (activities may not import workflows;
# tests/tuning check the names against TradingSessionWorkflow's).
SESSION_UPDATE_SETTINGS = "update_settings"
SESSION_SET_SIGNAL_INTERVAL = "set_signal_interval"
SESSION_SETTINGS_QUERY = "settings"
SESSION_STATUS_QUERY = "status"
# An approval tells its tuning:{user} it is final (by name: the two workflows would import each other).
SIGNAL_APPROVAL_FINISHED = "approval_finished"


def tuning_workflow_id(user_id: str) -> str:
    if not user_id or ":" in user_id:
        raise ValueError(f"user_id must be a non-empty ID without ':', got {user_id!r}")
    return f"tuning:{user_id}"


def approval_workflow_id(user_id: str, number: int) -> str:
    return f"approval:{user_id}:{number}"


@dataclass(frozen=True)
class ParameterChange:
    path: str
    current: Any  # a number, None (off) or a list: what the settings hold
    proposed: Any


@dataclass(frozen=True)
class Proposer:
    kind: str  # one of PROPOSER_KINDS
    name: str  # the user ID, the rule's name, the model, the agent's token name
    channel: str  # rest, ws, mcp, telegram, cli, worker


@dataclass(frozen=True)
class ProposeInput:
    """A proposal as the application layer checked it: tier and durations come from
    ``trading.tuning_table`` and the settings; ``expected_version`` is the settings version the
    current values were read at (another one at apply time fails the proposal)."""

    user_id: str
    session_id: str
    mode: str  # paper | real
    changes: tuple[ParameterChange, ...]
    tier: int  # trading.tuning_table.Tier
    reason: str
    proposer: Proposer
    expected_version: int | None
    cooldowns_s: dict = field(default_factory=dict)  # path -> seconds, once applied
    expiry_s: float = 3600.0
    token_hmacs: dict = field(default_factory=dict)  # channel -> HMAC of its one-time token
    approval_text: str = ""  # RED: the exact text to type
    restoring: str | None = None  # the snapshot a restore returns to
    expected_effect: str = ""
    interval: str | None = None  # a new signal interval (GREEN), applied apart from the settings


@dataclass(frozen=True)
class ProposalView:
    """A proposal as its owner sees it (never a token or its HMAC)."""

    proposal_id: str  # "{user}:{n}"; YELLOW and RED ones are the workflow approval:{user}:{n}
    user_id: str
    session_id: str
    mode: str
    number: int
    tier: str
    status: str
    changes: tuple[ParameterChange, ...]
    reason: str
    proposer: Proposer
    expected_effect: str
    created_at_ms: int
    expires_at_ms: int | None
    decided_at_ms: int | None = None
    decided_by: str | None = None  # the approver's channel or "expiry"
    applied_version: int | None = None
    failure: str | None = None
    approval_text: str = ""
    restoring: str | None = None
    snapshot_id: str | None = None


@dataclass(frozen=True)
class ApprovalInput:
    """What ``TuningApprovalWorkflow`` starts with (a YELLOW or RED proposal)."""

    proposal: ProposeInput
    number: int
    created_at_ms: int
    expires_at_ms: int
    parent_id: str


@dataclass(frozen=True)
class ApproveInput:
    """An approval as the application layer received it: ``human`` from the principal, the token's
    HMAC (YELLOW) or the typed text (RED)."""

    user_id: str
    human: bool
    channel: str
    token_hmac: str | None = None
    text: str | None = None


@dataclass(frozen=True)
class RejectInput:
    user_id: str
    channel: str
    reason: str = ""


@dataclass(frozen=True)
class IssueTokenInput:
    """A new one-time token for one human channel, replacing its previous one."""

    user_id: str
    human: bool
    channel: str
    token_hmac: str


@dataclass(frozen=True)
class ApprovalFinished:
    """Sent by an approval to its ``tuning:{user}`` once final: frees its parameters and, if it was
    applied, starts their cooldowns."""

    proposal_id: str
    status: str
    paths: tuple[str, ...]
    cooldowns_s: dict = field(default_factory=dict)


@dataclass(frozen=True)
class AutoApply:
    """Whether the config rules' GREEN (and risk-lowering) suggestions apply by themselves, how often
    they are looked for, and the durations their proposals take (from the settings)."""

    enabled: bool = False
    session_id: str = ""
    interval_s: float = 3600.0
    cooldown_overrides: dict = field(default_factory=dict)  # tier name -> seconds (absent: the table's)


@dataclass(frozen=True)
class TuningState:
    """``TuningWorkflow``'s whole state, handed to continue-as-new."""

    user_id: str
    next_number: int = 1
    cooldowns: dict = field(default_factory=dict)  # path -> until (ms, workflow time)
    pending: dict = field(default_factory=dict)  # path -> proposal ID awaiting approval
    recent: tuple[ProposalView, ...] = ()  # the last applied or refused GREEN changes (newest first)
    auto_apply: AutoApply = field(default_factory=AutoApply)


@dataclass(frozen=True)
class RuleProposalsInput:
    user_id: str
    session_id: str
    cooldown_overrides: dict  # tier name -> seconds


@dataclass(frozen=True)
class CooldownView:
    path: str
    until_ms: int


@dataclass(frozen=True)
class TuningSummary:
    user_id: str
    auto_apply_green: bool
    cooldowns: tuple[CooldownView, ...]
    pending: dict  # path -> proposal ID
    recent: tuple[ProposalView, ...]
    now_ms: int


@dataclass(frozen=True)
class SettingsSnapshot:
    """All of a session's settings at one version (what a restore returns to)."""

    snapshot_id: str
    user_id: str
    session_id: str
    name: str
    automatic: bool
    version: int | None
    interval: str
    engine_settings: dict
    analysis_settings: dict
    taken_at_ms: int
    reason: str = ""


@dataclass(frozen=True)
class TakeSnapshotInput:
    user_id: str
    session_id: str
    snapshot_id: str
    name: str
    automatic: bool
    reason: str = ""


@dataclass(frozen=True)
class ApplyChangesInput:
    """One session update of every change of a proposal, under an update ID derived from the
    proposal's, so a retried activity applies it once. ``expected``: each changed parameter's value
    when it was proposed; if one has moved since, the proposal fails (other settings may have moved)."""

    session_id: str
    update_id: str
    engine_patch: dict | None
    analysis_patch: dict | None
    expected: dict
    interval: str | None = None


@dataclass(frozen=True)
class SettingsWritten:
    """The part of a session's ``update_settings`` answer the apply reads: paper and real sessions
    answer with their own status beside it."""

    settings: SessionSettingsRecord


@dataclass(frozen=True)
class ApplyChangesResult:
    applied: bool
    version: int | None = None
    reason: str | None = None
    engine_settings: dict | None = None  # the session's settings after the change
    analysis_settings: dict | None = None


@dataclass(frozen=True)
class RecordProposalInput:
    """The proposal's status written through: ``tuning_proposals``, ``audit_logs``, and once applied
    ``strategy_configs``; plus a ``TuningUpdate`` event on /ws."""

    view: ProposalView
    event: str  # created, awaiting, applied, rejected, expired, failed
    engine_settings: dict | None = None
    analysis_settings: dict | None = None
