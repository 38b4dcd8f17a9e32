"""Recorded session histories (``record_histories.py``) replay against today's workflow code with
no non-determinism error: start, candles across continue-as-new, a settings update, a resting
order and its cancel, a market order and its close, a stop."""

from __future__ import annotations

import gzip
from pathlib import Path

from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer

from workflows.trading_session import TradingSessionWorkflow

HISTORIES = sorted((Path(__file__).resolve().parent / "histories").glob("*.json.gz"))


def load(path: Path) -> WorkflowHistory:
    return WorkflowHistory.from_json("session:recorder:paper", gzip.decompress(path.read_bytes()).decode())


def test_recorded_histories_cover_continue_as_new_and_every_kind_of_update():
    histories = [load(p) for p in HISTORIES]
    assert len(histories) >= 3, "record with tests/session/record_histories.py"
    kinds = [e.event_type for h in histories for e in h.events]
    assert kinds.count(EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW) == len(histories) - 1
    updates = [
        e.workflow_execution_update_accepted_event_attributes.accepted_request.input.name
        for h in histories for e in h.events
        if e.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED
    ]
    assert {"start", "update_settings", "place_order", "cancel_order", "close_trade", "stop"} <= set(updates)


async def test_recorded_histories_replay_without_nondeterminism():
    replayer = Replayer(workflows=[TradingSessionWorkflow])
    for path in HISTORIES:
        result = await replayer.replay_workflow(load(path), raise_on_replay_failure=False)
        assert result.replay_failure is None, f"{path.name}: {result.replay_failure}"
