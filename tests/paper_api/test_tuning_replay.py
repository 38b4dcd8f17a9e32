"""Recorded self-tuning histories replay against today's workflow code with no non-determinism error.

They were recorded by running test_tuning.py and test_tuning_timers.py with
``DURABOT_RECORD_TUNING_HISTORIES=tests/paper_api/tuning_histories``: GREEN and risk-lowering changes
applied at once, cooldowns, a YELLOW approval with a replaced token, RED approved by text and one
rejected, an expiry, a restore, and auto-apply. A change to either workflow's commands needs
``workflow.patched`` and new recordings next to these."""

from __future__ import annotations

import gzip
from pathlib import Path

from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer

from workflows.tuning import TuningWorkflow
from workflows.tuning_approval import TuningApprovalWorkflow

HISTORIES = sorted((Path(__file__).resolve().parent / "tuning_histories").glob("*.json.gz"))


def load(path: Path) -> WorkflowHistory:
    workflow_id = path.name.split("-0")[0].replace("-", ":", 2)
    return WorkflowHistory.from_json(workflow_id, gzip.decompress(path.read_bytes()).decode())


def test_recorded_histories_cover_every_ending():
    histories = [load(p) for p in HISTORIES]
    kinds = {h.workflow_id.split(":")[0] for h in histories}
    assert kinds == {"tuning", "approval"}, kinds
    updates = {e.workflow_execution_update_accepted_event_attributes.accepted_request.input.name
               for h in histories for e in h.events
               if e.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED}
    assert updates >= {"propose", "set_auto_apply", "approve", "issue_token", "reject"}, updates
    endings = {e.event_type for h in histories for e in h.events}
    assert EventType.EVENT_TYPE_TIMER_FIRED in endings  # cooldowns and the expiry
    assert EventType.EVENT_TYPE_START_CHILD_WORKFLOW_EXECUTION_INITIATED in endings
    assert EventType.EVENT_TYPE_SIGNAL_EXTERNAL_WORKFLOW_EXECUTION_INITIATED in endings


async def test_recorded_histories_replay():
    replayer = Replayer(workflows=[TuningWorkflow, TuningApprovalWorkflow])
    for path in HISTORIES:
        result = await replayer.replay_workflow(load(path), raise_on_replay_failure=False)
        assert result.replay_failure is None, (path.name, result.replay_failure)
