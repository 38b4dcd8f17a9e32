"""Fixtures of the /ws account-channel tests: a gateway with auth on a real socket (real Temporal +
SecantusDB), users signed up over HTTP, WebSocket helpers."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import pytest
import websockets
from pydantic import SecretStr

from activities.binance.key_vault import new_master_key_text
from tests.conftest import registered_and_logged_in

PASSWORD = "correct horse battery staple"
RECV_TIMEOUT_S = 5.0


@pytest.fixture
async def gateway(settings, jwt_private_pem, run_gateway) -> AsyncIterator[Any]:
    auth_settings = settings.model_copy(update={
        "jwt_private_key": SecretStr(jwt_private_pem),
        "master_key": SecretStr(new_master_key_text()),
        "login_attempts_per_ip": 1000,
    })
    async with run_gateway(auth_settings) as gw:
        yield gw


@dataclass
class User:
    user_id: str
    email: str
    access: str


@pytest.fixture
def sign_up(gateway: Any) -> Callable[[], Awaitable[User]]:
    async def sign_up() -> User:
        found = await registered_and_logged_in(gateway.http, PASSWORD)
        return User(found["user_id"], found["email"], found["access_token"])

    return sign_up


class Socket:
    """A client connection that reads one JSON frame at a time, with a bounded wait."""

    def __init__(self, ws: Any) -> None:
        self.ws = ws

    async def send(self, message: dict[str, Any]) -> None:
        await self.ws.send(json.dumps(message))

    async def recv(self) -> dict[str, Any]:
        return json.loads(await asyncio.wait_for(self.ws.recv(), RECV_TIMEOUT_S))

    async def request(self, message: dict[str, Any]) -> dict[str, Any]:
        await self.send(message)
        return await self.recv()

    async def subscribe(self, channels: list[str], symbols: list[str] | None = None, **extra: Any) -> dict:
        reply = await self.request({"type": "Subscribe", "channels": channels, "symbols": symbols or [], **extra})
        assert reply["type"] == "Subscribed", reply
        return reply["data"]


@pytest.fixture
def connect(gateway: Any) -> Callable[..., Any]:
    """``async with connect(token) as sock:`` — connected (``Connected`` read) as that token's user, or anonymous."""
    from contextlib import asynccontextmanager

    base = gateway.settings.gateway_url.replace("http://", "ws://") + "/ws"

    @asynccontextmanager
    async def connect(token: str | None = None) -> AsyncIterator[Socket]:
        async with websockets.connect(base + (f"?token={token}" if token else "")) as ws:
            sock = Socket(ws)
            assert (await sock.recv())["type"] == "Connected"
            yield sock

    return connect
