"""Talking to a user's ``TradingSessionWorkflow``: updates, queries, and their failures as domain errors.

Writes are the workflow's updates, sent with update-with-start (``USE_EXISTING``): the session is
created by the first write of its user, so a caller never has to "create" it. A rejected first write
leaves a session in state ``new``, which reads exactly like no session at all. Reads of live detail
are queries; while no session exists they answer as a new session would, without creating one.

A rejected update becomes its domain error as ``services.workflow_updates`` maps it; a session that
cannot answer in time is ``Unavailable``.
"""

from __future__ import annotations

import asyncio
from typing import Any

from temporalio.client import (
    Client,
    WithStartWorkflowOperation,
    WorkflowHandle,
    WorkflowQueryFailedError,
)
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.service import RPCError, RPCStatusCode

from core.contracts import (
    SESSION_NEW,
    TASK_QUEUE_TRADING,
    SessionState,
    SessionStatus,
    session_workflow_id,
    task_queue_name,
)
from core.settings import Settings
from services.workflow_updates import execute_update_with_start, unavailable
from trading.engine import Engine
from trading.settings import EngineSettings
from workflows.trading_session import TradingSessionWorkflow

QUERY_RETRY_PAUSES_S = (0.05, 0.1, 0.2, 0.4, 0.8)


class SessionClient:
    """The caller's paper session: ``session:{user_id}:paper``."""

    def __init__(self, client: Client, settings: Settings, user_id: str) -> None:
        self.client = client
        self.settings = settings
        self.user_id = user_id
        self.workflow_id = session_workflow_id(user_id, "paper")

    @property
    def handle(self) -> WorkflowHandle[TradingSessionWorkflow, None]:
        return self.client.get_workflow_handle_for(TradingSessionWorkflow.run, self.workflow_id)

    def _start_operation(self) -> WithStartWorkflowOperation[TradingSessionWorkflow, None]:
        # The first run gets a fresh Engine under today's default settings (fills at the next open).
        fresh = SessionState(user_id=self.user_id, mode="paper", engine=Engine(EngineSettings()).to_state())
        return WithStartWorkflowOperation(
            TradingSessionWorkflow.run, fresh, id=self.workflow_id,
            task_queue=task_queue_name(TASK_QUEUE_TRADING, self.settings.task_queue_prefix),
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        )

    async def update(self, update: Any, *arg: Any, update_id: str) -> Any:
        """Run an update (typed handler reference) under ``update_id``, creating the session if it
        does not exist."""
        return await execute_update_with_start(self.client, update, *arg, start=self._start_operation(),
                                               update_id=update_id)

    async def query(self, query: Any, *arg: Any) -> Any | None:
        """A query's answer, or None while the session does not exist (or no longer runs). A session
        busy with a workflow task buffers only a few queries; a query refused for that is tried again
        a few times before the caller hears the session is unavailable."""
        for pause in (*QUERY_RETRY_PAUSES_S, None):
            try:
                return await self.handle.query(query, *arg)
            except RPCError as exc:
                if exc.status == RPCStatusCode.NOT_FOUND:
                    return None
                if pause is None or exc.status != RPCStatusCode.RESOURCE_EXHAUSTED:
                    raise unavailable(exc) from None
            except WorkflowQueryFailedError as exc:
                raise unavailable(exc) from None
            await asyncio.sleep(pause)
        return None

    async def exists(self) -> bool:
        """Whether the session was ever created (asks the server, not the busy workflow)."""
        try:
            await self.handle.describe()
        except RPCError as exc:
            if exc.status == RPCStatusCode.NOT_FOUND:
                return False
            raise unavailable(exc) from None
        return True

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
