"""One-time secrets of human channels (approvals, order confirmations): minted here, shown once to
their owner, and known to workflows only by their HMAC under a key derived from the master key."""

from __future__ import annotations

import base64
import hashlib
import hmac

from services.principal import Principal

# The human channel whose secret a request through each API channel uses (MCP has none: agents never
# approve or confirm).
TOKEN_CHANNEL = {"rest": "dashboard", "ws": "dashboard", "cli": "dashboard", "telegram": "telegram"}


class OneTimeTokens:
    def __init__(self, master_key: bytes, purpose: bytes) -> None:
        self._key = hmac.new(master_key, purpose, hashlib.sha256).digest()

    def digest(self, token: str) -> str:
        return hmac.new(self._key, token.encode(), hashlib.sha256).hexdigest()

    def derived(self, seed: str, channel: str) -> str:
        """A token derived from a write's ID: a repeat of the same write shows the same token."""
        raw = hmac.new(self._key, f"token:{seed}:{channel}".encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(raw[:24]).decode()


def human_channel(principal: Principal) -> str | None:
    """The caller's token channel, or None for an agent or a channel without one."""
    return TOKEN_CHANNEL.get(principal.channel) if principal.human else None
