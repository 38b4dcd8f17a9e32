"""Recorded session histories (``record_histories.py``) replay against today's workflow code with
no non-determinism error. ``v1`` runs predate the (open time, symbol) queue and the stopped-session
order policy (they replay on the ``workflow.patched`` branches); ``v2`` runs cover two symbols,
continue-as-new, settings, symbol and interval changes, orders, a cancel, closes, a stop, a
reduce-only part and a reset, with the analysis as a regular activity; ``v3`` runs the same
scenario with the analysis as a local activity; ``v4`` also closes the workflow task every 10
candles of a backlog, ``v5`` every 50; ``v6`` writes through the outbox with idempotency records and a
journal, repeats a keyed settings change after continue-as-new and analyses on demand."""

from __future__ import annotations

import gzip
import json
from itertools import groupby
from pathlib import Path

from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer

from workflows.trading_session import (
    PATCH_CANDLE_BARRIER,
    PATCH_LOCAL_ANALYSIS,
    PATCH_LONGER_BURSTS,
    PATCH_STOPPED_BLOCKS_ENTRIES,
    PATCH_WRITE_OUTBOX,
    PATCH_YIELD_BURSTS,
    TradingSessionWorkflow,
)

HISTORIES = sorted((Path(__file__).resolve().parent / "histories").glob("*.json.gz"))
VERSIONS = {v: list(paths) for v, paths in groupby(HISTORIES, key=lambda p: p.name.split("-")[0])}


def load(path: Path) -> WorkflowHistory:
    return WorkflowHistory.from_json("session:recorder:paper", gzip.decompress(path.read_bytes()).decode())


def updates(histories: list[WorkflowHistory]) -> set[str]:
    return {
        e.workflow_execution_update_accepted_event_attributes.accepted_request.input.name
        for h in histories for e in h.events
        if e.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED
    }


def patches(histories: list[WorkflowHistory]) -> set[str]:
    return {
        json.loads(e.marker_recorded_event_attributes.details["patch-data"].payloads[0].data)["id"]
        for h in histories for e in h.events if e.event_type == EventType.EVENT_TYPE_MARKER_RECORDED
        and e.marker_recorded_event_attributes.marker_name == "core_patch"
    }


def test_recorded_histories_cover_continue_as_new_and_every_kind_of_update():
    assert set(VERSIONS) >= {"v1", "v2", "v3", "v4", "v5", "v6", "v7"}, "record with tests/session/record_histories.py"
    for version, paths in VERSIONS.items():
        histories = [load(p) for p in paths]
        assert len(histories) >= 3, version
        kinds = [e.event_type for h in histories for e in h.events]
        assert kinds.count(EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW) == len(histories) - 1, version
    v1, v2, v3, v4, v5, v6 = ([load(p) for p in VERSIONS[v]] for v in ("v1", "v2", "v3", "v4", "v5", "v6"))
    assert {"start", "update_settings", "place_order", "cancel_order", "close_trade", "stop"} <= updates(v1)
    assert updates(v2) >= updates(v1) | {"update_symbols", "set_signal_interval", "reset"}
    assert not patches(v1)
    assert {PATCH_CANDLE_BARRIER, PATCH_STOPPED_BLOCKS_ENTRIES} <= patches(v2)
    assert PATCH_LOCAL_ANALYSIS not in patches(v2)
    assert updates(v3) == updates(v2) and PATCH_LOCAL_ANALYSIS in patches(v3)
    assert PATCH_YIELD_BURSTS not in patches(v3)
    assert updates(v4) == updates(v2) and {PATCH_LOCAL_ANALYSIS, PATCH_YIELD_BURSTS} <= patches(v4)
    timers = sum(e.event_type == EventType.EVENT_TYPE_TIMER_STARTED for h in v4 for e in h.events)
    assert timers >= 1, "the v4 scenario's bursts of 40 candles close their workflow tasks"
    assert PATCH_LONGER_BURSTS not in patches(v4)
    assert updates(v5) == updates(v2) and {PATCH_LOCAL_ANALYSIS, PATCH_LONGER_BURSTS} <= patches(v5)
    assert PATCH_WRITE_OUTBOX not in patches(v5)
    assert updates(v6) == updates(v2) | {"analyze_now"} and PATCH_WRITE_OUTBOX in patches(v6)
    keyed = [e.workflow_execution_update_accepted_event_attributes.accepted_request.meta.update_id
             for h in v6 for e in h.events if e.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED]
    assert sum(u.startswith("k-") for u in keyed) == 2, "the keyed settings change and its repeat"


async def test_recorded_histories_replay_without_nondeterminism():
    replayer = Replayer(workflows=[TradingSessionWorkflow])
    for path in HISTORIES:
        result = await replayer.replay_workflow(load(path), raise_on_replay_failure=False)
        assert result.replay_failure is None, f"{path.name}: {result.replay_failure}"
