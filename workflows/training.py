"""TrainingWorkflow ``training:{user}:{job_id}``: train and score one price-prediction model.

The workflow records the job as queued, checks the request (no I/O), pins the data
(``plan_training``), then runs one heartbeating activity per walk-forward fold and keeps each fold's
scores in its state, recording the progress after each; ``finish_training`` fits the final model and
stores it with the scores. If a worker dies mid-fold, the heartbeat timeout hands that fold to another
worker and the folds already done stay done (their results are in the history). A bad request or
unusable data fails at once with its reason, never retried. Cancelling the workflow (the service's
cancel) stops the fold in flight and marks the job cancelled; a cancel that arrives after the job
completed leaves it completed.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError, is_cancelled_exception

with workflow.unsafe.imports_passed_through():
    from activities.training import TrainingActivities
    from core.training_contracts import (
        INPUT_ERROR,
        STATUS_CANCELLED,
        STATUS_COMPLETED,
        STATUS_FAILED,
        STATUS_QUEUED,
        STATUS_RUNNING,
        FinishInput,
        FoldInput,
        FoldScores,
        TrainingInput,
        TrainingJob,
        TrainingMark,
        TrainingProgress,
        TrainingResult,
        TrainingStep,
        input_problem,
        training_workflow_id,
    )

RECORD_TIMEOUT = timedelta(seconds=30)
WORK_TIMEOUT = timedelta(minutes=30)
WORK_RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), backoff_coefficient=2.0,
                         maximum_interval=timedelta(seconds=30), maximum_attempts=10,
                         non_retryable_error_types=[INPUT_ERROR])


def failure_message(exc: BaseException) -> str:
    """The activity's own message rather than Temporal's 'Activity task failed' wrapper."""
    cause = exc.cause if isinstance(exc, ActivityError) and exc.cause is not None else exc
    return getattr(cause, "message", None) or str(cause)


@workflow.defn
class TrainingWorkflow:
    def __init__(self) -> None:
        self._job_id = ""
        self._status = STATUS_QUEUED
        self._folds: list[FoldScores] = []
        self._folds_total = 0
        self._error: str | None = None

    @workflow.run
    async def run(self, request: TrainingInput) -> TrainingResult:
        self._job_id, self._folds_total = request.job_id, request.folds
        try:
            expected = training_workflow_id(request.user_id, request.job_id)
        except ValueError as exc:
            raise self._failed(str(exc)) from None
        if workflow.info().workflow_id != expected:
            raise self._failed(f"training job {request.job_id!r} must run as workflow {expected!r}")
        job = TrainingJob(request, workflow.info().run_id)
        try:
            done = await workflow.execute_activity_method(
                TrainingActivities.open_training, job, start_to_close_timeout=RECORD_TIMEOUT)
            if done is not None:
                self._status = STATUS_COMPLETED  # this job ran to completion before: its result stands
                return done
            problem = input_problem(request)
            if problem:
                await self._mark(job, STATUS_FAILED, problem)
                raise self._failed(problem)
            self._status = STATUS_RUNNING
            result = await self._train(job)
        except (ActivityError, asyncio.CancelledError) as exc:
            if is_cancelled_exception(exc):
                stored = await self._mark(job, STATUS_CANCELLED, "cancelled")
                if stored is not None:
                    self._status = STATUS_COMPLETED  # completed before the cancel reached it
                    return stored
                self._status = STATUS_CANCELLED
                raise
            message = failure_message(exc)
            await self._mark(job, STATUS_FAILED, message)
            cause = exc.cause if isinstance(exc, ActivityError) else None
            raise self._failed(message, cause.type if isinstance(cause, ApplicationError) else None) from None
        self._status = STATUS_COMPLETED
        return result

    async def _train(self, job: TrainingJob) -> TrainingResult:
        heartbeat = timedelta(seconds=job.request.heartbeat_timeout_s)
        plan = await workflow.execute_activity_method(
            TrainingActivities.plan_training, job, start_to_close_timeout=WORK_TIMEOUT,
            heartbeat_timeout=heartbeat, retry_policy=WORK_RETRY)
        for fold in range(1, self._folds_total + 1):
            scores = await workflow.execute_activity_method(
                TrainingActivities.run_training_fold, FoldInput(job, plan, fold), start_to_close_timeout=WORK_TIMEOUT,
                heartbeat_timeout=heartbeat, retry_policy=WORK_RETRY)
            self._folds.append(scores)
            await workflow.execute_activity_method(
                TrainingActivities.record_training_step,
                TrainingStep(job.request.job_id, job.run_id, self._folds_total, list(self._folds)),
                start_to_close_timeout=RECORD_TIMEOUT)
        return await workflow.execute_activity_method(
            TrainingActivities.finish_training, FinishInput(job, plan, list(self._folds)),
            start_to_close_timeout=WORK_TIMEOUT, heartbeat_timeout=heartbeat, retry_policy=WORK_RETRY)

    @workflow.query
    def progress(self) -> TrainingProgress:
        done = len(self._folds)
        fraction = 1.0 if self._status == STATUS_COMPLETED else round(done / (self._folds_total + 1), 4)
        return TrainingProgress(self._job_id, self._status, done, self._folds_total, fraction, self._error)

    async def _mark(self, job: TrainingJob, status: str, error: str) -> TrainingResult | None:
        return await workflow.execute_activity_method(
            TrainingActivities.mark_training, TrainingMark(job.request.job_id, job.run_id, status, error),
            start_to_close_timeout=RECORD_TIMEOUT)

    def _failed(self, message: str, kind: str | None = INPUT_ERROR) -> ApplicationError:
        self._status, self._error = STATUS_FAILED, message
        return ApplicationError(message, type=kind or "TrainingFailed", non_retryable=True)
