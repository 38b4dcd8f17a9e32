"""The health of every dependency, with its latency: Temporal, MongoDB, the workers polling each task
queue, the market feed's subscribers, and (deep) a workflow that runs an activity on every queue."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Literal

from pymongo.asynchronous.database import AsyncDatabase
from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest, GetSystemInfoRequest
from temporalio.client import Client

from activities.market_feed import subscribers_config_key
from core.contracts import TASK_QUEUES, SystemProbeInput, system_probe_workflow_id, task_queue_name
from core.settings import Settings
from workflows.system_probe import SystemProbeWorkflow

CHECK_TIMEOUT_S = 5.0


@dataclass(frozen=True)
class DependencyHealth:
    status: Literal["ok", "error"]
    latency_ms: float
    detail: str | None = None


@dataclass(frozen=True)
class HealthReport:
    status: Literal["ok", "degraded"]
    dependencies: dict[str, DependencyHealth]
    # Only the stores decide liveness: the gateway answers without workers.
    live: bool


def _ms(start: float) -> float:
    return round((time.perf_counter() - start) * 1000, 2)


async def _timed(check: Callable[[], Awaitable[str]]) -> DependencyHealth:
    start = time.perf_counter()
    try:
        detail = await asyncio.wait_for(check(), timeout=CHECK_TIMEOUT_S)
        return DependencyHealth(status="ok", latency_ms=_ms(start), detail=detail)
    except TimeoutError:
        return DependencyHealth(status="error", latency_ms=_ms(start), detail=f"no answer in {CHECK_TIMEOUT_S:g}s")
    except Exception as exc:  # a health check reports every failure instead of raising it
        return DependencyHealth(status="error", latency_ms=_ms(start), detail=f"{type(exc).__name__}: {exc}"[:300])


class Health:
    def __init__(self, settings: Settings, temporal: Client, db: AsyncDatabase) -> None:
        self.settings = settings
        self.temporal = temporal
        self.db = db

    async def report(self, deep: bool) -> HealthReport:
        queues = [task_queue_name(role, self.settings.task_queue_prefix) for role in TASK_QUEUES]
        checks: dict[str, Callable[[], Awaitable[str]]] = {
            "temporal": self._temporal,
            "mongodb": self._mongo,
            "workers": lambda: self._workers_polling(queues),
            "feed": self._feed_subscribers,
            "ai": self._grok_breaker,
        }
        if deep:
            checks["workflow_probe"] = lambda: self._probe_workers(queues)
        results = await asyncio.gather(*(_timed(c) for c in checks.values()))
        deps = dict(zip(checks, results, strict=True))
        live = deps["temporal"].status == "ok" and deps["mongodb"].status == "ok"
        return HealthReport("ok" if live and all(d.status == "ok" for d in results) else "degraded", deps, live)

    async def _temporal(self) -> str:
        info = await self.temporal.workflow_service.get_system_info(GetSystemInfoRequest())
        return f"server {info.server_version or 'unknown'} at {self.settings.temporal_target}"

    async def _mongo(self) -> str:
        await self.db.command("ping")
        return f"database {self.settings.mongo_database}"

    async def _workers_polling(self, queues: list[str]) -> str:
        missing = []
        for queue in queues:
            reply = await self.temporal.workflow_service.describe_task_queue(
                DescribeTaskQueueRequest(namespace=self.settings.temporal_namespace, task_queue=TaskQueue(name=queue),
                                         task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY))
            if not reply.pollers:
                missing.append(queue)
        if missing:
            raise RuntimeError(f"no worker polling task queue(s) {', '.join(missing)}")
        return f"polling: {', '.join(queues)}"

    async def _feed_subscribers(self) -> str:
        """The subscribers the market feed cannot signal (it skips them for a while and goes on)."""
        doc = await self.db.system_config.find_one({"key": subscribers_config_key(self.settings.market_source)})
        failing = (doc or {}).get("value") or {}
        if failing:
            named = ", ".join(f"{wid} ({entry['failures']} failed: {entry['error']})"
                              for wid, entry in sorted(failing.items()))
            raise RuntimeError(f"{len(failing)} subscriber(s) not receiving candles: {named}"[:290])
        return "every subscriber receives candles"

    async def _grok_breaker(self) -> str:
        """Grok's circuit breaker: open means every analysis uses the technical fallback for now."""
        model = self.settings.xai_model
        if self.settings.xai_key is None:
            return "Grok not configured (no xAI key): analyses use the technical fallback"
        doc = await self.db.ai_breakers.find_one({"model": model})
        if doc is None or doc["state"] == "closed":
            return f"Grok {model}: breaker closed"
        retry_at = doc["retry_at"].isoformat() if doc.get("retry_at") else "?"
        raise RuntimeError(f"Grok {model}: breaker {doc['state']} after {doc.get('failures', 0)} failures "
                           f"({doc.get('last_error')}); next trial at {retry_at}; analyses use the technical fallback")

    async def _probe_workers(self, queues: list[str]) -> str:
        result = await self.temporal.execute_workflow(
            SystemProbeWorkflow.run, SystemProbeInput(task_queues=tuple(queues)),
            id=system_probe_workflow_id(uuid.uuid4().hex[:12]), task_queue=queues[0],
            execution_timeout=timedelta(seconds=CHECK_TIMEOUT_S))
        return "executed on: " + ", ".join(p.task_queue for p in result.probes)
