"""Record the TrainingWorkflow histories that ``test_training.py`` replays.

Runs on a throwaway Temporal dev server and SecantusDB with real ETHBTC candles stored: a job that
completes, one cancelled after its first fold, one refused by the workflow's own check and one that
finds no candles. Each history is written gzipped to ``tests/ai/training_histories/{VERSION}-{name}``
(its workflow ID, ``:`` as ``+``).

Histories of earlier versions stay: they are runs of older workflow code that today's code must still
replay. When a change to the workflow's commands is intended, gate it with ``workflow.patched``, bump
VERSION and record (and say so in the commit); an unintended change is what replay catches.

    .venv/bin/python tests/ai/record_training_histories.py
"""

from __future__ import annotations

import asyncio
import gzip
import sys
import tempfile
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
HISTORIES = Path(__file__).resolve().parent / "training_histories"
VERSION = "v1"


async def record() -> list[Path]:
    sys.path.insert(0, str(REPO))
    from pymongo import AsyncMongoClient
    from temporalio.client import Client, WorkflowFailureError

    from activities.db import ensure_schema
    from activities.market_store import store_candles
    from core.contracts import TASK_QUEUE_AI, task_queue_name
    from core.datafiles import load_candles
    from core.settings import Settings
    from core.training_contracts import TrainingInput, training_workflow_id
    from tests.conftest import MongoServer, TemporalServer, worker_running
    from worker.main import ensure_search_attributes
    from workflows.training import TrainingWorkflow

    candles = load_candles(REPO / "data" / "candles" / "ETHBTC-5m-2018-01.csv.gz")[:1200]
    with tempfile.TemporaryDirectory() as tmp:
        temporal, mongo = TemporalServer(Path(tmp) / "temporal"), MongoServer(Path(tmp) / "mongo")
        temporal.start()
        mongo.start()
        mongo_client: AsyncMongoClient = AsyncMongoClient(mongo.uri, tz_aware=True)
        try:
            client = await Client.connect(temporal.address)
            await ensure_search_attributes(client, "default")
            db = mongo_client["record"]
            await ensure_schema(db)
            await store_candles(db, candles, "5m", "record")
            prefix = f"record-{uuid.uuid4().hex[:8]}-"
            settings = Settings(_env_file=None, task_queue_prefix=prefix, worker_shutdown_grace_s=0)
            queue = task_queue_name(TASK_QUEUE_AI, prefix)
            runs = {
                "completed": TrainingInput("completed", "recorder", "ETHBTC", "5m", folds=3, candles=1000),
                "cancelled": TrainingInput("cancelled", "recorder", "ETHBTC", "5m", folds=20, lookback=3,
                                           candles=1200),
                "refused": TrainingInput("refused", "recorder", "ETHBTC", "5m", folds=1),
                "no-candles": TrainingInput("no-candles", "recorder", "NOPEUSDT", "5m"),
            }
            handles = {}
            async with worker_running(client, settings, db, "recorder", TASK_QUEUE_AI):
                for name, request in runs.items():
                    handles[name] = await client.start_workflow(
                        TrainingWorkflow.run, request, id=training_workflow_id("recorder", request.job_id),
                        task_queue=queue)
                    if name == "cancelled":
                        for _ in range(3000):  # until its first fold is done
                            if await db.training_jobs.find_one({"job_id": "cancelled", "folds_done": 1}):
                                break
                            await asyncio.sleep(0.02)
                        await handles[name].cancel()
                    try:
                        await handles[name].result()
                    except WorkflowFailureError:
                        pass
            HISTORIES.mkdir(exist_ok=True)
            for old in HISTORIES.glob(f"{VERSION}-*.json.gz"):
                old.unlink()
            written = []
            for handle in handles.values():
                history = await handle.fetch_history()
                path = HISTORIES / f"{VERSION}-{handle.id.replace(':', '+')}.json.gz"
                path.write_bytes(gzip.compress(history.to_json().encode(), mtime=0))
                written.append(path)
            return written
        finally:
            await mongo_client.close()
            temporal.stop()
            mongo.stop()


if __name__ == "__main__":
    for written in asyncio.run(record()):
        print(written.relative_to(REPO), written.stat().st_size)
