"""The MCP rig: the sim exchange and the sim xAI, the product's workers of every role, and a gateway
serving REST and MCP on real sockets; people who mint agent tokens through the API, and the MCP SDK's
own client speaking Streamable HTTP to the server over real HTTP."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.types import CallToolResult
from pydantic import SecretStr

from activities.binance.key_vault import new_master_key_text
from core.contracts import TASK_QUEUES
from sim.exchange import SimExchangeServer
from tests.conftest import enrol_two_factor, registered_and_logged_in, worker_running

PASSWORD = "correct horse battery staple"
XAI_KEY = "xai-test-key-0123456789"


@pytest.fixture
async def mcp_sim(start_sim) -> SimExchangeServer:
    return await start_sim(max_candles_per_series=1500)


@pytest.fixture
def mcp_settings(settings, jwt_private_pem, mcp_sim):
    return settings.model_copy(update={
        "jwt_private_key": SecretStr(jwt_private_pem), "master_key": SecretStr(new_master_key_text()),
        "login_attempts_per_ip": 1000, "task_queue_prefix": f"mcp-{uuid.uuid4().hex[:10]}-",
        "exchange_rest_url": mcp_sim.rest_url, "exchange_futures_url": mcp_sim.rest_url,
        "exchange_futures_ws_url": mcp_sim.ws_url,
        "order_confirm_expiry_s": 60.0, "order_submit_timeout_s": 3.0, "order_request_timeout_s": 2.0,
        "order_protection_window_s": 3.0, "order_poll_interval_s": 0.5,
    })


@pytest.fixture
async def mcp_gateway(mcp_settings, run_gateway, temporal_client, mongo_client) -> AsyncIterator[Any]:
    db = mongo_client[mcp_settings.mongo_database]
    async with AsyncExitStack() as stack:
        for role in TASK_QUEUES:
            await stack.enter_async_context(worker_running(temporal_client, mcp_settings, db, f"mcp-{role}", role))
        yield await stack.enter_async_context(run_gateway(mcp_settings))


@dataclass
class Person:
    """A user in a human login session, enrolled in two-factor authentication and stepped up."""

    user_id: str
    access: str
    totp: Any

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.access}"}


async def new_person(gateway: Any) -> Person:
    body = await registered_and_logged_in(gateway.http, PASSWORD)
    headers = {"Authorization": f"Bearer {body['access_token']}"}
    totp = await enrol_two_factor(gateway.http, headers)
    return Person(body["user_id"], body["access_token"], totp)


async def mint_token(gateway: Any, person: Person, tier: str, *, label: str = "test agent", days: int = 7) -> str:
    reply = await gateway.http.post("/api/agent-tokens", headers=person.headers,
                                    json={"label": label, "tier": tier, "expires_in_days": days})
    assert reply.status_code == 201, reply.text
    return reply.json()["access_token"]


@pytest.fixture
def person(mcp_gateway) -> Callable[[], Awaitable[Person]]:
    async def make() -> Person:
        return await new_person(mcp_gateway)

    return make


@asynccontextmanager
async def mcp_client(url: str, token: str | None, **options: Any) -> AsyncIterator[Client]:
    """The SDK's client over Streamable HTTP with ``token`` as its bearer token (``options``: the
    client's, e.g. an ``elicitation_callback``)."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with httpx2.AsyncClient(headers=headers, timeout=60) as http, \
            Client(streamable_http_client(url, http_client=http), **options) as client:
        yield client


def structured(result: CallToolResult) -> Any:
    """A successful call's structured content (tools returning lists wrap them in ``result``)."""
    assert not result.is_error, result.content
    assert result.structured_content is not None, result.content
    return result.structured_content


def error_text(result: CallToolResult) -> str:
    assert result.is_error, result.structured_content
    return " ".join(getattr(part, "text", "") for part in result.content)


async def raw_call(url: str, token: str | None, tool: str, arguments: dict[str, Any] | None = None,
                   headers: dict[str, str] | None = None) -> httpx.Response:
    """A ``tools/call`` as plain JSON-RPC over HTTP, to see the status and headers the server answers."""
    sent = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream",
            "MCP-Protocol-Version": "2025-11-25", **(headers or {})}
    if token:
        sent["Authorization"] = f"Bearer {token}"
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": tool, "arguments": arguments or {}}}
    async with httpx.AsyncClient(timeout=30) as http:
        return await http.post(url, content=json.dumps(body), headers=sent)
