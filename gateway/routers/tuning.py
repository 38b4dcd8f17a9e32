"""``/api/tuning``: self-tuning of the caller's paper session. An adapter over ``services.tuning.Tuning``.

A proposal out of bounds or too large is a 422 naming the parameter and the bound; a parameter that
cools down or awaits another proposal is a 409 saying until when or which; approving through a
channel that is not a human session is a 403; a wrong, replaced or expired token or text is a 422;
another user's proposal is a 404, like one that does not exist.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query

from core.tuning_contracts import ProposalView, TuningSummary
from gateway.auth.deps import AUTH_ERRORS, STEP_UP, CurrentUser, Responses
from gateway.deps import IdempotencyKey, TuningDep
from gateway.errors import RejectedOut
from gateway.paper.schemas import ErrorOut
from gateway.paper.tuning_schemas import (
    ApproveTextIn,
    ApproveTokenIn,
    AutoApplyIn,
    ChangeOut,
    CooldownOut,
    HistoryEntryOut,
    ProposalCreatedOut,
    ProposalOut,
    ProposeIn,
    RejectIn,
    SnapshotIn,
    SnapshotOut,
    Status,
    SuggestionProposeIn,
    TunableOut,
    TuningSummaryOut,
)
from services.principal import Principal
from services.tuning import ProposalCreated, Tuning
from trading.setting_catalog import SETTINGS, label
from trading.tuning_table import cooldown_s

router = APIRouter(prefix="/api/tuning", tags=["tuning"])

REJECTED: Responses = {422: {"model": RejectedOut, "description": "Out of bounds, too large, or a wrong token or "
                                                                  "text (the field and the reason)"}}
CONFLICT: Responses = {409: {"model": RejectedOut, "description": "The parameter cools down or awaits another "
                                                                  "proposal, or the settings moved on"}}
NOT_FOUND: Responses = {404: {"model": ErrorOut, "description": "No such proposal or snapshot of yours, or no "
                                                                "paper session yet"}}
FORBIDDEN: Responses = {403: {"model": ErrorOut, "description": "Only a person in a human session approves"}}
UNAVAILABLE: Responses = {503: {"model": ErrorOut, "description": "Temporal could not answer in time"}}
BAD_BODY: Responses = {400: {"model": ErrorOut, "description": "The body is not valid JSON"}}
WRITE = {**AUTH_ERRORS, **BAD_BODY, **REJECTED, **CONFLICT, **NOT_FOUND, **UNAVAILABLE}
Number = Annotated[int, Path(ge=1, le=10**9)]


def proposal_out(view: ProposalView | dict[str, Any]) -> ProposalOut:
    data = asdict(view) if isinstance(view, ProposalView) else view
    changes = [ChangeOut(path=c["path"], label=label(c["path"]), current=c["current"], proposed=c["proposed"])
               for c in data["changes"]]
    return ProposalOut.model_validate({**data, "changes": changes})


def reserved_label(path: str) -> str:
    """A cooldown's parameter as users see it: a real session's parameters cool down apart (``real:…``)."""
    real, _, rest = path.partition("real:")
    return f"{label(rest)} (real session)" if not real and rest else label(path)


def created_out(created: ProposalCreated) -> ProposalCreatedOut:
    return ProposalCreatedOut(proposal=proposal_out(created.proposal), approval_token=created.approval_token)


@router.get("", response_model=TuningSummaryOut, responses={**AUTH_ERRORS, **UNAVAILABLE})
async def tuning_summary(user: CurrentUser, tuning: TuningDep) -> TuningSummaryOut:
    """Cooldowns, parameters awaiting approval, the approval queue and the recent GREEN changes."""
    return await _summary_out(user, tuning, await tuning.summary(user))


async def _summary_out(user: Principal, tuning: Tuning, found: TuningSummary) -> TuningSummaryOut:
    awaiting = await tuning.proposals(user, "AWAITING", 50)
    return TuningSummaryOut(
        auto_apply_green=found.auto_apply_green,
        cooldowns=[CooldownOut(path=c.path, label=reserved_label(c.path), until_ms=c.until_ms)
                   for c in found.cooldowns],
        pending=found.pending, awaiting=[proposal_out(p) for p in awaiting],
        recent=[proposal_out(p) for p in found.recent], now_ms=found.now_ms)


@router.get("/parameters", response_model=list[TunableOut], responses=AUTH_ERRORS)
async def tunable_parameters(user: CurrentUser, tuning: TuningDep) -> list[TunableOut]:
    """Every tunable parameter: tier, bounds, step, largest change, cooldown, and which way raises risk."""
    overrides = tuning.cooldown_overrides()
    return [TunableOut(path=t.path, label=t.label, unit=SETTINGS[t.path].unit if t.path in SETTINGS else "",
                       tier=t.tier.name, minimum=t.minimum, maximum=t.maximum, step=t.step,
                       max_change=None if t.max_factor is not None else t.max_change, max_factor=t.max_factor,
                       cooldown_s=cooldown_s(t.path, overrides), riskier=t.riskier)  # type: ignore[arg-type]
            for t in tuning.parameters()]


@router.get("/proposals", response_model=list[ProposalOut], responses={**AUTH_ERRORS, **REJECTED})
async def list_proposals(user: CurrentUser, tuning: TuningDep, status: Status | None = None,
                         limit: Annotated[int, Query(ge=1, le=200)] = 50) -> list[ProposalOut]:
    """Your proposals, newest first (optionally of one status)."""
    return [proposal_out(p) for p in await tuning.proposals(user, status, limit)]


@router.post("/proposals", status_code=201, response_model=ProposalCreatedOut, responses=WRITE)
async def propose(body: ProposeIn, user: CurrentUser, tuning: TuningDep,
                  key: IdempotencyKey = None) -> ProposalCreatedOut:
    """Propose new values: GREEN (and what lowers risk) applies at once, YELLOW and RED await you."""
    return created_out(await tuning.propose(user, dict(body.changes), body.reason, key))


@router.post("/proposals/from-suggestion", status_code=201, response_model=ProposalCreatedOut, responses=WRITE)
async def propose_suggestion(body: SuggestionProposeIn, user: CurrentUser, tuning: TuningDep,
                             key: IdempotencyKey = None) -> ProposalCreatedOut:
    """Turn the current config suggestion for a parameter into a proposal."""
    return created_out(await tuning.propose_suggestion(user, body.parameter, key))


@router.get("/proposals/{number}", response_model=ProposalOut, responses={**AUTH_ERRORS, **NOT_FOUND, **REJECTED})
async def get_proposal(number: Number, user: CurrentUser, tuning: TuningDep) -> ProposalOut:
    return proposal_out(await tuning.proposal(user, number))


@router.post("/proposals/{number}/token", response_model=ProposalCreatedOut, responses={**WRITE, **FORBIDDEN})
async def issue_token(number: Number, user: CurrentUser, tuning: TuningDep) -> ProposalCreatedOut:
    """A new one-time approval token for this channel (the previous one stops working); human sessions only."""
    return created_out(await tuning.issue_token(user, number))


@router.post("/proposals/{number}/approve", response_model=ProposalOut, responses={**WRITE, **FORBIDDEN})
async def approve_with_token(number: Number, body: ApproveTokenIn, user: CurrentUser,
                             tuning: TuningDep) -> ProposalOut:
    """Approve a YELLOW proposal with its one-time token; answers once it is applied (or failed)."""
    return proposal_out(await tuning.approve_with_token(user, number, body.token))


@router.post("/proposals/{number}/approve-text", response_model=ProposalOut, responses={**WRITE, **STEP_UP})
async def approve_with_text(number: Number, body: ApproveTextIn, user: CurrentUser,
                            tuning: TuningDep) -> ProposalOut:
    """Approve a RED proposal by typing its approval text exactly, with a two-factor code entered in the
    last 5 minutes (403 with `step_up` otherwise)."""
    return proposal_out(await tuning.approve_with_text(user, number, body.text))


@router.post("/proposals/{number}/reject", response_model=ProposalOut, responses=WRITE)
async def reject(number: Number, body: RejectIn, user: CurrentUser, tuning: TuningDep) -> ProposalOut:
    return proposal_out(await tuning.reject(user, number, body.reason))


@router.put("/auto-apply", response_model=TuningSummaryOut, responses=WRITE)
async def set_auto_apply(body: AutoApplyIn, user: CurrentUser, tuning: TuningDep) -> TuningSummaryOut:
    """Whether GREEN suggestions of the config rules apply by themselves."""
    return await _summary_out(user, tuning, await tuning.set_auto_apply(user, body.enabled))


@router.get("/snapshots", response_model=list[SnapshotOut], responses={**AUTH_ERRORS, **REJECTED})
async def list_snapshots(user: CurrentUser, tuning: TuningDep,
                         limit: Annotated[int, Query(ge=1, le=200)] = 50) -> list[SnapshotOut]:
    return [SnapshotOut.model_validate(asdict(s)) for s in await tuning.snapshots(user, limit)]


@router.post("/snapshots", status_code=201, response_model=SnapshotOut, responses=WRITE)
async def take_snapshot(body: SnapshotIn, user: CurrentUser, tuning: TuningDep) -> SnapshotOut:
    """Save every current setting under a name."""
    return SnapshotOut.model_validate(asdict(await tuning.take_snapshot(user, body.name)))


@router.post("/snapshots/{snapshot_id}/restore", status_code=201, response_model=ProposalCreatedOut, responses=WRITE)
async def restore_snapshot(snapshot_id: Annotated[str, Path(pattern=r"^[A-Za-z0-9_.:-]{1,120}$")], user: CurrentUser,
                           tuning: TuningDep, key: IdempotencyKey = None) -> ProposalCreatedOut:
    """Propose returning to a snapshot: tiered by the most dangerous parameter it changes."""
    return created_out(await tuning.restore(user, snapshot_id, key))


@router.get("/history", response_model=list[HistoryEntryOut], responses={**AUTH_ERRORS, **REJECTED})
async def tuning_history(user: CurrentUser, tuning: TuningDep,
                         limit: Annotated[int, Query(ge=1, le=200)] = 100) -> list[HistoryEntryOut]:
    """The audit trail of your proposals: created, awaiting, applied, rejected, expired, failed."""
    return [HistoryEntryOut.model_validate(e) for e in await tuning.history(user, limit)]
