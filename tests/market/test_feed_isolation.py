"""One subscriber the feed cannot signal never holds the others up.

On a Temporal server that refuses a run's signals past a low per-execution limit, one recorder is
filled to its limit: every candle signalled to it fails (not "not found": it is alive). A second
recorder, subscribed to the same stream, keeps receiving each candle within one candle of the sim
closing it; the failing one shows in ``/api/health`` and in ``monitoring_alerts``.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import timedelta

import pytest

from core.contracts import (
    TASK_QUEUE_TRADING,
    FeedRecorderInput,
    feed_recorder_workflow_id,
    task_queue_name,
)
from worker.main import build_workers, ensure_search_attributes, start_market_feed
from workflows.feed_recorder import FeedRecorderWorkflow

from ..conftest import TemporalServer, running_all
from ..sim.conftest import sim_state

SIGNAL_LIMIT = 40
STEP_MS = 300_000
CANDLES_WATCHED = 12
pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def limited_temporal(tmp_path_factory):
    server = TemporalServer(tmp_path_factory.mktemp("temporal-limited"), extra_args=[
        "--dynamic-config-value", f"history.maximumSignalsPerExecution={SIGNAL_LIMIT}"])
    server.start()
    yield server
    server.stop()


async def test_a_subscriber_that_cannot_be_signalled_does_not_delay_the_others(
        limited_temporal, start_sim, settings, mongo_client, run_gateway, task_queue):
    from temporalio.client import Client

    client = await Client.connect(limited_temporal.address)
    await ensure_search_attributes(client, "default")
    # A 5-minute candle every second of wall time.
    sim = await start_sim(speed=300, max_candles_per_series=None, tiling=True)
    s = settings.model_copy(update={
        "temporal_address": limited_temporal.address, "exchange_rest_url": sim.rest_url,
        "exchange_futures_url": sim.rest_url, "exchange_ws_url": sim.ws_url, "feed_streams": "BTCUSDT@5m",
        "feed_source": f"iso-{uuid.uuid4().hex[:8]}", "task_queue_prefix": task_queue, "feed_backfill_candles": 50})
    db = mongo_client[s.mongo_database]

    async def recorder(name: str):
        return await client.start_workflow(
            FeedRecorderWorkflow.run, FeedRecorderInput(s.market_source, "BTCUSDT", "5m"),
            id=feed_recorder_workflow_id(f"{name}-{uuid.uuid4().hex[:6]}"),
            task_queue=task_queue_name(TASK_QUEUE_TRADING, s.task_queue_prefix),
            execution_timeout=timedelta(minutes=5))

    workers = build_workers(client, s, db, identity="isolation-test")
    async with running_all(workers), run_gateway(s) as gateway:
        broken, healthy = await recorder("broken"), await recorder("healthy")
        # Use up the broken recorder's signal budget (a signal it has no handler for is only kept).
        for _ in range(SIGNAL_LIMIT):
            await broken.signal("nudge")
        for handle in (broken, healthy):
            for _ in range(100):
                if await db.feed_subscriptions.count_documents({"workflow_id": handle.id}):
                    break
                await asyncio.sleep(0.1)
        feed = await start_market_feed(client, s)

        lags: list[int] = []
        deadline = time.monotonic() + 120
        seen = 0
        while seen < CANDLES_WATCHED:
            assert time.monotonic() < deadline, f"the healthy recorder stopped at {seen} candles"
            closed = (await sim_state(sim))["series"]
            newest = max(x["last_closed_open_time"] or 0 for x in closed if x["symbol"] == "BTCUSDT")
            state = await healthy.query(FeedRecorderWorkflow.state)
            if state.open_times:
                lags.append((newest - state.open_times[-1]) // STEP_MS)
                seen = len(state.open_times)
            await asyncio.sleep(0.25)
        # Sampled at any moment, the healthy recorder is at most one candle behind the sim (the one in
        # flight), never several: the failing subscriber costs it nothing.
        assert max(lags[3:]) <= 1, lags
        state = await healthy.query(FeedRecorderWorkflow.state)
        assert state.duplicates_dropped == 0 and state.gap_candles_filled == 0, state
        assert list(state.open_times) == sorted(set(state.open_times))
        assert not (await broken.query(FeedRecorderWorkflow.state)).open_times

        alert = await db.monitoring_alerts.find_one({"kind": "feed_subscriber_failing", "workflow_id": broken.id})
        assert alert is not None and alert["source"] == s.market_source, alert
        health = (await gateway.http.get("/api/health")).json()
        assert health["status"] == "degraded", health
        assert health["dependencies"]["feed"]["status"] == "error"
        assert broken.id in health["dependencies"]["feed"]["detail"]
        assert healthy.id not in health["dependencies"]["feed"]["detail"]
        await feed.terminate("test over")
        for handle in (broken, healthy):
            await handle.terminate("test over")
