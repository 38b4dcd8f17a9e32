"""Which workflows and activities each task-queue role serves. Later capabilities add a line here."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from durabot.settings import Settings
from workflows.contracts import TASK_QUEUE_TRADING
from workflows.system_probe import SystemProbeWorkflow

_WORKFLOWS: dict[str, list[type]] = {
    TASK_QUEUE_TRADING: [SystemProbeWorkflow],
}


def workflows_for(role: str) -> Sequence[type]:
    return _WORKFLOWS.get(role, [])


def activities_for(role: str, settings: Settings) -> Sequence[Callable[..., Any]]:
    return []
