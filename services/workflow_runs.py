"""Running a short workflow for a request and answering with its result, once per request: the same
workflow ID (from the request's Idempotency-Key) joins the run in flight or answers with the result
of the run that already closed, whatever happened in between."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from temporalio.client import Client, WorkflowFailureError
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError

from services.errors import Unavailable


def failure_message(exc: WorkflowFailureError) -> str:
    """The innermost message of the failure chain (the activity's own words, not Temporal's wrapper)."""
    cause: BaseException | None = exc.cause
    message = ""
    while cause is not None:
        message = getattr(cause, "message", "") or message
        cause = cause.__cause__ or getattr(cause, "cause", None)
    return message


async def run_once[InputT, ResultT](temporal: Client, run: Callable[[Any, InputT], Awaitable[ResultT]], arg: InputT,
                                    *, workflow_id: str, task_queue: str, wait_s: float, what: str,
                                    memo: dict[str, Any] | None = None) -> ResultT:
    """``run``'s result for this ``workflow_id``; ``Unavailable`` (nothing changed by this call) when
    Temporal cannot be reached, the run failed, or it has not finished within ``wait_s``. ``memo``
    labels the run for listings (what it works on), read back without its history."""
    try:
        handle = await temporal.start_workflow(
            run, arg, id=workflow_id, task_queue=task_queue, memo=memo,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE)
    except WorkflowAlreadyStartedError:  # this request ran to its end before: its result stands
        handle = temporal.get_workflow_handle_for(run, workflow_id)
    except RPCError as exc:
        raise Unavailable(f"could not start {what}: {exc.message}") from None
    try:
        return await asyncio.wait_for(handle.result(), wait_s)
    except TimeoutError:
        raise Unavailable(f"{what} is still running; repeat the request with the same Idempotency-Key for its "
                          "result", retry_after_s=5) from None
    except WorkflowFailureError as exc:
        raise Unavailable(failure_message(exc) or f"{what} failed") from None
    except RPCError as exc:
        raise Unavailable(f"could not read {what}: {exc.message}") from None
