"""WebSocket authentication for account channels, as a shared dependency of ``/ws``.

A client proves who it is with an access token, either in the query (``/ws?token=...``) or in a
message ``{"type": "Auth", "token": "..."}`` (the first it sends, ideally, since browsers cannot set
headers on WebSockets and query strings end up in access logs). A bad token closes the connection:
4001 when the token is invalid, expired or its session ended, 4003 when a connection already
authenticated as one user presents another user's token. When the token expires the connection
closes with 4001 unless an ``Auth`` message has brought a fresh token of the same user first.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, WebSocket

from services.container import Services
from services.errors import StepUpRequired, Unauthenticated

CLOSE_INVALID_TOKEN = 4001
CLOSE_FORBIDDEN = 4003


class WebSocketAuthError(Exception):
    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


@dataclass
class WebSocketAuth:
    """One connection's identity. ``rejection`` is set when the query token was refused."""

    websocket: WebSocket
    user_id: str | None = None
    expires_at: float | None = None
    rejection: WebSocketAuthError | None = None

    async def authenticate(self, token: object) -> str:
        """Check a token and adopt its user; raises ``WebSocketAuthError`` with the close code."""
        if not isinstance(token, str) or not token:
            raise WebSocketAuthError(CLOSE_INVALID_TOKEN, "Auth needs an access token")
        services: Services = self.websocket.app.state.services
        try:
            found = await services.accounts.authenticate(token, "ws")
        except Unauthenticated as exc:
            raise WebSocketAuthError(CLOSE_INVALID_TOKEN, exc.message[:120]) from None
        except StepUpRequired as exc:  # an admin requires two-factor, which this user has not set up yet
            raise WebSocketAuthError(CLOSE_FORBIDDEN, exc.message[:120]) from None
        user_id = found.principal.user_id
        if self.user_id is not None and user_id != self.user_id:
            raise WebSocketAuthError(CLOSE_FORBIDDEN, "this connection belongs to another user")
        self.user_id, self.expires_at = user_id, float(found.token_expires_at)
        return user_id

    async def watch_expiry(self) -> None:
        """Return (so the caller closes with 4001) once the current token has expired."""
        while True:
            if self.expires_at is None:
                await asyncio.sleep(1.0)
                continue
            remaining = self.expires_at - time.time()
            if remaining <= 0:
                return
            await asyncio.sleep(min(remaining, 5.0))


async def websocket_auth(websocket: WebSocket) -> WebSocketAuth:
    auth = WebSocketAuth(websocket)
    token = websocket.query_params.get("token")
    if token is not None:
        try:
            await auth.authenticate(token)
        except WebSocketAuthError as exc:
            auth.rejection = exc
    return auth


WebSocketAuthDep = Annotated[WebSocketAuth, Depends(websocket_auth)]
