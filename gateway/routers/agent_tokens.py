"""``/api/agent-tokens``: the MCP access a person gave agents — agent tokens minted here and the grants of
the OAuth consent page — listed and revoked. Minting needs a two-factor code from the last minutes
(403 ``step_up``); the token is in the answer once and only its hash is kept. Agents cannot reach these
routes (their tokens are for the MCP server alone)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Path
from pydantic import BaseModel, Field

from gateway.auth.deps import AUTH_ERRORS, STEP_UP, CurrentUser, Responses
from gateway.auth.schemas import ErrorOut
from gateway.deps import AgentGrantsDep
from gateway.errors import RejectedOut
from services.agent_grants import Grant

router = APIRouter(prefix="/api/agent-tokens", tags=["agent-tokens"])

TierName = Literal["public", "authenticated", "sensitive", "critical"]
REJECTED: Responses = {422: {"model": RejectedOut, "description": "Invalid label, tier or expiry"}}
NOT_FOUND: Responses = {404: {"model": ErrorOut, "description": "No such grant of yours"}}
GrantId = Annotated[str, Path(pattern=r"^grant_[A-Za-z0-9_-]{8,40}$", description="a grant ID of yours")]


class AgentTokenIn(BaseModel):
    label: str = Field(min_length=1, max_length=80, description="names the agent, e.g. 'Claude Desktop on my laptop'")
    tier: TierName = Field(description="the highest tier of tools the agent may call")
    expires_in_days: int = Field(30, ge=1, le=366, description="lifetime in days (the server's maximum applies)")


class GrantOut(BaseModel):
    grant_id: str
    kind: Literal["agent_token", "oauth"] = Field(description="minted here, or granted on the OAuth consent page")
    label: str
    tier: TierName
    client_id: str
    created_at: datetime
    expires_at: datetime
    revoked_at: datetime | None
    last_used_at: datetime | None
    active: bool


class MintedOut(BaseModel):
    grant: GrantOut
    access_token: str = Field(description="the bearer token for the MCP server: shown once, never again")
    token_type: Literal["Bearer"] = "Bearer"
    mcp_url: str


def grant_out(grant: Grant) -> GrantOut:
    return GrantOut(grant_id=grant.grant_id, kind=grant.kind, label=grant.label, tier=grant.tier,
                    client_id=grant.client_id, created_at=grant.created_at, expires_at=grant.expires_at,
                    revoked_at=grant.revoked_at, last_used_at=grant.last_used_at, active=grant.active)


@router.post("", status_code=201, response_model=MintedOut, responses={**AUTH_ERRORS, **STEP_UP, **REJECTED})
async def mint_agent_token(body: AgentTokenIn, user: CurrentUser, grants: AgentGrantsDep) -> MintedOut:
    """A new agent token for the MCP server (after a two-factor step-up)."""
    minted = await grants.mint(user, label=body.label, tier=body.tier, expires_in_days=body.expires_in_days)
    return MintedOut(grant=grant_out(minted.grant), access_token=minted.access_token, mcp_url=grants.audience)


@router.get("", response_model=list[GrantOut], responses=AUTH_ERRORS)
async def list_agent_grants(user: CurrentUser, grants: AgentGrantsDep) -> list[GrantOut]:
    """Every agent token and OAuth grant of yours, newest first, revoked and expired ones included."""
    return [grant_out(g) for g in await grants.list_grants(user)]


@router.delete("/{grant_id}", response_model=GrantOut, responses={**AUTH_ERRORS, **NOT_FOUND})
async def revoke_agent_grant(grant_id: GrantId, user: CurrentUser, grants: AgentGrantsDep) -> GrantOut:
    """End a grant at once: its token is refused from the next call on."""
    return grant_out(await grants.revoke(user, grant_id))
