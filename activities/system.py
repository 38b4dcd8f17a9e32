"""Activities that prove the system itself works end to end (used by the deep health check)."""

from __future__ import annotations

from temporalio import activity

from core.contracts import ProbeInput, ProbeResult


class SystemActivities:
    def __init__(self, worker_identity: str) -> None:
        self.worker_identity = worker_identity

    @activity.defn
    async def probe_worker(self, probe: ProbeInput) -> ProbeResult:
        return ProbeResult(task_queue=activity.info().task_queue, worker_identity=self.worker_identity)
