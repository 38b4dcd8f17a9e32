"""GET /api/health: each dependency's status and latency (``services.health``)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Literal

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel

from gateway.deps import HealthDep

router = APIRouter(prefix="/api", tags=["health"])


class DependencyHealth(BaseModel):
    status: Literal["ok", "error"]
    latency_ms: float
    detail: str | None = None


class HealthResponse(BaseModel):
    status: Literal["ok", "degraded"]
    dependencies: dict[str, DependencyHealth]


@router.get(
    "/health",
    response_model=HealthResponse,
    responses={503: {"model": HealthResponse, "description": "Temporal or MongoDB is down"}},
)
async def health(
    response: Response,
    checks: HealthDep,
    deep: bool = Query(False, description="Also run a workflow that executes an activity on every task queue."),
) -> HealthResponse:
    """Temporal, MongoDB, workers polling each task queue, the market feed's subscribers (and, deep, a
    workflow through every queue). 503 when Temporal or MongoDB is down; ``degraded`` when anything
    else is."""
    report = await checks.report(deep)
    if not report.live:
        response.status_code = 503
    return HealthResponse(status=report.status,
                          dependencies={k: DependencyHealth(**asdict(v)) for k, v in report.dependencies.items()})
