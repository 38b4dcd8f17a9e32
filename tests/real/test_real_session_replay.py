"""Recorded real-session histories replay against today's RealSessionWorkflow with no
non-determinism error.

They were recorded by running test_real_session.py with
``DURABOT_RECORD_SESSION_HISTORIES=tests/real/session_histories``: a configured session started by its
RED approval, candles traded into positions with their protective orders, a foreign order that halted
entries, a refused stop that closed the position, refusals, stops with a flatten; and, from
test_user_stream.py, a session following its user-data stream (``ledger_hint`` signals, the stream
activity started under its patch and cancelled at the stop); and, from test_real_settings.py, settings
changed through the tuning tiers (``update_settings``, a new leverage set on the exchange); and a trading
run recorded again under the patch that judges protection by when it was read. A change to the
workflow's commands needs ``workflow.patched`` and new recordings next to these."""

from __future__ import annotations

import gzip
from pathlib import Path

from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer

from workflows.real_session import RealSessionWorkflow
from workflows.real_session_base import USER_STREAM_PATCH
from workflows.real_session_orders import PATCH_PROTECTION_AS_READ

HISTORIES = sorted((Path(__file__).resolve().parent / "session_histories").glob("*.json.gz"))


def load(path: Path) -> WorkflowHistory:
    # session-{user}-real-{run_id}.json.gz; the run ID is a UUID (five groups).
    parts = path.name.removesuffix(".json.gz").split("-")
    return WorkflowHistory.from_json(f"session:{parts[1]}:real", gzip.decompress(path.read_bytes()).decode())


def test_recorded_histories_cover_the_lifecycle():
    histories = [load(p) for p in HISTORIES]
    assert len(histories) >= 3
    events = [e for h in histories for e in h.events]
    updates = {e.workflow_execution_update_accepted_event_attributes.accepted_request.input.name
               for e in events if e.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED}
    assert updates >= {"configure", "stop", "update_settings"}, updates
    signals = {e.workflow_execution_signaled_event_attributes.signal_name
               for e in events if e.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED}
    assert signals >= {"approved_start", "candle_closed", "ledger_hint"}, signals
    # The user-data stream (started under its patch) and its cancel at the stop; protection confirmed under
    # the patch that judges a read by when it was asked.
    patches = {p.data.decode() for e in events if e.event_type == EventType.EVENT_TYPE_MARKER_RECORDED
               for p in e.marker_recorded_event_attributes.details["patch-data"].payloads}
    for patch in (USER_STREAM_PATCH, PATCH_PROTECTION_AS_READ):
        assert any(f'"{patch}"' in p for p in patches), (patch, patches)
    assert any(e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_CANCEL_REQUESTED for e in events)
    children = sum(e.event_type == EventType.EVENT_TYPE_START_CHILD_WORKFLOW_EXECUTION_INITIATED for e in events)
    assert children >= 6, children  # entries, stops and take profits, closes


async def test_recorded_histories_replay():
    replayer = Replayer(workflows=[RealSessionWorkflow])
    for path in HISTORIES:
        result = await replayer.replay_workflow(load(path), raise_on_replay_failure=False)
        assert result.replay_failure is None, (path.name, result.replay_failure)
