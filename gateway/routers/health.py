"""GET /api/health: each dependency's status and latency."""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import timedelta
from typing import Literal

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel
from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest, GetSystemInfoRequest
from temporalio.client import Client

from gateway.deps import DbDep, SettingsDep, TemporalDep
from workflows.contracts import TASK_QUEUES, SystemProbeInput, system_probe_workflow_id, task_queue_name
from workflows.system_probe import SystemProbeWorkflow

router = APIRouter(prefix="/api", tags=["health"])

CHECK_TIMEOUT_S = 5.0


class DependencyHealth(BaseModel):
    status: Literal["ok", "error"]
    latency_ms: float
    detail: str | None = None


class HealthResponse(BaseModel):
    status: Literal["ok", "degraded"]
    dependencies: dict[str, DependencyHealth]


async def _timed(check) -> DependencyHealth:
    start = time.perf_counter()
    try:
        detail = await asyncio.wait_for(check(), timeout=CHECK_TIMEOUT_S)
        return DependencyHealth(status="ok", latency_ms=_ms(start), detail=detail)
    except TimeoutError:
        return DependencyHealth(status="error", latency_ms=_ms(start), detail=f"no answer in {CHECK_TIMEOUT_S:g}s")
    except Exception as exc:  # a health check reports every failure instead of raising it
        return DependencyHealth(status="error", latency_ms=_ms(start), detail=f"{type(exc).__name__}: {exc}"[:300])


def _ms(start: float) -> float:
    return round((time.perf_counter() - start) * 1000, 2)


async def _workers_polling(client: Client, namespace: str, queues: list[str]) -> str:
    missing = []
    for queue in queues:
        reply = await client.workflow_service.describe_task_queue(
            DescribeTaskQueueRequest(
                namespace=namespace,
                task_queue=TaskQueue(name=queue),
                task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY,
            )
        )
        if not reply.pollers:
            missing.append(queue)
    if missing:
        raise RuntimeError(f"no worker polling task queue(s) {', '.join(missing)}")
    return f"polling: {', '.join(queues)}"


async def _probe_workers(client: Client, queues: list[str]) -> str:
    result = await client.execute_workflow(
        SystemProbeWorkflow.run,
        SystemProbeInput(task_queues=tuple(queues)),
        id=system_probe_workflow_id(uuid.uuid4().hex[:12]),
        task_queue=queues[0],
        execution_timeout=timedelta(seconds=CHECK_TIMEOUT_S),
    )
    return "executed on: " + ", ".join(p.task_queue for p in result.probes)


@router.get(
    "/health",
    response_model=HealthResponse,
    responses={503: {"model": HealthResponse, "description": "A dependency is down"}},
)
async def health(
    response: Response,
    settings: SettingsDep,
    temporal: TemporalDep,
    db: DbDep,
    deep: bool = Query(False, description="Also run a workflow that executes an activity on every task queue."),
) -> HealthResponse:
    async def temporal_ok() -> str:
        info = await temporal.workflow_service.get_system_info(GetSystemInfoRequest())
        return f"server {info.server_version or 'unknown'} at {settings.temporal_target}"

    async def mongo_ok() -> str:
        await db.command("ping")
        return f"database {settings.mongo_database}"

    queues = [task_queue_name(role, settings.task_queue_prefix) for role in TASK_QUEUES]
    checks = {
        "temporal": temporal_ok,
        "mongodb": mongo_ok,
        "workers": lambda: _workers_polling(temporal, settings.temporal_namespace, queues),
    }
    if deep:
        checks["workflow_probe"] = lambda: _probe_workers(temporal, queues)
    results = await asyncio.gather(*(_timed(c) for c in checks.values()))
    deps = dict(zip(checks, results, strict=True))
    # The gateway answers without workers, so only the stores decide liveness.
    ok = deps["temporal"].status == "ok" and deps["mongodb"].status == "ok"
    if not ok:
        response.status_code = 503
    return HealthResponse(status="ok" if ok and all(d.status == "ok" for d in results) else "degraded",
                          dependencies=deps)
