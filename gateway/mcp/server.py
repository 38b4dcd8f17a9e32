"""The MCP server: Streamable HTTP at ``/mcp`` on its own port, run by each gateway process.

It is an OAuth 2.1 resource server (RFC 9728 metadata at ``/.well-known/oauth-protected-resource/mcp``;
401 with ``WWW-Authenticate: Bearer … resource_metadata=…``; tokens checked for issuer, audience and
expiry by ``services.agent_grants``), and the gateway on the REST port is its authorization server.
Before the SDK sees a ``tools/call``, ``TierGate`` answers 403 ``insufficient_scope`` when the token's
tier is below the tool's, and 429 beyond the per-token call limit, so the refusal is the HTTP status
an MCP client acts on (step-up authorization), not a tool result a model might argue with.
Host and Origin are checked against DNS rebinding by the SDK's transport security.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

import uvicorn
from mcp.server.auth.middleware.auth_context import get_access_token
from mcp.server.auth.provider import AccessToken, TokenVerifier
from mcp.server.auth.settings import AuthSettings
from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.tools import Tool
from mcp.server.transport_security import TransportSecuritySettings
from mcp.types import ToolAnnotations
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from core.settings import Settings
from gateway.mcp import tools
from gateway.mcp.registry import REGISTRY, ToolSpec, run_tool, serving
from gateway.mcp.resources import register_resources
from services.agent_grants import AgentAccess, AgentGrants, scopes_for, tier_scope
from services.auth.rate_limit import SharedWindowLimiter
from services.principal import TIERS

if TYPE_CHECKING:
    from services.container import Services

log = logging.getLogger("durabot.mcp")

INSTRUCTIONS = (
    "Durabot: crypto trading on durable workflows, paper by default. Tools are tiered (public, authenticated, "
    "sensitive, critical) by the token's grant. Writes take an idempotency_key: retry with the same key, never a "
    "new one, when unsure whether a call went through. Critical tools never act: they create an order "
    "confirmation or a tuning approval that the account's owner confirms in the dashboard or Telegram; no tool "
    "can confirm or approve anything.")
MAX_BODY = 4 * 1024 * 1024
PRM_PATH = "/.well-known/oauth-protected-resource/mcp"

# The access verified for this request by TierGate, reused by the SDK's bearer check (one read, not two).
_verified: ContextVar[tuple[str, AgentAccess | None] | None] = ContextVar("durabot_mcp_verified", default=None)


class GrantVerifier(TokenVerifier):
    def __init__(self, grants: AgentGrants) -> None:
        self.grants = grants

    async def access(self, token: str) -> AgentAccess | None:
        cached = _verified.get()
        if cached is not None and cached[0] == token:
            return cached[1]
        found = await self.grants.verify(token)
        _verified.set((token, found))
        return found

    async def verify_token(self, token: str) -> AccessToken | None:
        found = await self.access(token)
        if found is None:
            return None
        return AccessToken(token=token, client_id=found.client_id, scopes=scopes_for(found.tier),
                           expires_at=found.expires_at, resource=self.grants.audience, subject=found.user_id,
                           claims={"iss": self.grants.issuer, "grant_id": found.grant_id, "tier": found.tier})


def request_access() -> AgentAccess | None:
    """The verified access of the tool call being served (from the SDK's auth context)."""
    token = get_access_token()
    if token is None or not token.claims or token.subject is None:
        return None
    return AgentAccess(grant_id=token.claims["grant_id"], user_id=token.subject, tier=token.claims["tier"],
                       client_id=token.client_id, expires_at=token.expires_at or 0)


def annotations_of(spec: ToolSpec) -> ToolAnnotations:
    return ToolAnnotations(title=spec.title, read_only_hint=spec.read_only,
                           destructive_hint=False if spec.read_only else spec.destructive,
                           idempotent_hint=spec.idempotent, open_world_hint=spec.open_world)


@functools.cache
def served_tools() -> tuple[Tool, ...]:
    """Every tool as the SDK serves it, built once per process (schemas take a while to derive): a server
    finds its services per request (``serving``)."""
    tools.load()
    return tuple(Tool.from_function(run_tool(spec, request_access), name=spec.name, title=spec.title,
                                    description=spec.description, annotations=annotations_of(spec),
                                    meta={"durabot/tier": spec.tier, "durabot/category": spec.category},
                                    structured_output=True)
                 for spec in REGISTRY.values())


def build_server(services: Services, verifier: GrantVerifier) -> MCPServer:
    settings = services.settings
    server: MCPServer = MCPServer(
        name="durabot", title="Durabot", version="0.1.0", instructions=INSTRUCTIONS, token_verifier=verifier,
        auth=AuthSettings(issuer_url=settings.gateway_url, resource_server_url=settings.mcp_url,  # type: ignore[arg-type]
                          validate_token_resource=True, required_scopes=[tier_scope("public")]),
        tools=list(served_tools()), warn_on_duplicate_tools=True)
    register_resources(server, services, request_access)
    return server


def transport_security(settings: Settings) -> TransportSecuritySettings:
    hosts = ["127.0.0.1:*", "localhost:*", "[::1]:*"]
    origins = ["http://127.0.0.1:*", "http://localhost:*", "http://[::1]:*"]
    public = settings.mcp_public_url
    if public:
        netloc = public.split("://", 1)[-1].split("/", 1)[0]
        hosts.append(netloc)
        origins.append(public.split("://", 1)[0] + "://" + netloc)
    origins += [o.strip() for o in settings.mcp_allowed_origins.split(",") if o.strip()]
    return TransportSecuritySettings(enable_dns_rebinding_protection=True, allowed_hosts=hosts,
                                     allowed_origins=origins)


class TierGate:
    """Serves the resource metadata, and refuses a ``tools/call`` above the token's tier (403) or over
    its call limit (429) before the SDK runs it."""

    def __init__(self, app: ASGIApp, services: Services, verifier: GrantVerifier) -> None:
        self.app = app
        self.services = services
        self.settings = services.settings
        self.verifier = verifier
        self.limiter = SharedWindowLimiter(services.db, "mcp_calls", services.settings.mcp_calls_per_minute, 60)

    @property
    def metadata_url(self) -> str:
        base, _, _ = self.settings.mcp_url.rpartition("/mcp")
        return f"{base}{PRM_PATH}"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        serving.set(self.services)
        path = scope.get("path", "")
        if path == PRM_PATH and scope["method"] == "GET":
            await _json(send, 200, self.resource_metadata())
            return
        if path != "/mcp" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        body = await _read_body(receive)
        if body is None:
            await _json(send, 413, {"error": "request body too large"})
            return
        _verified.set(None)
        refusal = await self._refusal(scope, body)
        if refusal is not None:
            status, payload, headers = refusal
            await _json(send, status, payload, headers)
            return
        await self.app(scope, _replay(body, receive), send)

    def resource_metadata(self) -> dict[str, Any]:
        return {"resource": self.settings.mcp_url, "authorization_servers": [self.settings.gateway_url],
                "scopes_supported": [tier_scope(t) for t in TIERS], "bearer_methods_supported": ["header"],
                "resource_name": "Durabot MCP",
                "resource_documentation": f"{self.settings.gateway_url}/docs/mcp"}

    async def _refusal(self, scope: Scope, body: bytes) -> tuple[int, dict[str, Any], dict[str, str]] | None:
        tool = _called_tool(body)
        if tool is None:
            return None
        token = _bearer(scope)
        access = await self.verifier.access(token) if token else None
        if access is None:
            return None  # the SDK answers 401 with its WWW-Authenticate
        spec = REGISTRY.get(tool)
        if spec is not None and TIERS.index(access.tier) < TIERS.index(spec.tier):
            needed = " ".join(scopes_for(spec.tier))
            challenge = (f'Bearer error="insufficient_scope", scope="{needed}", '
                         f'resource_metadata="{self.metadata_url}", '
                         f'error_description="{tool} needs the {spec.tier} tier"')
            return 403, {"error": "insufficient_scope", "error_description": f"{tool} needs the {spec.tier} tier; "
                         f"this token allows {access.tier}"}, {"www-authenticate": challenge}
        wait = await self.limiter.retry_after(access.grant_id)
        if wait is not None:
            return 429, {"error": "too_many_requests", "error_description":
                         f"more than {self.settings.mcp_calls_per_minute} tool calls a minute with this token"}, \
                {"retry-after": str(wait)}
        await self.limiter.record(access.grant_id)
        return None


def _bearer(scope: Scope) -> str | None:
    for name, value in scope.get("headers", []):
        if name == b"authorization":
            text = value.decode("latin-1")
            if text.lower().startswith("bearer "):
                return text[7:].strip() or None
    return None


def _called_tool(body: bytes) -> str | None:
    try:
        message = json.loads(body)
    except ValueError:
        return None
    if isinstance(message, dict) and message.get("method") == "tools/call":
        params = message.get("params")
        name = params.get("name") if isinstance(params, dict) else None
        return name if isinstance(name, str) else None
    return None


async def _read_body(receive: Receive) -> bytes | None:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replayed() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replayed


async def _json(send: Send, status: int, payload: dict[str, Any], headers: dict[str, str] | None = None) -> None:
    data = json.dumps(payload).encode()
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode())]
    raw += [(k.encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": data})


def mcp_app(services: Services) -> ASGIApp:
    verifier = GrantVerifier(services.agent_grants)
    server = build_server(services, verifier)
    app = server.streamable_http_app(streamable_http_path="/mcp", stateless_http=True, json_response=True,
                                     transport_security=transport_security(services.settings),
                                     host=services.settings.gateway_host)
    return TierGate(app, services, verifier)


class _EmbeddedServer(uvicorn.Server):
    # The REST server in the same process owns the signal handlers; this one stops when told.
    async def serve(self, sockets: Any = None) -> None:
        await self._serve(sockets)


@asynccontextmanager
async def serving_mcp(services: Services) -> AsyncIterator[None]:
    """Run the MCP server beside the REST gateway for as long as the context lasts (if enabled)."""
    settings = services.settings
    if not settings.mcp_enabled:
        yield
        return
    # The SDK logs each failed call's text at INFO, arguments and all; our audit records calls without them.
    logging.getLogger("mcp").setLevel(logging.WARNING)
    config = uvicorn.Config(mcp_app(services), host=settings.gateway_host, port=settings.mcp_port, log_config=None,
                            lifespan="on", proxy_headers=True, forwarded_allow_ips=settings.forwarded_allow_ips)
    # Bound here, so a taken port is one clear error rather than uvicorn exiting the whole process.
    try:
        listening = config.bind_socket()
    except SystemExit:
        raise RuntimeError(f"the MCP port {settings.mcp_port} is already in use (DURABOT_MCP_PORT)") from None
    server = _EmbeddedServer(config)
    task = asyncio.create_task(server.serve(sockets=[listening]), name="mcp-server")
    while not server.started and not task.done():  # noqa: ASYNC110 (uvicorn offers no event to wait on)
        await asyncio.sleep(0.02)
    if task.done():
        listening.close()
        raise RuntimeError(f"the MCP server did not start on port {settings.mcp_port} (DURABOT_MCP_PORT)")
    log.info("mcp ready", extra={"fields": {"url": settings.mcp_url, "tools": len(REGISTRY)}})
    try:
        yield
    finally:
        server.should_exit = True
        await asyncio.gather(task, return_exceptions=True)

