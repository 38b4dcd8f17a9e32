"""Calling Grok from workflow code: the ``ai`` queue's activities within a deadline, every way a call
can fail mapped to the fallback reason a decision (or a chat) records. Shared by
``AiAnalysisWorkflow``, ``AiChatWorkflow`` and trading sessions."""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError, TimeoutError, is_cancelled_exception

with workflow.unsafe.imports_passed_through():
    from activities.grok import GrokActivities
    from core.ai_contracts import (
        ANALYSIS_MISSING,
        DEADLINE,
        FALLBACK,
        GROK_INVALID_ANSWER,
        GROK_REFUSED,
        INVALID_ANSWER,
        UNAVAILABLE,
        AskGrokInput,
        AskGrokResult,
        GrokCallPolicy,
        GrokChatInput,
        GrokChatResult,
        ReviewTradeInput,
        ReviewTradeResult,
    )

# The slack a worker gets beyond the HTTP timeout before its attempt is presumed dead and retried.
ATTEMPT_SLACK_S = 10.0


def retry_policy(policy: GrokCallPolicy) -> RetryPolicy:
    return RetryPolicy(initial_interval=timedelta(seconds=policy.retry_initial_s), backoff_coefficient=2.0,
                       maximum_interval=timedelta(seconds=max(policy.retry_initial_s, 30.0)),
                       maximum_attempts=policy.max_attempts,
                       non_retryable_error_types=[GROK_REFUSED, GROK_INVALID_ANSWER, ANALYSIS_MISSING])


def failure_reason(exc: ActivityError, policy: GrokCallPolicy) -> tuple[str, str]:
    """(fallback reason, detail) of a Grok activity that failed for good."""
    cause = exc.cause
    if isinstance(cause, TimeoutError):
        return DEADLINE, f"no answer within {policy.deadline_s:g}s"
    detail = cause.message if isinstance(cause, ApplicationError) else str(cause or exc)
    if isinstance(cause, ApplicationError) and cause.type == GROK_INVALID_ANSWER:
        return INVALID_ANSWER, detail
    return UNAVAILABLE, detail


def _timeouts(policy: GrokCallPolicy) -> dict:
    return {"task_queue": policy.task_queue, "schedule_to_close_timeout": timedelta(seconds=policy.deadline_s),
            "start_to_close_timeout": timedelta(seconds=policy.call_timeout_s + ATTEMPT_SLACK_S),
            "retry_policy": retry_policy(policy)}


async def ask_grok(request: AskGrokInput, policy: GrokCallPolicy) -> AskGrokResult:
    """Grok's answer, or the fallback with its reason; raises only when the workflow is cancelled."""
    try:
        return await workflow.execute_activity_method(GrokActivities.ask_grok, request, **_timeouts(policy))
    except ActivityError as exc:
        if is_cancelled_exception(exc):
            raise
        reason, detail = failure_reason(exc, policy)
        return AskGrokResult(outcome=FALLBACK, model=policy.model, reason=reason, detail=detail)


async def chat_grok(request: GrokChatInput, policy: GrokCallPolicy) -> GrokChatResult:
    """One chat round, or why there is no answer; raises only when the workflow is cancelled."""
    try:
        return await workflow.execute_activity_method(GrokActivities.chat_grok, request, **_timeouts(policy))
    except ActivityError as exc:
        if is_cancelled_exception(exc):
            raise
        reason, detail = failure_reason(exc, policy)
        return GrokChatResult(outcome=FALLBACK, model=policy.model, reason=reason, detail=detail)


async def review_trade(request: ReviewTradeInput, policy: GrokCallPolicy) -> ReviewTradeResult:
    """Grok's review of a trade, or why there is none; raises only when the workflow is cancelled."""
    try:
        return await workflow.execute_activity_method(GrokActivities.review_trade, request, **_timeouts(policy))
    except ActivityError as exc:
        if is_cancelled_exception(exc):
            raise
        reason, detail = failure_reason(exc, policy)
        return ReviewTradeResult(outcome=FALLBACK, model=policy.model, reason=reason, detail=detail)
