"""Recorded histories of Grok's workflows replay against today's code with no non-determinism error:
paper sessions in gate and voter mode (answers, a late answer, outages with the breaker open, a
continue-as-new), ``/api/ai/analyze`` runs, chat rounds (tool calls and answers) and a trade review.
They were recorded by running tests/paper_api/test_paper_ai_modes.py (sessions, chat, review) and
test_grok_analysis.py's key-scan test with ``DURABOT_RECORD_AI_HISTORIES=tests/ai/histories``; a
change to these workflows' commands needs ``workflow.patched`` and new recordings next to these."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer

from workflows.ai_analysis import AiAnalysisWorkflow
from workflows.ai_chat import AiChatWorkflow, AiReviewWorkflow
from workflows.session_ai import PATCH_AI_MODES
from workflows.trading_session import TradingSessionWorkflow

HISTORIES = sorted((Path(__file__).resolve().parent / "histories").glob("*.json.gz"))


def load(path: Path) -> WorkflowHistory:
    return WorkflowHistory.from_json(path.name.removesuffix(".json.gz"), gzip.decompress(path.read_bytes()).decode())


def activity_types(history: WorkflowHistory) -> set[str]:
    return {e.activity_task_scheduled_event_attributes.activity_type.name for h in [history] for e in h.events
            if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED}


def patch_ids(history: WorkflowHistory) -> set[str]:
    return {json.loads(e.marker_recorded_event_attributes.details["patch-data"].payloads[0].data)["id"]
            for e in history.events if e.event_type == EventType.EVENT_TYPE_MARKER_RECORDED
            and e.marker_recorded_event_attributes.marker_name == "core_patch"}


def test_the_recordings_cover_sessions_with_grok_and_analyses():
    sessions = [load(p) for p in HISTORIES if p.name.startswith("session-")]
    analyses = [load(p) for p in HISTORIES if p.name.startswith("ai-analysis-")]
    chats = [load(p) for p in HISTORIES if p.name.startswith("ai-chat-")]
    reviews = [load(p) for p in HISTORIES if p.name.startswith("ai-review-")]
    assert len(sessions) >= 2 and len(analyses) >= 2 and len(chats) >= 2 and reviews
    assert all("ask_grok" in activity_types(h) for h in analyses)
    assert all("chat_grok" in activity_types(h) for h in chats)
    assert all("review_trade" in activity_types(h) for h in reviews)
    assert any(PATCH_AI_MODES in patch_ids(h) and "ask_grok" in activity_types(h) for h in sessions)
    kinds = {e.event_type for h in sessions for e in h.events}
    assert EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW in kinds
    assert EventType.EVENT_TYPE_ACTIVITY_TASK_FAILED in kinds  # the outage's attempts


async def test_the_recordings_replay_without_nondeterminism():
    replayer = Replayer(workflows=[TradingSessionWorkflow, AiAnalysisWorkflow, AiChatWorkflow, AiReviewWorkflow])
    for path in HISTORIES:
        result = await replayer.replay_workflow(load(path), raise_on_replay_failure=False)
        assert result.replay_failure is None, f"{path.name}: {result.replay_failure}"
