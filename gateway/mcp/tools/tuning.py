"""Tuning: the tiered self-tuning of the paper (or real) session's settings, parameter by parameter.

GREEN changes, and any change that only lowers risk, apply at once within the parameter's bounds, step and
cooldown (SENSITIVE). YELLOW and RED changes, and restores, are CRITICAL and never act: they create an
approval that only the account's owner gives, in the dashboard or Telegram (YELLOW: a one-time token; RED:
the exact approval text and a two-factor code). No tool approves anything, and no tool sees a token.
Reads (the dashboard, bounds, proposals, audit history, snapshots) are AUTHENTICATED.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import asdict
from typing import Annotated, Literal

from pydantic import BaseModel, Field

from gateway.mcp.registry import IdempotencyKey, current, tool
from gateway.paper.tuning_schemas import (
    HistoryEntryOut,
    ProposalOut,
    SnapshotOut,
    Status,
    TierName,
    TunableOut,
    TuningSummaryOut,
)
from gateway.paper.tuning_schemas import Path as ParameterPath
from gateway.paper.tuning_schemas import Value as ParameterValue
from gateway.routers.tuning import (
    get_proposal,
    list_proposals,
    list_snapshots,
    proposal_out,
    tunable_parameters,
    tuning_history,
    tuning_summary,
)
from services.errors import Rejected
from services.tuning import ProposalCreated, WrongTier
from trading.tuning_table import Tier

Session = Annotated[Literal["paper", "real"], Field(
    description="paper: the paper trading session; real: the real session (once its start was requested)")]
Reason = Annotated[str, Field(max_length=500, description="why: the owner reads it (and the audit keeps it)")]
Number = Annotated[int, Field(ge=1, le=10**9, description="the proposal's number")]
# Which tool takes a change of each tier (a change is refused by the others, naming this one).
TOOL_FOR = {Tier.NONE: "apply_green_adjustment applies it at once", Tier.GREEN: "use apply_green_adjustment",
            Tier.YELLOW: "use request_yellow_adjustment (critical tier)",
            Tier.RED: "use request_red_adjustment (critical tier)"}


class AdjustmentOut(BaseModel):
    """A proposal as made: applied at once, or awaiting the owner's approval."""

    approval_id: int = Field(description="the proposal's number: the owner approves or rejects it under this")
    status: Status = Field(description="APPLIED (done), AWAITING (the owner's approval), or PROPOSED, REJECTED, "
                                       "EXPIRED, FAILED")
    tier: TierName = Field(description="NONE (lowers risk), GREEN, YELLOW or RED: the most dangerous change's")
    awaiting_approval: bool
    where_to_approve: str = Field(description="what the account's owner does next, for the user to read")
    proposal: ProposalOut


def adjustment_out(created: ProposalCreated) -> AdjustmentOut:
    # ``created.approval_token`` is only ever minted for a human session; an agent's answer never carries it.
    proposal = proposal_out(created.proposal)
    waiting = proposal.status == "AWAITING"
    page = f"{current().services.settings.gateway_url}/tuning"
    if not waiting:
        where = f"Nothing to approve: the proposal is {proposal.status}."
    elif proposal.tier == "RED":
        where = (f"The account's owner approves proposal {proposal.number} in the Durabot dashboard ({page}) by "
                 f"typing its approval text exactly, with a fresh two-factor code, before it expires. No tool can "
                 "approve it.")
    else:
        where = (f"The account's owner approves proposal {proposal.number} in the Durabot dashboard ({page}) or "
                 "with the Approve button in the linked Telegram chat, before it expires. No tool can approve it.")
    return AdjustmentOut(approval_id=proposal.number, status=proposal.status, tier=proposal.tier,
                         awaiting_approval=waiting, where_to_approve=where, proposal=proposal)


async def _adjust(parameter: str, value: float | None, reason: str, session: str, key: str,
                  tiers: Collection[Tier]) -> AdjustmentOut:
    call = current()
    values = {parameter: value}
    try:
        if session == "real":
            created = await call.services.real_sessions.change_settings(call.principal, values, reason, key,
                                                                        tiers=tiers)
        else:
            created = await call.services.tuning.propose(call.principal, values, reason, key, proposer_kind="agent",
                                                         proposer_name=call.principal.channel, tiers=tiers)
    except WrongTier as exc:
        raise Rejected(exc.field, f"{exc.message}: {TOOL_FOR[exc.tier]}") from None
    return adjustment_out(created)


# -- reads ------------------------------------------------------------------------------------------

@tool("Tuning", "authenticated", title="Tuning dashboard", read_only=True)
async def get_tuning_dashboard() -> TuningSummaryOut:
    """The self-tuning state: parameters cooling down (until when), parameters awaiting approval, the proposals
    awaiting the owner, recent changes, and whether GREEN rule suggestions apply by themselves."""
    call = current()
    return await tuning_summary(call.principal, call.services.tuning)


@tool("Tuning", "authenticated", title="Tunable parameters and bounds", read_only=True)
async def get_parameter_bounds() -> list[TunableOut]:
    """Every tunable parameter: its tier (GREEN applies at once; YELLOW and RED need the owner's approval),
    minimum, maximum, step, the largest change one adjustment may make, its cooldown, and which way raises
    risk (a change the other way lowers it: never tiered)."""
    call = current()
    return await tunable_parameters(call.principal, call.services.tuning)


@tool("Tuning", "authenticated", title="Tuning proposals", read_only=True)
async def list_tuning_proposals(status: Status | None = None,
                                limit: Annotated[int, Field(ge=1, le=200)] = 50) -> list[ProposalOut]:
    """The user's tuning proposals, newest first (optionally of one status): changes, tier, status, proposer."""
    call = current()
    return await list_proposals(call.principal, call.services.tuning, status, limit)


@tool("Tuning", "authenticated", title="One tuning proposal", read_only=True)
async def get_tuning_proposal(number: Number) -> ProposalOut:
    """One of the user's tuning proposals by number (not found when the user has no such proposal)."""
    call = current()
    return await get_proposal(number, call.principal, call.services.tuning)


@tool("Tuning", "authenticated", title="Tuning audit history", read_only=True)
async def get_audit_history(limit: Annotated[int, Field(ge=1, le=200)] = 100) -> list[HistoryEntryOut]:
    """The audit trail of the user's tuning, newest first: proposals created, awaiting, applied, rejected,
    expired or failed, with who acted."""
    call = current()
    return await tuning_history(call.principal, call.services.tuning, limit)


@tool("Tuning", "authenticated", title="Settings snapshots", read_only=True)
async def list_settings_snapshots(limit: Annotated[int, Field(ge=1, le=200)] = 50) -> list[SnapshotOut]:
    """Saved snapshots of the session's settings, newest first (named ones, and the automatic one taken
    before every applied change)."""
    call = current()
    return await list_snapshots(call.principal, call.services.tuning, limit)


# -- proposing --------------------------------------------------------------------------------------

@tool("Tuning", "sensitive", title="Apply a GREEN adjustment")
async def apply_green_adjustment(
    parameter: ParameterPath, value: ParameterValue, idempotency_key: IdempotencyKey, reason: Reason = "",
    session: Session = "paper",
) -> AdjustmentOut:
    """Change one GREEN parameter (signal thresholds, indicator lengths, confidence; see get_parameter_bounds),
    or any parameter in the direction that only lowers risk (a tighter stop, less leverage or size), at once:
    within its bounds, step and largest change, and not while it cools down. A YELLOW or RED change is refused
    here (request_yellow_adjustment, request_red_adjustment). Returns the applied proposal."""
    return await _adjust(parameter, value, reason, session, idempotency_key, (Tier.NONE, Tier.GREEN))


@tool("Tuning", "critical", title="Request a YELLOW adjustment (the owner approves it)")
async def request_yellow_adjustment(
    parameter: ParameterPath, value: ParameterValue, reason: Reason, idempotency_key: IdempotencyKey,
    session: Session = "paper",
) -> AdjustmentOut:
    """Propose a YELLOW change (stop loss, trailing stop, take profit, leverage, position size) that raises
    risk. It is NOT applied: it waits for the account's owner to approve it in the Durabot dashboard or
    Telegram before it expires; no tool can approve it. Returns the approval ID (proposal number), its status
    (AWAITING) and where to approve. A change of another tier is refused, naming the tool to use."""
    return await _adjust(parameter, value, reason, session, idempotency_key, (Tier.YELLOW,))


@tool("Tuning", "critical", title="Request a RED adjustment (the owner approves it)")
async def request_red_adjustment(
    parameter: ParameterPath, value: ParameterValue, reason: Reason, idempotency_key: IdempotencyKey,
    session: Session = "paper",
) -> AdjustmentOut:
    """Propose a RED change (a risk limit raised: risk per trade, daily loss, portfolio risk, losing streak,
    stop distance, correlation). It is NOT applied: the account's owner approves it in the Durabot dashboard
    by typing its approval text exactly, with a two-factor code, before it expires; no tool can approve it.
    Returns the approval ID (proposal number), its status (AWAITING), the approval text and where to approve.
    A change of another tier is refused, naming the tool to use."""
    return await _adjust(parameter, value, reason, session, idempotency_key, (Tier.RED,))


# -- snapshots --------------------------------------------------------------------------------------

@tool("Tuning", "sensitive", title="Take a settings snapshot", idempotent=True)
async def take_snapshot(name: Annotated[str, Field(min_length=1, max_length=80)],
                        idempotency_key: IdempotencyKey) -> SnapshotOut:
    """Save every current setting of the paper session under a name, to return to later with
    restore_from_snapshot. A repeat with the same key answers the first snapshot."""
    call = current()
    return SnapshotOut.model_validate(asdict(await call.services.tuning.take_snapshot(call.principal, name,
                                                                                      idempotency_key)))


@tool("Tuning", "critical", title="Propose a restore from a snapshot")
async def restore_from_snapshot(
    snapshot_id: Annotated[str, Field(pattern=r"^[A-Za-z0-9_.:-]{1,120}$")], idempotency_key: IdempotencyKey,
) -> AdjustmentOut:
    """Propose returning every setting of the paper session to a snapshot's values. A restore is itself a
    tiered proposal, tiered by the most dangerous change it makes: when it only lowers risk or touches GREEN
    parameters it applies at once; otherwise it waits for the account's owner to approve it in the dashboard
    or Telegram (no tool can approve it). Returns the approval ID, status and where to approve."""
    call = current()
    return adjustment_out(await call.services.tuning.restore(call.principal, snapshot_id, idempotency_key))
