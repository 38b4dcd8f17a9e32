"""The contracts between gateway, workflows and activities: task queues, search attributes,
workflow-ID helpers and every …Input/…Result payload.

A leaf module: it imports only the standard library, ``temporalio.common`` and ``trading``, so the
gateway and activities can use it without importing workflow code.
"""

from __future__ import annotations

from dataclasses import dataclass

from temporalio.common import SearchAttributeKey

TASK_QUEUE_TRADING = "trading"
TASK_QUEUE_MARKET = "market"
TASK_QUEUE_AI = "ai"
TASK_QUEUES = (TASK_QUEUE_TRADING, TASK_QUEUE_MARKET, TASK_QUEUE_AI)


def task_queue_name(role: str, prefix: str = "") -> str:
    """The queue a role is served on. Tests give each run a unique prefix so runs never share
    queues; workflows that schedule on another role's queue receive the names in their input."""
    if role not in TASK_QUEUES:
        raise ValueError(f"unknown task queue role {role!r}")
    return f"{prefix}{role}"

# What an operator filters on in the Temporal UI (DESIGN §3).
SA_USER = SearchAttributeKey.for_keyword("DurabotUser")
SA_MODE = SearchAttributeKey.for_keyword("DurabotMode")
SA_STATE = SearchAttributeKey.for_keyword("DurabotState")
SA_SYMBOLS = SearchAttributeKey.for_keyword_list("DurabotSymbols")
SEARCH_ATTRIBUTES = (SA_USER, SA_MODE, SA_STATE, SA_SYMBOLS)


@dataclass(frozen=True)
class ProbeInput:
    """Sent by health checks to prove a worker serves a task queue end to end."""

    task_queue: str


@dataclass(frozen=True)
class ProbeResult:
    task_queue: str
    worker_identity: str


@dataclass(frozen=True)
class SystemProbeInput:
    task_queues: tuple[str, ...] = TASK_QUEUES


@dataclass(frozen=True)
class SystemProbeResult:
    probes: tuple[ProbeResult, ...]


def system_probe_workflow_id(request_id: str) -> str:
    return f"probe:{request_id}"
