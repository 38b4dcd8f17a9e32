"""The market feed against the sim exchange over real sockets, on a real Temporal and SecantusDB.

Slices of at most 1,000 real candles at speed `max`, tiling off: the stored series must equal the
sim's rebased series exactly (count and checksum) whatever the faults.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import uuid
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from temporalio.service import RPCError

from core.contracts import (
    TASK_QUEUE_MARKET,
    TASK_QUEUE_TRADING,
    FeedRecorderInput,
    MarketFeedInput,
    feed_recorder_workflow_id,
    feed_workflow_id,
    task_queue_name,
)
from core.datafiles import load_candles
from sim.exchange import SimExchangeServer
from sim.exchange.series import replay_series, series_checksum
from tests.conftest import running_all
from trading.candle import Candle
from worker.main import build_workers
from workflows.feed_recorder import FeedRecorderWorkflow
from workflows.market_feed import MarketFeedWorkflow

from ..sim.conftest import set_faults, sim_state

REPO = Path(__file__).resolve().parents[2]
BTCUSDT = REPO / "data" / "candles" / "BTCUSDT-5m-2023-01.csv.gz"
SLICE = 999
# With tiling off, the last candle of a slice is proven closed only by its `x: true` kline: REST
# never shows a newer row after it. The sim serves one candle more than the slice we check.
SERVED = SLICE + 1


@pytest.fixture
async def sim(start_sim):
    return await start_sim(max_candles_per_series=SERVED)


async def expected_series(sim: SimExchangeServer) -> list[Candle]:
    """The sim's rebased series, computed here from the file, independently of the server."""
    origin = (await sim_state(sim))["origin_ms"]
    series = replay_series(load_candles(BTCUSDT), origin, tiling=False, cap=SLICE)
    return series.candles(0, SLICE)


@pytest.fixture
def feed_settings(settings, sim, task_queue):
    return settings.model_copy(update={
        "exchange_rest_url": sim.rest_url, "exchange_futures_url": sim.rest_url, "exchange_ws_url": sim.ws_url,
        "feed_streams": "BTCUSDT@5m", "feed_backfill_candles": SERVED, "feed_source": f"test-{uuid.uuid4().hex[:8]}",
        "task_queue_prefix": task_queue,
    })


async def stored(db) -> list[Candle]:
    from activities.market_store import read_candles

    return (await read_candles(db, "BTCUSDT", "5m", limit=10_000, newest=False))[:SLICE]


async def wait_stored(db, count: int, within_s: float) -> list[Candle]:
    deadline = asyncio.get_running_loop().time() + within_s
    while True:
        rows = await stored(db)
        if len(rows) >= count or asyncio.get_running_loop().time() > deadline:
            return rows
        await asyncio.sleep(0.25)


async def start_feed(client, s, heartbeat_s: float = 30.0):
    return await client.start_workflow(
        MarketFeedWorkflow.run, MarketFeedInput(source=s.market_source, heartbeat_timeout_s=heartbeat_s),
        id=feed_workflow_id(s.market_source), task_queue=task_queue_name(TASK_QUEUE_MARKET, s.task_queue_prefix),
        execution_timeout=timedelta(minutes=10))


async def test_feed_stores_exactly_the_sims_series_through_dropped_sockets_and_429s(
    sim, feed_settings, temporal_client, mongo_client
):
    db = mongo_client[feed_settings.mongo_database]
    expected = await expected_series(sim)
    assert len(expected) == SLICE
    await set_faults(sim, drop_ws_every=100)
    workers = build_workers(temporal_client, feed_settings, db, identity="feed-test")
    async with running_all(workers):
        feed = await start_feed(temporal_client, feed_settings)
        await wait_stored(db, 450, within_s=120)
        # Every reconnect now meets rate limits on its REST catch-up.
        await set_faults(sim, http_429_remaining=4, retry_after_s=1)
        rows = await wait_stored(db, SLICE, within_s=240)
        await feed.terminate("test over")
    assert len(rows) == SLICE
    assert [c.open_time for c in rows] == [c.open_time for c in expected]
    assert series_checksum(rows) == series_checksum(expected)

    state = await sim_state(sim)
    assert state["ws_connections_dropped"] >= 5, state
    async with httpx.AsyncClient(base_url=sim.rest_url) as http:  # the sim shares this loop: async only
        entries = (await http.get("/sim/requests")).json()
    limited = [e for e in entries if e["status"] == 429]
    assert limited, "the 429 fault never fired"
    assert not [e for e in entries if e["status"] == 418], "a request was sent inside a Retry-After window"
    for hit in limited:
        inside = [e for e in entries if hit["wall_ms"] < e["wall_ms"] < hit["wall_ms"] + 1000]
        assert not inside, f"requests inside the Retry-After window of {hit}: {inside}"


async def test_feed_survives_worker_kills_and_subscribers_get_every_candle_once(
    sim, feed_settings, temporal_client, mongo_client, tmp_path, run_env
):
    db = mongo_client[feed_settings.mongo_database]
    expected = await expected_series(sim)
    s = feed_settings
    recorder = await temporal_client.start_workflow(
        FeedRecorderWorkflow.run, FeedRecorderInput(s.market_source, "BTCUSDT", "5m"),
        id=feed_recorder_workflow_id(uuid.uuid4().hex[:8]),
        task_queue=task_queue_name(TASK_QUEUE_TRADING, s.task_queue_prefix), execution_timeout=timedelta(minutes=10))
    s = s.model_copy(update={"feed_autostart": False})
    env = run_env(**{f"DURABOT_{k.upper()}": str(v) for k, v in s.model_dump().items() if v is not None})

    def start_worker() -> subprocess.Popen:
        return subprocess.Popen([sys.executable, "-m", "durabot", "worker"], env=env, cwd=tmp_path,
                                stdout=subprocess.DEVNULL, stderr=open(tmp_path / "worker.log", "ab"))  # noqa: SIM115

    worker = start_worker()
    try:
        for _ in range(300):
            if await db.feed_subscriptions.count_documents({"workflow_id": recorder.id}):
                break
            await asyncio.sleep(0.1)
        else:
            raise AssertionError("the recorder never subscribed")
        # Only now the feed: the recorder must see its very first delivery.
        await start_feed(temporal_client, s, heartbeat_s=3)
        # Kill only once delivery has begun: before any delivery there is nothing to lose, and the
        # feed starts delivering at the newest stored candle.
        for _ in range(600):
            if (await recorder.query(FeedRecorderWorkflow.state)).open_times:
                break
            await asyncio.sleep(0.1)
        else:
            raise AssertionError("the recorder never received a candle")
        base = len(await stored(db))
        killed_at: list[int] = []
        for target in (min(base + step, SLICE) for step in (100, 300, 500)):
            rows = await wait_stored(db, target, within_s=120)
            assert len(rows) >= target, f"feed stalled at {len(rows)}:\n{(tmp_path / 'worker.log').read_text()[-3000:]}"
            os.kill(worker.pid, signal.SIGKILL)
            worker.wait()
            killed_at.append(rows[-1].open_time)
            worker = start_worker()
        rows = await wait_stored(db, SLICE, within_s=240)
        assert len(rows) == SLICE, f"stored {len(rows)}:\n{(tmp_path / 'worker.log').read_text()[-3000:]}"
        assert series_checksum(rows) == series_checksum(expected)
        # The recorder subscribed before the feed started, so it must see every candle from the
        # feed's first delivery on, once each, in order, whatever was redelivered after the kills.
        for _ in range(360):
            state = await recorder.query(FeedRecorderWorkflow.state)
            if state.open_times and state.open_times[-1] >= expected[-1].open_time:
                break
            await asyncio.sleep(0.25)
        else:
            cursors = await db.system_config.find({}, {"_id": 0}).to_list()
            subs = await db.feed_subscriptions.find({}, {"_id": 0}).to_list()
            raise AssertionError(f"recorder stopped at {state.open_times[-1:]} ({len(state.open_times)}), subs {subs} "
                                 f"want {expected[-1].open_time}; cursors {cursors}\n"
                                 f"{(tmp_path / 'worker.log').read_text()[-4000:]}")
        await recorder.signal(FeedRecorderWorkflow.stop)
        final = await recorder.result()
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(timeout=30)
        with contextlib.suppress(RPCError):  # the feed may not have started
            await temporal_client.get_workflow_handle(feed_workflow_id(s.market_source)).terminate("test over")
    assert list(final.open_times) == sorted(set(final.open_times)), "duplicate or out-of-order delivery"
    checked = [(t, c) for t, c in zip(final.open_times, final.closes, strict=True) if t <= expected[-1].open_time]
    times = [t for t, _ in checked]
    first = times[0]
    assert times == [c.open_time for c in expected if c.open_time >= first]
    assert [c for _, c in checked] == [c.close for c in expected if c.open_time >= first]
    # Subscribed before the feed started: the recorder sees the feed's very first delivery (the
    # newest candle of the initial backfill), so the checked span crosses every kill.
    assert first <= killed_at[0], f"recorder started at {first}, after the first kill at {killed_at[0]}"
