"""Auth: the user's own profile and the agent grants they gave (AUTHENTICATED reads).

Logging in, registering, refreshing or ending a login session take a password, a two-factor code or a
token, none of which may pass through a language model: those stay with the person (dashboard, API)."""

from __future__ import annotations

from pydantic import Field

from gateway.auth.schemas import UserOut
from gateway.mcp.registry import current, tool
from gateway.routers.agent_tokens import GrantOut, grant_out
from gateway.routers.auth import _user_out


class ProfileOut(UserOut):
    two_factor_enabled: bool = Field(description="whether the account has two-factor authentication on")


@tool("Auth", "authenticated", title="Your profile", read_only=True)
async def get_profile() -> ProfileOut:
    """The account this token acts for: its user ID, email, role (user or admin), display name, when it was
    created, and whether two-factor authentication is on."""
    call = current()
    user = _user_out(await call.services.accounts.me(call.principal))
    status = await call.services.two_factor.status(call.principal)
    return ProfileOut(**user.model_dump(), two_factor_enabled=status.enabled)


@tool("Auth", "authenticated", title="Agent grants", read_only=True)
async def list_agent_grants() -> list[GrantOut]:
    """Every agent token and OAuth grant of the account, newest first, revoked and expired ones included: label,
    tier, client, created, expires, last used, and whether it is active. No token is shown; only the account's
    owner mints or revokes grants, in the dashboard."""
    call = current()
    return [grant_out(g) for g in await call.services.agent_grants.list_for_agent(call.principal)]
