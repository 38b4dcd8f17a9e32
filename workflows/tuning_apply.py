"""Applying a proposal, as both tuning workflows do it: snapshot first, then one session update
with the expected version, then the status written through. A refusal or an unreachable session
fails the proposal visibly; it never overwrites silently and never retries without bound."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from activities.tuning_store import TuningActivities
    from core.real_session_contracts import StartRealSessionInput
    from core.tuning_contracts import (
        APPLIED,
        FAILED,
        ApplyChangesInput,
        ParameterChange,
        ProposalView,
        ProposeInput,
        RecordProposalInput,
        TakeSnapshotInput,
    )
    from trading.tuning_table import REAL_TRADING, Change, patch_of
    from workflows.real_session import RealSessionWorkflow

STEP_TIMEOUT = timedelta(seconds=30)
# A few attempts over about a minute: a session or MongoDB away longer fails the proposal, which
# says so, instead of holding its parameters for good.
BOUNDED = RetryPolicy(initial_interval=timedelta(seconds=1), backoff_coefficient=2.0,
                      maximum_interval=timedelta(seconds=20), maximum_attempts=5,
                      non_retryable_error_types=["NoSession"])
# A status write is retried for about five minutes, then given up with a warning: the workflow's own
# state stays the truth, and nothing waits on a write forever.
RECORD_RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), backoff_coefficient=2.0,
                           maximum_interval=timedelta(seconds=30), maximum_attempts=14)


def now_ms() -> int:
    return int(workflow.now().timestamp() * 1000)


def is_real_start(proposal: ProposeInput) -> bool:
    """The RED proposal that starts a real session (a real session's settings change is applied like a
    paper one's, to that session)."""
    return proposal.mode == "real" and any(c.path == REAL_TRADING.path for c in proposal.changes)


def reserved(mode: str, path: str) -> str:
    """What a parameter's cooldown and awaiting proposal are kept under: a real session's settings cool
    down apart from the paper session's (the start, ``real_trading``, is the real session's already)."""
    return f"real:{path}" if mode == "real" and path != REAL_TRADING.path else path


def reserved_cooldowns(proposal: ProposeInput) -> dict[str, float]:
    return {reserved(proposal.mode, path): seconds for path, seconds in proposal.cooldowns_s.items()}


def as_changes(changes: tuple[ParameterChange, ...]) -> list[Change]:
    return [Change(c.path, c.current, c.proposed) for c in changes]


async def record(view: ProposalView, event: str, engine: dict | None = None, analysis: dict | None = None) -> None:
    """Write the proposal's status through (audit, strategy config, event)."""
    try:
        await workflow.execute_activity_method(
            TuningActivities.record_proposal, RecordProposalInput(view, event, engine, analysis),
            start_to_close_timeout=STEP_TIMEOUT, retry_policy=RECORD_RETRY)
    except ActivityError as exc:
        workflow.logger.warning("proposal %s: its %s record was not written: %s", view.proposal_id, event,
                                exc.cause or exc)


async def apply_proposal(view: ProposalView, proposal: ProposeInput) -> ProposalView:
    """Snapshot, apply, record; the view as it ended (APPLIED or FAILED)."""
    if is_real_start(proposal):
        return await start_real_session(view, proposal)
    changes = as_changes(proposal.changes)
    try:
        snapshot = await workflow.execute_activity_method(
            TuningActivities.take_snapshot,
            TakeSnapshotInput(proposal.user_id, proposal.session_id, f"{view.proposal_id}:before",
                              f"before proposal {view.number}", automatic=True, reason=proposal.reason),
            start_to_close_timeout=STEP_TIMEOUT, retry_policy=BOUNDED)
        view = replace(view, snapshot_id=snapshot.snapshot_id)
        done = await workflow.execute_activity_method(
            TuningActivities.apply_changes,
            ApplyChangesInput(proposal.session_id, f"tuning:{view.proposal_id}",
                              patch_of(changes, analysis=False), patch_of(changes, analysis=True),
                              {c.path: c.current for c in changes}, proposal.interval),
            start_to_close_timeout=STEP_TIMEOUT, retry_policy=BOUNDED)
    except ActivityError as exc:
        failed = replace(view, status=FAILED, failure=f"the session could not be changed: {exc.cause or exc}")
        await record(failed, "failed")
        return failed
    if not done.applied:
        failed = replace(view, status=FAILED, failure=done.reason)
        await record(failed, "failed")
        return failed
    applied = replace(view, status=APPLIED, applied_version=done.version)
    await record(applied, "applied", done.engine_settings, done.analysis_settings)
    return applied


async def start_real_session(view: ProposalView, proposal: ProposeInput) -> ProposalView:
    """An approved start of real trading: recorded as approved (the session checks that record), then
    the real session is told. APPLIED says the session has its approval; whether it trades is the
    session's status (it reconciles first)."""
    await record(view, "approved")
    try:
        await workflow.get_external_workflow_handle_for(RealSessionWorkflow.run, proposal.session_id).signal(
            RealSessionWorkflow.approved_start, StartRealSessionInput(proposal.user_id, view.proposal_id))
    except Exception as exc:  # noqa: BLE001 - the session is gone: the approval fails visibly
        failed = replace(view, status=FAILED, failure=f"the real session could not be told: {exc}")
        await record(failed, "failed")
        return failed
    applied = replace(view, status=APPLIED)
    await record(applied, "applied")
    return applied
