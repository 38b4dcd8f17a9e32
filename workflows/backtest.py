"""BacktestWorkflow ``backtest:{id}``: one backtest, run as a heartbeating activity.

The workflow records the backtest as queued, checks the request (no I/O: shapes, ranges, settings)
and runs ``run_backtest_job``, which does all the work and writes the live progress and the report
into ``backtest_results``. If its worker dies, the heartbeat timeout hands the job to another
worker; a bad request fails at once with its reason, never retried. Cancelling the workflow
cancels the job through its heartbeats, which marks the document cancelled.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError, is_cancelled_exception
from temporalio.workflow import ActivityCancellationType

with workflow.unsafe.imports_passed_through():
    from activities.backtest_runs import BacktestActivities
    from core.backtest_contracts import (
        INPUT_ERROR,
        STATUS_CANCELLED,
        STATUS_COMPLETED,
        STATUS_FAILED,
        STATUS_QUEUED,
        STATUS_RUNNING,
        BacktestInput,
        BacktestJob,
        BacktestMark,
        BacktestProgress,
        BacktestResult,
        backtest_workflow_id,
        input_problem,
    )

RECORD_TIMEOUT = timedelta(seconds=30)
RUN_TIMEOUT = timedelta(hours=2)
RUN_RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), backoff_coefficient=2.0,
                        maximum_interval=timedelta(seconds=30), maximum_attempts=10,
                        non_retryable_error_types=[INPUT_ERROR])


def failure_message(exc: BaseException) -> str:
    """The activity's own message rather than Temporal's 'Activity task failed' wrapper."""
    cause = exc.cause if isinstance(exc, ActivityError) and exc.cause is not None else exc
    return getattr(cause, "message", None) or str(cause)


@workflow.defn
class BacktestWorkflow:
    def __init__(self) -> None:
        self._backtest_id = ""
        self._status = STATUS_QUEUED
        self._error: str | None = None

    @workflow.run
    async def run(self, request: BacktestInput) -> BacktestResult:
        self._backtest_id = request.backtest_id
        try:
            expected = backtest_workflow_id(request.backtest_id)
        except ValueError as exc:
            raise self._failed(str(exc)) from None
        if workflow.info().workflow_id != expected:
            raise self._failed(f"backtest {request.backtest_id!r} must run as workflow {expected!r}")
        job = BacktestJob(request, workflow.info().run_id)
        done = await workflow.execute_activity_method(
            BacktestActivities.open_backtest, job, start_to_close_timeout=RECORD_TIMEOUT)
        if done is not None:
            self._status = STATUS_COMPLETED  # this ID ran to completion before: its result stands
            return done
        problem = input_problem(request)
        if problem:
            await self._mark(job, STATUS_FAILED, problem)
            raise self._failed(problem)
        self._status = STATUS_RUNNING
        try:
            result = await workflow.execute_activity_method(
                BacktestActivities.run_backtest_job, job,
                start_to_close_timeout=RUN_TIMEOUT,
                heartbeat_timeout=timedelta(seconds=request.heartbeat_timeout_s),
                retry_policy=RUN_RETRY,
                # The job marks the document cancelled before the workflow ends.
                cancellation_type=ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
            )
        except (ActivityError, asyncio.CancelledError) as exc:
            if is_cancelled_exception(exc):
                self._status = STATUS_CANCELLED
                # Also when the job never started, or its worker was gone: the record says so.
                await self._mark(job, STATUS_CANCELLED, "cancelled")
                raise
            message = failure_message(exc)
            await self._mark(job, STATUS_FAILED, message)
            cause = exc.cause if isinstance(exc, ActivityError) else None
            raise self._failed(message, cause.type if isinstance(cause, ApplicationError) else None) from None
        self._status = STATUS_COMPLETED
        return result

    @workflow.query
    def progress(self) -> BacktestProgress:
        fraction = 1.0 if self._status == STATUS_COMPLETED else 0.0
        return BacktestProgress(self._backtest_id, self._status, None, fraction, self._error)

    async def _mark(self, job: BacktestJob, status: str, error: str) -> None:
        await workflow.execute_activity_method(
            BacktestActivities.mark_backtest, BacktestMark(job.request.backtest_id, job.run_id, status, error),
            start_to_close_timeout=RECORD_TIMEOUT)

    def _failed(self, message: str, kind: str | None = INPUT_ERROR) -> ApplicationError:
        self._status, self._error = STATUS_FAILED, message
        return ApplicationError(message, type=kind or "BacktestFailed", non_retryable=True)
