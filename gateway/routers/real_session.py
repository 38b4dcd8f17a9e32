"""``/api/real-trading``: the caller's real session. An adapter over ``services.real_session.RealSessions``.

Settings change through the tuning tiers (``PUT /settings``): what lowers risk and GREEN apply at
once, YELLOW and RED answer a proposal that waits for its owner.

Starting is a RED approval: ``POST /start`` (a person with a fresh two-factor step-up) configures the
session with the paper session's settings and answers the proposal; approving it with its exact text
(``POST /api/tuning/proposals/{n}/approve-text``, another step-up) starts it. Stopping, stopping entries
and stopping with a flatten are never blocked. An agent may read and stop, and with a critical grant
request a start (over MCP; a person approves it); never resume or adopt (403).
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any

from fastapi import APIRouter, Query

from core.real_session_contracts import RealSessionStatus
from gateway.auth.deps import AUTH_ERRORS, STEP_UP, CurrentUser, Responses
from gateway.deps import IdempotencyKey, RealSessionsDep
from gateway.errors import RejectedOut
from gateway.paper.schemas import ErrorOut
from gateway.paper.tuning_schemas import ProposalCreatedOut, ProposeIn
from gateway.real.session_schemas import (
    LedgerEntryOut,
    RealEntriesIn,
    RealSessionOut,
    RealSettingsOut,
    RealStartIn,
    RealStartOut,
    RealStopIn,
)
from gateway.routers.tuning import created_out
from services.real_session import RealStartRequest

router = APIRouter(prefix="/api/real-trading", tags=["real-trading"])

REJECTED: Responses = {422: {"model": RejectedOut, "description": "Not possible now (field, reason): no key, no "
                                                                  "symbols, trading already, differences unresolved"}}
CONFLICT: Responses = {409: {"model": RejectedOut, "description": "A start awaits approval or cools down"}}
FORBIDDEN: Responses = {403: {"model": ErrorOut, "description": "Only a person starts, resumes or adopts"}}
NOT_FOUND: Responses = {404: {"model": ErrorOut, "description": "No real session yet"}}
UPSTREAM: Responses = {502: {"model": ErrorOut, "description": "The exchange could not be read"},
                       503: {"model": ErrorOut, "description": "Temporal could not answer in time"}}
WRITE = {**AUTH_ERRORS, **REJECTED, **NOT_FOUND, **UPSTREAM}


def session_out(status: RealSessionStatus) -> RealSessionOut:
    return RealSessionOut.model_validate(asdict(status))


@router.get("/status", response_model=RealSessionOut, responses={**AUTH_ERRORS, **UPSTREAM})
async def real_status(user: CurrentUser, sessions: RealSessionsDep) -> RealSessionOut:
    """The real session: status, positions with their protective orders, alerts, the last reconciliation."""
    return session_out(await sessions.status(user))


@router.post("/start", status_code=201, response_model=RealStartOut,
             responses={**WRITE, **CONFLICT, **FORBIDDEN, **STEP_UP})
async def request_start(body: RealStartIn, user: CurrentUser, sessions: RealSessionsDep,
                        key: IdempotencyKey = None) -> RealStartOut:
    """Configure the real session and propose its start (RED; an Idempotency-Key is required)."""
    requested = await sessions.request_start(
        user, RealStartRequest(tuple(body.symbols), body.interval, body.key_id, body.reason), key)
    return RealStartOut(session=session_out(requested.session), proposal=created_out(requested.proposal))


@router.post("/stop", response_model=RealSessionOut, responses=WRITE)
async def stop(body: RealStopIn, user: CurrentUser, sessions: RealSessionsDep) -> RealSessionOut:
    """Stop at once (never blocked); with ``flatten``, close every position of the session too."""
    return session_out(await sessions.stop(user, body.flatten, body.reason))


@router.post("/entries", response_model=RealSessionOut, responses={**WRITE, **FORBIDDEN})
async def set_entries(body: RealEntriesIn, user: CurrentUser, sessions: RealSessionsDep) -> RealSessionOut:
    """Stop entries (always) or resume them (a person, once nothing differs from the exchange)."""
    return session_out(await sessions.set_entries(user, body.enabled))


@router.post("/adopt", response_model=RealSessionOut, responses={**WRITE, **FORBIDDEN, **STEP_UP})
async def adopt(user: CurrentUser, sessions: RealSessionsDep) -> RealSessionOut:
    """Take the exchange's positions in the session's symbols as the session's (a person, with a step-up)."""
    return session_out(await sessions.adopt(user))


@router.post("/reconcile", response_model=RealSessionOut, responses=WRITE)
async def reconcile(user: CurrentUser, sessions: RealSessionsDep) -> RealSessionOut:
    """Compare the session with the exchange now (a difference halts entries)."""
    return session_out(await sessions.reconcile(user))


@router.get("/ledger", response_model=list[LedgerEntryOut], responses=AUTH_ERRORS)
async def ledger(user: CurrentUser, sessions: RealSessionsDep,
                 limit: Annotated[int, Query(ge=1, le=500)] = 100) -> list[dict[str, Any]]:
    """The exchange's records booked for you, newest first: fills (by trade ID) and income (fees, funding,
    realized profit, by transaction ID)."""
    return await sessions.ledger(user, limit)


@router.get("/settings", response_model=RealSettingsOut, responses={**AUTH_ERRORS, **NOT_FOUND, **UPSTREAM})
async def trading_settings(user: CurrentUser, sessions: RealSessionsDep) -> RealSettingsOut:
    """The settings your real session trades, with their version."""
    found = await sessions.trading_settings(user)
    return RealSettingsOut.model_validate(asdict(found))


@router.put("/settings", response_model=ProposalCreatedOut, responses={**WRITE, **CONFLICT})
async def change_real_settings(body: ProposeIn, user: CurrentUser, sessions: RealSessionsDep,
                               key: IdempotencyKey = None) -> ProposalCreatedOut:
    """Change what your real session trades, through the tuning tiers: lowering risk and GREEN apply at once
    (a new leverage is set on the exchange first); YELLOW (token) and RED (typed text, step-up) wait for you."""
    return created_out(await sessions.change_settings(user, dict(body.changes), body.reason, key))
