"""The worker on a real Temporal dev server: search attributes, task queues, graceful shutdown."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import uuid
from datetime import timedelta

from google.protobuf.duration_pb2 import Duration
from temporalio.api.workflowservice.v1 import RegisterNamespaceRequest
from temporalio.client import Client

from core.contracts import SEARCH_ATTRIBUTES, TASK_QUEUES, SystemProbeInput, task_queue_name
from tests.conftest import running_all
from worker.main import build_workers, ensure_search_attributes
from workflows.system_probe import SystemProbeWorkflow


async def test_registers_missing_search_attributes_once(temporal_client: Client):
    namespace = f"ns-{uuid.uuid4().hex[:8]}"
    await temporal_client.workflow_service.register_namespace(
        RegisterNamespaceRequest(namespace=namespace, workflow_execution_retention_period=Duration(seconds=86400))
    )
    # A fresh namespace can take a moment to be visible to the operator service.
    for _ in range(50):
        try:
            added = await ensure_search_attributes(temporal_client, namespace)
            break
        except Exception:
            await asyncio.sleep(0.2)
    assert added == sorted(k.name for k in SEARCH_ATTRIBUTES)
    assert await ensure_search_attributes(temporal_client, namespace) == []


async def test_workers_serve_each_task_queue_end_to_end(temporal_client: Client, mongo_client, settings, task_queue):
    queues = tuple(task_queue_name(role, task_queue) for role in TASK_QUEUES)
    workers = build_workers(temporal_client, settings.model_copy(update={"task_queue_prefix": task_queue}),
                            mongo_client[settings.mongo_database], identity="test-worker")
    assert len(workers) == len(TASK_QUEUES)
    async with running_all(workers):
        result = await temporal_client.execute_workflow(
            SystemProbeWorkflow.run,
            SystemProbeInput(task_queues=queues),
            id=f"probe:{uuid.uuid4().hex[:8]}",
            task_queue=queues[0],
            execution_timeout=timedelta(seconds=30),
        )
    assert [p.task_queue for p in result.probes] == list(queues)
    assert {p.worker_identity for p in result.probes} == {"test-worker"}


def test_worker_process_shuts_down_gracefully_on_sigterm(temporal_server, mongo_server, tmp_path, run_env, db_name):
    env = run_env(DURABOT_TEMPORAL_ADDRESS=temporal_server.address, DURABOT_MONGO_URI=mongo_server.uri,
                  DURABOT_MONGO_DATABASE=db_name, DURABOT_VAR_DIR=str(tmp_path))
    proc = subprocess.Popen([sys.executable, "-m", "durabot", "worker"], env=env, cwd=tmp_path,
                            stderr=subprocess.PIPE, text=True)
    lines = []
    assert proc.stderr is not None
    for line in proc.stderr:
        lines.append(line)
        if '"worker started"' in line:
            break
    else:
        raise AssertionError("worker never started:\n" + "".join(lines))
    proc.send_signal(signal.SIGTERM)
    _, rest = proc.communicate(timeout=30)
    assert proc.returncode == 0, rest
    assert '"worker stopped"' in rest
