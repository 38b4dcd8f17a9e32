"""Updates of entity workflows (a session, a tuning workflow, an approval, an order) as domain results.

A rejected update carries its field and kind in the ``ApplicationError`` the workflow raised
(``workflows.session_rules``): ``NotFound`` is a ``NotFound``, ``Conflict`` a ``Conflict``, ``Forbidden``
a ``Forbidden``, anything else a ``Rejected`` naming the field. A workflow that cannot answer in time, or
Temporal out of reach, is ``Unavailable``. Every channel's use cases send their writes through here.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any, NoReturn

from temporalio.client import (
    Client,
    WithStartWorkflowOperation,
    WorkflowHandle,
    WorkflowUpdateFailedError,
    WorkflowUpdateRPCTimeoutOrCancelledError,
)
from temporalio.exceptions import ActivityError, ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from services.errors import Conflict, Forbidden, NotFound, Rejected, Unavailable
from workflows.session_rules import CONFLICT, FORBIDDEN, NOT_FOUND

UNAVAILABLE_PREFIX = "the session could not answer"
# How long a write waits for the session before the caller hears it is unavailable (the update may
# still apply; a retry with the same Idempotency-Key then returns its result).
UPDATE_WAIT = timedelta(seconds=20)


def unavailable(reason: object) -> Unavailable:
    return Unavailable(f"{UNAVAILABLE_PREFIX}: {reason}")


async def execute_entity_update(handle: WorkflowHandle, update: Any, arg: Any,
                                on_closed: Callable[[], Awaitable[NoReturn]]) -> Any:
    """An update of one entity workflow (an approval, an order) as a domain result: a refusal is its
    domain error, a closed or unknown workflow is whatever ``on_closed`` raises, Temporal out of reach
    is ``Unavailable``."""
    try:
        return await handle.execute_update(update, arg, rpc_timeout=UPDATE_WAIT)
    except WorkflowUpdateFailedError as exc:
        raise_update_failure(exc)
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            await on_closed()
        raise unavailable(exc) from None
    except WorkflowUpdateRPCTimeoutOrCancelledError as exc:
        raise unavailable(exc) from None


async def execute_update_with_start(client: Client, update: Any, *args: Any,
                                    start: WithStartWorkflowOperation[Any, Any], update_id: str) -> Any:
    """An update of an entity workflow that ``start`` creates first when it does not exist yet (use the
    existing one otherwise), under ``update_id``, as a domain result: a refusal is its domain error,
    Temporal out of reach is ``Unavailable``."""
    try:
        return await client.execute_update_with_start_workflow(
            update, *args, start_workflow_operation=start, id=update_id, rpc_timeout=UPDATE_WAIT)
    except WorkflowUpdateFailedError as exc:
        raise_update_failure(exc)
    except (RPCError, WorkflowUpdateRPCTimeoutOrCancelledError) as exc:
        raise unavailable(exc) from None


def raise_update_failure(exc: WorkflowUpdateFailedError) -> NoReturn:
    """The domain error of a refused update (a session's, a tuning workflow's)."""
    cause: BaseException | None = exc.cause
    while isinstance(cause, ApplicationError) and cause.cause is not None and not cause.message:
        cause = cause.cause
    if isinstance(cause, ActivityError):
        # A read the update needed (a price, a subscription) failed after its bounded retries.
        raise unavailable(cause.cause or cause) from None
    if not isinstance(cause, ApplicationError):
        raise Rejected(None, str(cause) if cause is not None else str(exc)) from None
    details = cause.details[0] if cause.details and isinstance(cause.details[0], dict) else {}
    field = details.get("field")
    if cause.type == NOT_FOUND:
        raise NotFound(cause.message) from None
    if cause.type == CONFLICT:
        raise Conflict(field, cause.message) from None
    if cause.type == FORBIDDEN:
        raise Forbidden(cause.message) from None
    raise Rejected(field, cause.message) from None
