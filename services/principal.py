"""Who asks: the user, the channel the request came through, and what that channel may do."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from services.errors import Forbidden

Channel = Literal["rest", "ws", "mcp", "telegram", "cli"]
Role = Literal["user", "admin"]
# What a principal may reach, lowest first (MCP tokens are granted one; a human session has all).
Tier = Literal["public", "authenticated", "sensitive", "critical"]
TIERS: tuple[Tier, ...] = ("public", "authenticated", "sensitive", "critical")


@dataclass(frozen=True)
class Principal:
    user_id: str
    channel: Channel
    role: Role = "user"
    # The login session behind the token (None for channels without one).
    session_id: str | None = None
    # A person in a human session (a password login, a linked Telegram user), as opposed to an agent.
    human: bool = True
    tier: Tier = "critical"
    ip: str | None = None
    # Whether the user has two-factor authentication on, and when this login session last took a
    # code (epoch seconds; None: not since its last token refresh).
    two_factor: bool = False
    stepped_up_at: float | None = None

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"

    def require(self, tier: Tier) -> None:
        """Refuse when this principal's tier is below ``tier``."""
        if TIERS.index(self.tier) < TIERS.index(tier):
            raise Forbidden(f"this needs the {tier} tier; the credentials used allow {self.tier}")

    def require_admin(self) -> None:
        if not self.is_admin:
            raise Forbidden("admin role required")
