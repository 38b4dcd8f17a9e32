"""Health: is Durabot up, what it runs on, and what this token may do (PUBLIC)."""

from __future__ import annotations

from dataclasses import asdict
from datetime import UTC, datetime

from pydantic import BaseModel, Field

from gateway.mcp.registry import REGISTRY, current, tool
from gateway.routers.health import DependencyHealth, HealthResponse
from gateway.routers.system import SystemOut, get_system
from services.principal import TIERS


@tool("Health", "public", title="Health of Durabot", read_only=True)
async def get_health(deep: bool = False) -> HealthResponse:
    """Each dependency's status and latency: Temporal, MongoDB, the workers polling every task queue, the market
    feed's subscribers and Grok's circuit breaker. `deep` also runs a workflow through every task queue (slower).
    Overall status is ok, or degraded when anything is not."""
    report = await current().services.health.report(deep)
    return HealthResponse(status=report.status,
                          dependencies={k: DependencyHealth(**asdict(v)) for k, v in report.dependencies.items()})


@tool("Health", "public", title="System information", read_only=True)
async def get_system_info() -> SystemOut:
    """The exchange in use (`sim` or `binance`), the Temporal UI and namespace, and, on the local sim exchange,
    its replay speed and market time."""
    return await get_system(current().services.system)


class AccessOut(BaseModel):
    user_id: str
    tier: str = Field(description="the highest tier this token reaches: public < authenticated < sensitive < critical")
    tools_allowed: int = Field(description="how many of the served tools this token may call")
    tools_served: int
    grant_id: str = Field(description="the grant behind this token; the owner revokes it in the dashboard")


@tool("Health", "public", title="What this token may do", read_only=True)
async def get_access_info() -> AccessOut:
    """The user and tier of the token in use, and how many tools it may call. A tool above the tier is refused
    with HTTP 403 insufficient_scope: ask the account's owner for a grant with a higher tier."""
    call = current()
    reach = TIERS.index(call.principal.tier)
    allowed = sum(1 for spec in REGISTRY.values() if TIERS.index(spec.tier) <= reach)
    return AccessOut(user_id=call.user_id, tier=call.principal.tier, tools_allowed=allowed,
                     tools_served=len(REGISTRY), grant_id=call.grant_id)


class PingOut(BaseModel):
    pong: bool
    server_time: str = Field(description="the server's wall-clock time, ISO 8601 UTC")


@tool("Health", "public", title="Ping", read_only=True)
async def ping() -> PingOut:
    """Answers at once: the MCP server is reachable and the token is valid."""
    return PingOut(pong=True, server_time=datetime.now(UTC).isoformat())
