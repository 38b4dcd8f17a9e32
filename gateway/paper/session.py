"""Talking to a user's ``TradingSessionWorkflow`` from the gateway.

Writes are the workflow's updates, sent with update-with-start (``USE_EXISTING``): the session is
created by the first write of its user, so a caller never has to "create" it. A rejected first
write leaves a session in state ``new``, which reads exactly like no session at all. Reads of
live detail are queries; while no session exists they answer as a new session would, without
creating one.

A rejected update (its validator, or the handler's ``ApplicationError``) is a 422 naming the field
when the reason names one; "no open trade" / "no pending order" are 404s, since the ID is not one
of the caller's.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, NoReturn

from fastapi import HTTPException, status
from temporalio.client import (
    Client,
    WithStartWorkflowOperation,
    WorkflowHandle,
    WorkflowQueryFailedError,
    WorkflowUpdateFailedError,
    WorkflowUpdateRPCTimeoutOrCancelledError,
)
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from durabot.settings import Settings
from trading.engine import Engine
from trading.settings import EngineSettings
from workflows.contracts import (
    SESSION_NEW,
    TASK_QUEUE_TRADING,
    SessionStatus,
    session_workflow_id,
    task_queue_name,
)
from workflows.trading_session import TradingSessionWorkflow

NOT_FOUND_REASONS = ("no open trade", "no pending order")
# Reasons name fields in a few shapes; the first pattern that matches names the field.
_FIELD_PATTERNS: tuple[tuple[re.Pattern[str], Callable[[re.Match[str]], str]], ...] = (
    (re.compile(r"^setting ([\w.]+):"), lambda m: m.group(1)),
    (re.compile(r"\b(Rsi|Macd|Bollinger|Volume|Stochastic)Params\.(\w+)"),
     lambda m: f"{m.group(1).lower()}.{m.group(2)}"),
    (re.compile(r"\bAnalysisSettings\.(\w+)"), lambda m: m.group(1)),
    (re.compile(r"^unknown (\w+) settings fields"), lambda m: m.group(1)),
    (re.compile(r"^unknown (analysis )?settings"), lambda m: "settings"),
    (re.compile(r"\binsufficient\b|\bavailable\b|\bmargin\b", re.I), lambda m: "quantity"),
    (re.compile(r"is not one of this session's symbols|unknown symbol"), lambda m: "symbol"),
    (re.compile(r"^the session trades on \S+ already"), lambda m: "interval"),
    (re.compile(r"\b(quantity|limit_price|stop_price|stop_loss|take_profit|price|side|reduce_only|symbols|"
                r"interval|barrier_timeout_s|source|leverage|engine_settings|analysis_settings)\b"),
     lambda m: m.group(1)),
)


def field_of(reason: str) -> str | None:
    """The request field a rejection reason is about, best effort."""
    for pattern, name in _FIELD_PATTERNS:
        match = pattern.search(reason)
        if match:
            return name(match)
    return None


def rejection(reason: str, field: str | None = None) -> HTTPException:
    field = field or field_of(reason)
    return HTTPException(422,
                         detail={"field": field, "reason": reason})


def _reason(exc: WorkflowUpdateFailedError) -> str:
    cause: BaseException | None = exc.cause
    while isinstance(cause, ApplicationError) and cause.cause is not None and not cause.message:
        cause = cause.cause
    if isinstance(cause, ApplicationError):
        return cause.message
    return str(cause) if cause is not None else str(exc)


def raise_rejected(exc: WorkflowUpdateFailedError) -> NoReturn:
    reason = _reason(exc)
    if reason.startswith(NOT_FOUND_REASONS):
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=reason) from None
    raise rejection(reason) from None


def unavailable(exc: Exception) -> HTTPException:
    return HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, detail=f"the session could not answer: {exc}")


class PaperSession:
    """The caller's paper session: ``session:{user_id}:paper``."""

    def __init__(self, client: Client, settings: Settings, user_id: str) -> None:
        self.client = client
        self.settings = settings
        self.user_id = user_id
        self.workflow_id = self.id_of(user_id)

    @staticmethod
    def id_of(user_id: str) -> str:
        return session_workflow_id(user_id, "paper")

    @property
    def handle(self) -> WorkflowHandle[TradingSessionWorkflow, None]:
        return self.client.get_workflow_handle_for(TradingSessionWorkflow.run, self.workflow_id)

    def _start_operation(self) -> WithStartWorkflowOperation[TradingSessionWorkflow, None]:
        return WithStartWorkflowOperation(
            TradingSessionWorkflow.run, None, id=self.workflow_id,
            task_queue=task_queue_name(TASK_QUEUE_TRADING, self.settings.task_queue_prefix),
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        )

    async def update(self, update: Any, *arg: Any) -> Any:
        """Run an update (typed handler reference), creating the session if it does not exist."""
        try:
            return await self.client.execute_update_with_start_workflow(
                update, *arg, start_workflow_operation=self._start_operation())
        except WorkflowUpdateFailedError as exc:
            raise_rejected(exc)
        except (RPCError, WorkflowUpdateRPCTimeoutOrCancelledError) as exc:
            raise unavailable(exc) from None

    async def query(self, query: Any) -> Any | None:
        """A query's answer, or None while the session does not exist (or no longer runs)."""
        try:
            return await self.handle.query(query)
        except RPCError as exc:
            if exc.status == RPCStatusCode.NOT_FOUND:
                return None
            raise unavailable(exc) from None
        except WorkflowQueryFailedError as exc:
            raise unavailable(exc) from None

    async def status(self) -> SessionStatus:
        found = await self.query(TradingSessionWorkflow.status)
        return found if found is not None else new_status(self.workflow_id, self.user_id)


def new_status(workflow_id: str, user_id: str) -> SessionStatus:
    """What a session that was never written to reports: state ``new``, default settings."""
    settings = EngineSettings()
    return SessionStatus(
        workflow_id=workflow_id, user_id=user_id, mode="paper", status=SESSION_NEW, source="", symbols=(),
        interval="", market_time=0, last_open_time={}, analysis_anchor={}, queued=0, candles_processed=0,
        duplicates_dropped=0, gap_candles_filled=0, candles_ignored=0, candles_rejected=0, trades_closed=0,
        entries_enabled=True, equity=settings.starting_balance, generation=0, metrics=None,
    )


def new_portfolio() -> dict[str, Any]:
    return Engine(EngineSettings()).account().to_dict()
