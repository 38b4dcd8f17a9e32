"""The MCP tool registry: each tool an adapter over one application-service use case, tagged with its tier.

A tool module declares its functions with ``@tool(category, tier, …)``; ``gateway.mcp.server`` registers
them on the SDK server wrapped by ``run_tool``, which hands the function its caller (``current()``:
the services and the agent's ``Principal``, never human), maps domain errors to tool errors whose text
is safe to show a language model, and audits the call (tool, user, tier, outcome, duration; only the
names of the arguments, never their values).
"""

from __future__ import annotations

import functools
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any, Literal, TypeVar

from mcp.server.mcpserver.exceptions import ToolError
from pydantic import Field

from services.errors import (
    Conflict,
    DomainError,
    Forbidden,
    NeedsConfirmation,
    NotFound,
    Rejected,
    StepUpRequired,
    TooManyRequests,
    Unauthenticated,
    Unavailable,
    UpstreamFailed,
)
from services.principal import TIERS, Principal, Tier

if TYPE_CHECKING:
    from services.container import Services

log = logging.getLogger("durabot.mcp")

Category = Literal["Health", "Market", "Paper Trading", "Real Trading", "AI", "Tasks", "Monitoring", "Settings",
                   "Auth", "Tuning", "Backtests"]
CATEGORIES: tuple[Category, ...] = ("Health", "Market", "Paper Trading", "Real Trading", "AI", "Tasks",
                                    "Monitoring", "Settings", "Auth", "Tuning", "Backtests")

# Every write takes one: a retry with the same key returns the first result and changes nothing.
IdempotencyKey = Annotated[str, Field(
    min_length=8, max_length=128, pattern=r"^[A-Za-z0-9_.:-]+$",
    description="A unique key per intended action (8-128 of A-Z a-z 0-9 - _ . :). Repeating a call with the same "
                "key and arguments returns the first result and changes nothing.")]

F = TypeVar("F", bound=Callable[..., Awaitable[Any]])


@dataclass(frozen=True)
class ToolSpec:
    fn: Callable[..., Awaitable[Any]]
    name: str
    category: Category
    tier: Tier
    title: str
    description: str
    read_only: bool
    destructive: bool
    idempotent: bool
    open_world: bool


REGISTRY: dict[str, ToolSpec] = {}


def tool(category: Category, tier: Tier, *, title: str, read_only: bool = False, destructive: bool = False,
         idempotent: bool = False, open_world: bool = False, name: str | None = None) -> Callable[[F], F]:
    """Declare an MCP tool. Its docstring is the description a model reads: say what it does, what it
    returns and, for a CRITICAL tool, that a person confirms it elsewhere."""
    if tier not in TIERS:
        raise ValueError(f"unknown tier {tier!r}")

    def declare(fn: F) -> F:
        tool_name = name or fn.__name__
        if tool_name in REGISTRY:
            raise ValueError(f"MCP tool {tool_name!r} declared twice")
        description = " ".join((fn.__doc__ or "").split())
        if not description:
            raise ValueError(f"MCP tool {tool_name!r} needs a docstring: it is what the model reads")
        REGISTRY[tool_name] = ToolSpec(fn=fn, name=tool_name, category=category, tier=tier, title=title,
                                       description=description, read_only=read_only,
                                       destructive=destructive, idempotent=idempotent or read_only,
                                       open_world=open_world)
        return fn

    return declare


@dataclass(frozen=True)
class Call:
    """What a running tool reaches: the process's services and the agent it acts for."""

    services: Services
    principal: Principal
    grant_id: str
    client_id: str

    @property
    def user_id(self) -> str:
        return self.principal.user_id


_current: ContextVar[Call] = ContextVar("durabot_mcp_call")
# The services of the MCP server serving this request (set per request by the server), so the tools
# themselves are built once per process whatever server runs them.
serving: ContextVar[Services] = ContextVar("durabot_mcp_services")


def current() -> Call:
    return _current.get()


def tool_error(exc: DomainError) -> ToolError:
    """A domain error as a tool error the model can act on (its text is safe by construction)."""
    if isinstance(exc, NeedsConfirmation):
        return ToolError(f"needs confirmation: {exc.message} (confirmation {exc.confirmation_id})")
    if isinstance(exc, Rejected | Conflict):
        field = getattr(exc, "field", None)
        prefix = "conflict" if isinstance(exc, Conflict) else "rejected"
        return ToolError(f"{prefix}: {field}: {exc.message}" if field else f"{prefix}: {exc.message}")
    if isinstance(exc, StepUpRequired):
        return ToolError(f"forbidden: {exc.message}. Only the account's owner can do this, in the dashboard.")
    kinds: tuple[tuple[type[DomainError], str], ...] = (
        (NotFound, "not found"), (Forbidden, "forbidden"), (Unauthenticated, "unauthenticated"),
        (TooManyRequests, "too many requests"), (Unavailable, "unavailable, try again shortly"),
        (UpstreamFailed, "the exchange failed"))
    for kind, label in kinds:
        if isinstance(exc, kind):
            return ToolError(f"{label}: {exc.message}")
    return ToolError(exc.message)


def outcome_of(exc: BaseException | None) -> str:
    if exc is None:
        return "ok"
    if isinstance(exc, DomainError):
        return type(exc).__name__
    if isinstance(exc, ToolError):
        return "tool_error"
    return "error"


def run_tool(spec: ToolSpec, access_of: Callable[[], Any]) -> Callable[..., Awaitable[Any]]:
    """``spec.fn`` as the SDK calls it: with its caller set, errors mapped and the call audited.

    ``access_of()`` answers the verified ``AgentAccess`` of the request (None when there is none)."""

    @functools.wraps(spec.fn)
    async def run(*args: Any, **kwargs: Any) -> Any:
        services = serving.get()
        access = access_of()
        if access is None:
            raise ToolError("unauthenticated: this tool needs an MCP access token")
        principal: Principal = access.principal()
        # The HTTP layer answers 403 insufficient_scope first; this keeps the rule where the tool runs too.
        if TIERS.index(principal.tier) < TIERS.index(spec.tier):
            raise ToolError(f"forbidden: {spec.name} needs the {spec.tier} tier; this token allows {principal.tier}")
        token = _current.set(Call(services, principal, access.grant_id, access.client_id))
        started = time.perf_counter()
        failure: BaseException | None = None
        try:
            return await spec.fn(*args, **kwargs)
        except DomainError as exc:
            failure = exc
            raise tool_error(exc) from None
        except BaseException as exc:
            failure = exc
            raise
        finally:
            _current.reset(token)
            await _audit(services, spec, access, sorted(kwargs), outcome_of(failure),
                         round((time.perf_counter() - started) * 1000, 2))

    return run


async def _audit(services: Services, spec: ToolSpec, access: Any, argument_names: list[str], outcome: str,
                 ms: float) -> None:
    entry = {"call_id": uuid.uuid4().hex, "at": datetime.now(UTC), "user_id": access.user_id,
             "grant_id": access.grant_id, "client_id": access.client_id, "tool": spec.name, "tier": spec.tier,
             "outcome": outcome, "ms": ms, "arguments": argument_names}
    log.info("mcp tool call", extra={"fields": {k: v for k, v in entry.items() if k != "at"}})
    try:
        await services.db.mcp_audit.insert_one(entry)
    except Exception:  # an audit write must not turn a done action into a reported failure
        log.warning("mcp audit entry not written", extra={"fields": {"tool": spec.name}}, exc_info=True)
