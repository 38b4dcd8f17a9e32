"""WebSocket ``/ws``: live events (JSON). Schema of every message: ``docs/websocket.md``.

Server → client: ``Connected``, ``MarketData``, ``ChartUpdate`` (public), account events, ``Ping``
every 30 s (answer with ``Pong`` within 10 s or the connection closes with 4008), ``Pong``, ``Error``.
Client → server: ``{"type": "Subscribe"|"Unsubscribe", "channels": [...], "symbols": [...]}``,
``{"type": "Ping"}``, ``{"type": "Pong"}``, ``{"type": "Auth", "token": ...}`` (or ``/ws?token=``) for
the account channels, answered ``Authenticated``; a bad or expired token closes the connection with 4001
(see gateway/auth/websocket.py). A new connection gets the public channels for every symbol until it
subscribes otherwise.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any

from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from starlette.websockets import WebSocketState

from activities.events import ACCOUNT_TYPES, PUBLIC_TYPES
from gateway.auth.websocket import CLOSE_INVALID_TOKEN, WebSocketAuthDep, WebSocketAuthError
from gateway.ws_hub import Subscriber

router = APIRouter()

PING_INTERVAL_S = 30.0
PONG_TIMEOUT_S = 10.0
CLOSE_PONG_TIMEOUT = 4008
CLOSE_TOO_SLOW = 4013
MAX_SYMBOLS = 200


def error(message: str, code: str, details: Any = None) -> dict[str, Any]:
    return {"type": "Error", "data": {"message": message, "code": code, "details": details}}


def apply_subscription(sub: Subscriber, message: dict[str, Any], authenticated: bool) -> dict[str, Any] | None:
    """Change ``sub`` as the message asks; return an Error message instead when it is invalid."""
    channels = message.get("channels", [])
    symbols = message.get("symbols", [])
    if not isinstance(channels, list) or not all(isinstance(c, str) for c in channels):
        return error("channels must be a list of strings", "invalid_message")
    if not isinstance(symbols, list) or not all(isinstance(s, str) and s.isalnum() for s in symbols):
        return error("symbols must be a list of alphanumeric strings", "invalid_message")
    if len(symbols) > MAX_SYMBOLS:
        return error(f"at most {MAX_SYMBOLS} symbols per connection", "invalid_message")
    unknown = sorted(set(channels) - PUBLIC_TYPES - ACCOUNT_TYPES)
    if unknown:
        return error(f"unknown channel(s): {', '.join(unknown)}", "unknown_channel",
                     {"known": sorted(PUBLIC_TYPES | ACCOUNT_TYPES)})
    private = sorted(set(channels) & ACCOUNT_TYPES)
    if private and not authenticated:
        return error(f"channel(s) {', '.join(private)} need an authenticated connection", "auth_required")
    if message["type"] == "Subscribe":
        sub.channels |= set(channels)
        sub.symbols |= {s.upper() for s in symbols}
    else:
        sub.channels -= set(channels)
        sub.symbols -= {s.upper() for s in symbols}
    return None


@router.websocket("/ws")
async def websocket_events(ws: WebSocket, auth: WebSocketAuthDep) -> None:
    hub = ws.app.state.durabot.hub
    await ws.accept()
    if auth.rejection is not None:
        await ws.close(auth.rejection.code, auth.rejection.reason)
        return
    sub = Subscriber(user_id=auth.user_id, channels=set(PUBLIC_TYPES))
    hub.add(sub)
    pong = asyncio.Event()
    pong.set()
    await ws.send_json({"type": "Connected", "data": {"message": "connected to Durabot events"}})

    async def pump() -> None:
        while True:
            message = await sub.queue.get()
            await ws.send_json(message)
            if sub.overflowed and sub.queue.empty():
                await ws.send_json(error("client too slow: events were dropped; reconnect", "too_slow"))
                await ws.close(CLOSE_TOO_SLOW)
                return

    async def heartbeat() -> None:
        while True:
            await asyncio.sleep(PING_INTERVAL_S)
            pong.clear()
            await ws.send_json({"type": "Ping", "data": {}})
            try:
                await asyncio.wait_for(pong.wait(), PONG_TIMEOUT_S)
            except TimeoutError:
                await ws.close(CLOSE_PONG_TIMEOUT, "no Pong within 10 s")
                return

    async def receive() -> None:
        while True:
            raw = await ws.receive_text()
            try:
                message = json.loads(raw)
                kind = message["type"]
            except (ValueError, KeyError, TypeError):
                await ws.send_json(error("messages are JSON objects with a type", "invalid_message"))
                continue
            if kind == "Ping":
                await ws.send_json({"type": "Pong", "data": {}})
            elif kind == "Pong":
                pong.set()
            elif kind == "Auth":
                try:
                    sub.user_id = await auth.authenticate(message.get("token"))
                except WebSocketAuthError as exc:
                    await ws.close(exc.code, exc.reason)
                    return
                await ws.send_json({"type": "Authenticated", "data": {"user_id": sub.user_id}})
            elif kind in ("Subscribe", "Unsubscribe"):
                problem = apply_subscription(sub, message, authenticated=sub.user_id is not None)
                await ws.send_json(problem or {"type": f"{kind}d", "data": {
                    "channels": sorted(sub.channels), "symbols": sorted(sub.symbols)}})
            else:
                await ws.send_json(error(f"unknown message type {kind!r}", "invalid_message"))

    async def token_expiry() -> None:
        await auth.watch_expiry()
        await ws.close(CLOSE_INVALID_TOKEN, "token expired; reconnect with a fresh token")

    tasks = [asyncio.create_task(coro) for coro in (pump(), heartbeat(), receive(), token_expiry())]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    except WebSocketDisconnect:
        pass
    finally:
        hub.remove(sub)
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, WebSocketDisconnect, RuntimeError):
                await task
        if ws.application_state == WebSocketState.CONNECTED and ws.client_state == WebSocketState.CONNECTED:
            with contextlib.suppress(RuntimeError):
                await ws.close()
