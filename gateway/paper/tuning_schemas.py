"""The shapes of ``/api/tuning`` (separate from the workflows' contracts and the stored documents)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field

from gateway.paper.schemas import StrictModel

TierName = Literal["NONE", "GREEN", "YELLOW", "RED"]
Status = Literal["PROPOSED", "AWAITING", "APPROVED", "REJECTED", "EXPIRED", "APPLIED", "FAILED"]
Path = Annotated[str, Field(pattern=r"^[a-z_]+(\.[a-z_]+)?$", max_length=60, examples=["rsi.oversold"])]
Value = Annotated[float | None, Field(allow_inf_nan=False)]


class ChangeOut(BaseModel):
    path: str
    label: str
    current: Any
    proposed: Any


class ProposerOut(BaseModel):
    kind: Literal["user", "rule", "ai", "agent"]
    name: str
    channel: str


class ProposalOut(BaseModel):
    proposal_id: str
    number: int
    session_id: str
    mode: str
    tier: TierName
    status: Status
    changes: list[ChangeOut]
    reason: str
    proposer: ProposerOut
    expected_effect: str
    created_at_ms: int
    expires_at_ms: int | None = None
    decided_at_ms: int | None = None
    decided_by: str | None = Field(None, description="the channel that approved or rejected it, or 'expiry'")
    applied_version: int | None = Field(None, description="the settings version the change produced")
    failure: str | None = None
    approval_text: str = Field("", description="RED: the exact text to type to approve")
    restoring: str | None = Field(None, description="the snapshot a restore returns to")
    snapshot_id: str | None = Field(None, description="the automatic snapshot taken before applying")


class ProposalCreatedOut(BaseModel):
    proposal: ProposalOut
    approval_token: str | None = Field(
        None, description="YELLOW: the one-time token of your channel, shown this once (to a human session only)")


class ProposeIn(StrictModel):
    changes: dict[Path, Value] = Field(min_length=1, max_length=20,
                                       description="parameter → proposed value (null switches a stop off)")
    reason: str = Field("", max_length=500)


class SuggestionProposeIn(StrictModel):
    parameter: Path


class ApproveTokenIn(StrictModel):
    token: str = Field(min_length=8, max_length=100)


class ApproveTextIn(StrictModel):
    text: str = Field(min_length=1, max_length=500)


class RejectIn(StrictModel):
    reason: str = Field("", max_length=500)


class AutoApplyIn(StrictModel):
    enabled: bool


class SnapshotIn(StrictModel):
    name: str = Field(min_length=1, max_length=80)


class TunableOut(BaseModel):
    path: str
    label: str
    unit: str
    tier: TierName
    minimum: float
    maximum: float
    step: float
    max_change: float | None = Field(description="the largest change one adjustment may make")
    max_factor: float | None = Field(description="sizes: the largest factor one adjustment may grow them by")
    cooldown_s: float = Field(description="how long the parameter rests after a change that raised risk")
    riskier: Literal["up", "down", "any"] = Field(
        description="which way raises risk; a change the other way lowers it: never tiered or cooled down")


class CooldownOut(BaseModel):
    path: str
    label: str
    until_ms: int


class TuningSummaryOut(BaseModel):
    auto_apply_green: bool
    cooldowns: list[CooldownOut]
    pending: dict[str, str] = Field(description="parameter → the proposal awaiting approval")
    awaiting: list[ProposalOut]
    recent: list[ProposalOut]
    now_ms: int


class SnapshotOut(BaseModel):
    snapshot_id: str
    session_id: str = Field(description="session:{user}:paper or session:{user}:real: the session it is of")
    name: str
    automatic: bool
    version: int | None
    interval: str
    engine_settings: dict[str, Any]
    analysis_settings: dict[str, Any]
    taken_at_ms: int
    reason: str


class HistoryEntryOut(BaseModel):
    at: Any
    action: str
    actor_id: str | None
    details: dict[str, Any]
