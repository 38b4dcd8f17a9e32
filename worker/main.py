"""The worker process: one Temporal worker per task queue (trading, market, ai).

At start it creates MongoDB's collections and indexes and registers the search attributes it
needs when they are missing, so an external Temporal needs no manual step. SIGTERM/SIGINT shut the
workers down gracefully: running activities get ``worker_shutdown_grace_s`` to finish.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

from pymongo.asynchronous.database import AsyncDatabase
from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest, ListSearchAttributesRequest
from temporalio.client import Client, WorkflowHandle
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.worker import Worker

from activities.db import ensure_schema
from activities.system import SystemActivities
from core.connect import connect_mongo, connect_temporal
from core.contracts import (
    SEARCH_ATTRIBUTES,
    TASK_QUEUE_MARKET,
    TASK_QUEUES,
    MarketFeedInput,
    feed_workflow_id,
    task_queue_name,
)
from core.settings import Settings
from worker.registry import WorkerContext, activities_for, workflows_for
from workflows.market_feed import MarketFeedWorkflow

log = logging.getLogger("durabot.worker")

# Workflow activations are short CPU bursts under one GIL: a few threads serve them as fast as many,
# and the SDK's default pool (up to 500) costs a thread start and a cross-thread wake-up per task.
WORKFLOW_THREADS = 4

_SA_TYPES = {
    "KEYWORD": IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD,
    "KEYWORD_LIST": IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD_LIST,
}


async def ensure_search_attributes(client: Client, namespace: str) -> list[str]:
    """Register Durabot's search attributes that the namespace lacks; return the names added."""
    listed = await client.operator_service.list_search_attributes(ListSearchAttributesRequest(namespace=namespace))
    have = set(listed.custom_attributes) | set(listed.system_attributes)
    missing = {
        key.name: _SA_TYPES[key.indexed_value_type.name.removeprefix("INDEXED_VALUE_TYPE_")]
        for key in SEARCH_ATTRIBUTES
        if key.name not in have
    }
    if missing:
        await client.operator_service.add_search_attributes(
            AddSearchAttributesRequest(namespace=namespace, search_attributes=missing)
        )
    return sorted(missing)


def build_workers(client: Client, settings: Settings, db: AsyncDatabase,
                  identity: str | None = None) -> list[Worker]:
    """One worker per role (trading, market, ai), on ``settings.task_queue_prefix + role``."""
    identity = identity or f"durabot-worker@{socket.gethostname()}:{os.getpid()}"
    system = SystemActivities(identity)
    ctx = WorkerContext(settings=settings, db=db, temporal=client)
    executor = ThreadPoolExecutor(max_workers=WORKFLOW_THREADS, thread_name_prefix="workflow")
    return [
        Worker(
            client,
            task_queue=task_queue_name(role, settings.task_queue_prefix),
            workflows=workflows_for(role),
            activities=[system.probe_worker, *activities_for(role, ctx)],
            identity=f"{identity}/{role}",
            graceful_shutdown_timeout=timedelta(seconds=settings.worker_shutdown_grace_s),
            workflow_task_executor=executor,
        )
        for role in TASK_QUEUES
    ]


async def start_market_feed(client: Client, settings: Settings) -> WorkflowHandle:
    """Start ``feed:{source}`` unless it runs already (every worker calls this; one feed results)."""
    return await client.start_workflow(
        MarketFeedWorkflow.run,
        MarketFeedInput(source=settings.market_source, heartbeat_timeout_s=settings.feed_heartbeat_timeout_s),
        id=feed_workflow_id(settings.market_source),
        task_queue=task_queue_name(TASK_QUEUE_MARKET, settings.task_queue_prefix),
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
    )


async def run_worker(settings: Settings) -> None:
    client = await connect_temporal(settings)
    mongo = await connect_mongo(settings)
    try:
        created = await ensure_schema(mongo[settings.mongo_database])
        if created:
            log.info("created collections", extra={"fields": {"collections": created}})
        added = await ensure_search_attributes(client, settings.temporal_namespace)
        if added:
            log.info("registered search attributes", extra={"fields": {"search_attributes": added}})
        db = mongo[settings.mongo_database]
        workers = build_workers(client, settings, db)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        runs = [asyncio.create_task(w.run()) for w in workers]
        if settings.feed_autostart:
            await start_market_feed(client, settings)
        log.info("worker started", extra={"fields": {"task_queues": [w.task_queue for w in workers],
                                                     "temporal": settings.temporal_target}})
        done_early = asyncio.create_task(asyncio.wait(runs, return_when=asyncio.FIRST_EXCEPTION))
        await asyncio.wait([done_early, asyncio.create_task(stop.wait())], return_when=asyncio.FIRST_COMPLETED)
        log.info("worker shutting down")
        await asyncio.gather(*(w.shutdown() for w in workers), return_exceptions=True)
        for task in runs:
            if task.done() and task.exception():
                raise task.exception()  # type: ignore[misc]
    finally:
        await mongo.close()
    log.info("worker stopped")
