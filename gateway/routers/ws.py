"""WebSocket ``/ws``: live events (JSON). Schema of every message: ``docs/websocket.md``.

Server → client: ``Connected``, ``MarketData``, ``ChartUpdate`` (public), account events, ``Ping``
every 30 s (answer with ``Pong`` within 10 s or the connection closes with 4008), ``Pong``, ``Error``.
Client → server: ``{"type": "Subscribe"|"Unsubscribe", "channels": [...], "symbols": [...]}``,
``{"type": "Ping"}``, ``{"type": "Pong"}``, ``{"type": "Auth", "token": ...}`` (or ``/ws?token=``) for
the account channels, answered ``Authenticated``; a bad or expired token closes the connection with 4001
(see gateway/auth/websocket.py). A new connection gets the public channels for every symbol until it
subscribes otherwise. ``Subscribe`` may carry ``since``, the ``cursor`` of the last event frame a
previous connection received: the events it missed are sent first, then ``Replayed``, then live ones.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any

from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from starlette.websockets import WebSocketState

from core.event_types import ACCOUNT_TYPES, PUBLIC_TYPES
from gateway.auth.websocket import CLOSE_INVALID_TOKEN, WebSocketAuthDep, WebSocketAuthError
from services.event_hub import EventHub, ReplayError, Subscriber

router = APIRouter()

PING_INTERVAL_S = 30.0
PONG_TIMEOUT_S = 10.0
CLOSE_PONG_TIMEOUT = 4008
CLOSE_TOO_SLOW = 4013
MAX_SYMBOLS = 200
ALL_SYMBOLS = "*"
# Below PONG_TIMEOUT_S: the receive loop sends a replay, so a Pong waits at most this long to be read.
REPLAY_TIMEOUT_S = 5.0


def error(message: str, code: str, details: Any = None) -> dict[str, Any]:
    return {"type": "Error", "data": {"message": message, "code": code, "details": details}}


def apply_subscription(sub: Subscriber, message: dict[str, Any], authenticated: bool) -> dict[str, Any] | None:
    """Change ``sub`` as the message asks; return an Error message instead when it is invalid."""
    channels = message.get("channels", [])
    symbols = message.get("symbols", [])
    if not isinstance(channels, list) or not all(isinstance(c, str) for c in channels):
        return error("channels must be a list of strings", "invalid_message")
    if not isinstance(symbols, list) or not all(isinstance(s, str) and (s.isalnum() or s == ALL_SYMBOLS)
                                                for s in symbols):
        return error("symbols must be a list of alphanumeric strings (or \"*\" for every symbol)",
                     "invalid_message")
    if len(symbols) > MAX_SYMBOLS:
        return error(f"at most {MAX_SYMBOLS} symbols per connection", "invalid_message")
    unknown = sorted(set(channels) - PUBLIC_TYPES - ACCOUNT_TYPES)
    if unknown:
        return error(f"unknown channel(s): {', '.join(unknown)}", "unknown_channel",
                     {"known": sorted(PUBLIC_TYPES | ACCOUNT_TYPES)})
    private = sorted(set(channels) & ACCOUNT_TYPES)
    if private and not authenticated:
        return error(f"channel(s) {', '.join(private)} need an authenticated connection", "auth_required")
    named = {s.upper() for s in symbols if s != ALL_SYMBOLS}
    if message["type"] == "Subscribe":
        sub.channels |= set(channels)
        if ALL_SYMBOLS in symbols:
            sub.symbols = None
        elif named:
            # Naming symbols narrows a connection that followed every symbol to just those.
            sub.symbols = named if sub.symbols is None else sub.symbols | named
    else:
        if ALL_SYMBOLS in symbols or (named and sub.symbols is None):
            return error("this connection follows every symbol: Subscribe to a list of symbols instead",
                         "invalid_message")
        sub.channels -= set(channels)
        if sub.symbols is not None:
            # An empty set stays empty (no symbol's events), it never falls back to every symbol.
            sub.symbols -= named
    return None


def subscription(sub: Subscriber) -> dict[str, Any]:
    return {"channels": sorted(sub.channels), "symbols": sorted(sub.symbols or ()),
            "all_symbols": sub.symbols is None}


async def send_replay(ws: WebSocket, hub: EventHub, sub: Subscriber, cursor: object) -> None:
    """Send what the connection missed since ``cursor``, then let the live events it queued meanwhile go."""
    sub.live.clear()
    sent = 0
    try:
        async with asyncio.timeout(REPLAY_TIMEOUT_S), contextlib.aclosing(hub.replay(sub, cursor)) as frames:
            async for frame in frames:
                await ws.send_json(frame)
                sent += 1
    except ReplayError as exc:
        await ws.send_json(error(exc.message, exc.code, {"replayed": sent}))
    except TimeoutError:
        await ws.send_json(error(f"replay took over {REPLAY_TIMEOUT_S:.0f} s; reload state over REST",
                                 "replay_truncated", {"replayed": sent}))
    else:
        await ws.send_json({"type": "Replayed", "data": {"events": sent}})
    finally:
        sub.live.set()


@router.websocket("/ws")
async def websocket_events(ws: WebSocket, auth: WebSocketAuthDep) -> None:
    hub: EventHub = ws.app.state.services.hub
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
            await sub.live.wait()
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
                await ws.send_json(problem or {"type": f"{kind}d", "data": subscription(sub)})
                if problem is None and kind == "Subscribe" and message.get("since") is not None:
                    await send_replay(ws, hub, sub, message["since"])
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
