"""Recorded order histories replay against today's OrderWorkflow with no non-determinism error.

They were recorded by running test_order_confirmation.py and test_order_outcomes.py with
``DURABOT_RECORD_ORDER_HISTORIES=tests/real/order_histories``: fills after a confirmation, every ambiguous
reply resolved by lookup, NOT_PLACED after the protection window, refusals, reduce-only orders sent at
once, an expiry, cancels before confirmation and on the exchange; and (test_order_late_lookups.py) an
order found after a late denial, under the patch that judges a denial by when it was asked. A change
to the workflow's commands needs ``workflow.patched`` and new recordings next to these."""

from __future__ import annotations

import gzip
from pathlib import Path

from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer

from workflows.order import PATCH_DENIAL_AS_ASKED, OrderWorkflow

HISTORIES = sorted((Path(__file__).resolve().parent / "order_histories").glob("*.json.gz"))


def load(path: Path) -> WorkflowHistory:
    # order-{user}-{order_id}-{run_id}.json.gz; the run ID is a UUID (five groups), the order ID may hold '-'.
    parts = path.name.removesuffix(".json.gz").split("-")
    workflow_id = f"order:{parts[1]}:{'-'.join(parts[2:-5])}"
    return WorkflowHistory.from_json(workflow_id, gzip.decompress(path.read_bytes()).decode())


def test_recorded_histories_cover_every_ending():
    histories = [load(p) for p in HISTORIES]
    assert len(histories) >= 10
    updates = {e.workflow_execution_update_accepted_event_attributes.accepted_request.input.name
               for h in histories for e in h.events
               if e.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED}
    assert updates >= {"confirm", "cancel"}, updates
    states = {p.data.decode() for h in histories for e in h.events
              if e.event_type == EventType.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES
              for name, p in e.upsert_workflow_search_attributes_event_attributes.search_attributes
              .indexed_fields.items() if name == "DurabotState"}
    assert {f'"{s}"' for s in ("AWAITING_CONFIRMATION", "SUBMITTING", "UNKNOWN", "OPEN", "FILLED", "CANCELED",
                               "REJECTED", "EXPIRED", "NOT_PLACED")} <= states, states
    patches = {p.data.decode() for h in histories for e in h.events
               if e.event_type == EventType.EVENT_TYPE_MARKER_RECORDED
               for p in e.marker_recorded_event_attributes.details["patch-data"].payloads}
    assert any(PATCH_DENIAL_AS_ASKED in p for p in patches), patches


async def test_recorded_histories_replay():
    replayer = Replayer(workflows=[OrderWorkflow])
    for path in HISTORIES:
        result = await replayer.replay_workflow(load(path), raise_on_replay_failure=False)
        assert result.replay_failure is None, (path.name, result.replay_failure)
