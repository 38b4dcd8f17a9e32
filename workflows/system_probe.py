"""SystemProbeWorkflow: one activity on every task queue, so a health check can prove that each
queue has a live worker that executes tasks (pollers alone do not prove that)."""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.system import SystemActivities
    from core.contracts import ProbeInput, SystemProbeInput, SystemProbeResult


@workflow.defn
class SystemProbeWorkflow:
    @workflow.run
    async def run(self, probe: SystemProbeInput) -> SystemProbeResult:
        results = []
        for queue in probe.task_queues:
            results.append(
                await workflow.execute_activity_method(
                    SystemActivities.probe_worker,
                    ProbeInput(task_queue=queue),
                    task_queue=queue,
                    start_to_close_timeout=timedelta(seconds=10),
                    schedule_to_close_timeout=timedelta(seconds=20),
                )
            )
        return SystemProbeResult(probes=tuple(results))
