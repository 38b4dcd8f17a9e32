"""A session with a backlog of 10,500 received candles (more than the 10,000 signals one run may
take) continues as new with a payload under 100 kB, its write history included: the next run reads
the backlog back from market_data, a chunk at a time, and still knows the idempotency keys it applied.

The backlog builds up as it does when a session cannot keep up: MongoDB is away, so no candle can be
analysed, while candles keep arriving. The session says it is degraded, continues as new whenever
Temporal suggests it (a run takes at most 10,000 signals; the candles go on as a cursor, never in the
state), and works the backlog off once MongoDB is back.
"""

from __future__ import annotations

import asyncio
import time

import pytest
from temporalio.api.enums.v1 import EventType

from activities.db import ensure_schema
from core.contracts import (
    SIGNAL_CANDLE_CLOSED,
    ManualOrderInput,
    SessionState,
    StartSessionInput,
    UpdateSettingsInput,
    session_workflow_id,
)
from core.datafiles import load_candles
from core.idempotency import write_update_id
from workflows.trading_session import READ_CHUNK, TradingSessionWorkflow

from .conftest import CANDLES, SessionRig, closed, new_user, wait_processed

BACKLOG = 10_500
KEYED_WRITES = 60
MAX_PAYLOAD = 100_000
HOUR_MS = 3_600_000
BURST = 1_500
pytestmark = pytest.mark.timeout(420)


async def test_a_backlog_beyond_one_runs_signal_limit_continues_as_new_with_a_small_payload(
    eager_can_client, spawn_mongo
):
    from pymongo import AsyncMongoClient

    mongo = spawn_mongo()
    client: AsyncMongoClient = AsyncMongoClient(mongo.uri, tz_aware=True)
    db = client["backlog"]
    await ensure_schema(db)
    rig = SessionRig(eager_can_client, db, f"backlog-{time.monotonic_ns()}-")
    candles = load_candles(CANDLES / "BTCUSD-1h-2017-2019-coinbase.csv.gz")[:BACKLOG + 100]
    await rig.store(candles, "1h")
    user = new_user()
    session = rig.client.get_workflow_handle(session_workflow_id(user))
    converter = rig.client.data_converter.payload_converter

    def key_id(key: str, arg: object) -> str:
        return write_update_id(user, "update_settings", key, converter.to_payloads([arg])[0].data)

    async def handovers() -> list[tuple[int, SessionState]]:
        """(payload size, state) of every continue-as-new of the session so far."""
        found = []
        async for run in rig.client.list_workflows(f"WorkflowId = '{session.id}'"):
            history = await rig.client.get_workflow_handle(session.id, run_id=run.run_id).fetch_history()
            last = history.events[-1]
            if last.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW:
                payloads = last.workflow_execution_continued_as_new_event_attributes.input.payloads
                [state] = await rig.client.data_converter.decode(payloads, [SessionState])
                found.append((sum(len(p.data) for p in payloads), state))
        return found

    async def next_run(run_id: str, within_s: float) -> None:
        """Wait until the session has continued as new past ``run_id`` (or ``within_s`` passed)."""
        deadline = time.monotonic() + within_s
        while time.monotonic() < deadline:
            if (await session.describe()).run_id != run_id:
                return
            await asyncio.sleep(0.5)

    try:
        async with rig.worker():
            await rig.start(user, StartSessionInput("test", ("BTCUSD",), "1h", {"slippage_bps": 1.0}))
            await session.signal(SIGNAL_CANDLE_CLOSED, closed(candles[0], "1h"))
            await wait_processed(session, "BTCUSD", "1h", candles[0].open_time)
            # Idempotency records to carry: settings changes under their own keys, and a manual order.
            first_answers = {}
            for i in range(KEYED_WRITES):
                change = UpdateSettingsInput(engine_settings={"leverage": 1 + i % 20})
                first_answers[i] = await session.execute_update(TradingSessionWorkflow.update_settings, change,
                                                                id=key_id(f"key-{i}", change))
            await session.execute_update(TradingSessionWorkflow.place_order,
                                         ManualOrderInput("BTCUSD", "long", "market", 0.01))

            deadline = time.monotonic() + 30
            while (await session.query(TradingSessionWorkflow.status)).pending_writes:
                assert time.monotonic() < deadline
                await asyncio.sleep(0.2)

            # MongoDB goes away; candles keep coming (as a feed would, only faster).
            mongo.stop()
            gate = asyncio.Semaphore(16)

            async def signal(candle) -> None:
                async with gate:
                    await session.signal(SIGNAL_CANDLE_CLOSED, closed(candle, "1h"))

            # In bursts, as a feed catching up delivers: a run signalled without a pause cannot continue
            # as new (Temporal does not close a run while new events arrive), and a burst is kept small
            # enough that the run it lands in still replays in a workflow task on a busy machine.
            for burst in range(1, len(candles), BURST):
                run = (await session.describe()).run_id
                await asyncio.gather(*(signal(c) for c in candles[burst:burst + BURST]))
                if burst + BURST < len(candles):
                    await next_run(run, within_s=30)
            status = await session.query(TradingSessionWorkflow.status)
            assert status.queued >= BACKLOG and status.candles_processed == 1, status
            mongo.start()

            # Once it works again, the run holding the end of the backlog hands it all on as a cursor.
            deadline = time.monotonic() + 120
            while not (final := [(size, state) for size, state in await handovers()
                                 if state.received_through == {"BTCUSD@1h": candles[-1].open_time}]):
                assert time.monotonic() < deadline, "the backlog was never handed on"
                await asyncio.sleep(1)
            size, state = final[0]
            assert size < MAX_PAYLOAD, f"continue-as-new carried {size} bytes"
            assert state.queue == () and state.writes, state
            backlog = (candles[-1].open_time - state.last_open_time["BTCUSD@1h"]) // HOUR_MS
            assert backlog >= BACKLOG, f"only {backlog} candles waited"
            assert max(size for size, _ in await handovers()) < MAX_PAYLOAD
            print(f"{backlog} candles behind: continue-as-new carried {size} bytes, "
                  f"{len(state.writes or '')} of them the write history")

            # The next run reads the backlog back from market_data and trades it, chunk after chunk.
            deadline = time.monotonic() + 180
            while (status := await session.query(TradingSessionWorkflow.status)).candles_processed < READ_CHUNK + 100:
                assert time.monotonic() < deadline, status
                await asyncio.sleep(1)
            # No candle skipped: the last traded one is the n-th of the series, and the rest still wait.
            assert status.last_open_time["BTCUSD@1h"] == candles[status.candles_processed - 1].open_time, status
            assert status.queued == len(candles) - status.candles_processed, status
            # It still knows the keys the first run applied: a repeat returns the first answer.
            change = UpdateSettingsInput(engine_settings={"leverage": 1})
            again = await session.execute_update(TradingSessionWorkflow.update_settings, change,
                                                 id=key_id("key-0", change))
            assert again == first_answers[0]
            await session.terminate("test over")
    finally:
        await client.close()
