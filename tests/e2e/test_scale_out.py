"""Issue 18, scale-out on the embedded stack: `durabot up` with ``DURABOT_WORKERS=2`` and
``DURABOT_GATEWAYS=2``. Ten users' paper sessions, started through both gateways, trade the replay
and Temporal spreads them over both workers; one worker is SIGKILLed (and killed again whenever `up`
restarts it) and its sessions go on on the other one with no candle lost or written twice; a `/ws`
client of one user on each gateway receives every event of that user exactly once; the login limit
counts failures made on both gateways together.

About a minute: ~15 s for the stack, and the moved sessions resume within the timeouts of what the
dead worker held (a session commit: 30 s; the market feed's stream: 30 s heartbeat), 15-40 s here.

Which worker runs a session: the identity (``durabot-worker@host:pid/trading``) of the worker that
started the session's latest workflow task, from its history read backwards.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import time

import httpx
import pytest
import websockets
from pymongo import AsyncMongoClient
from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.enums.v1 import EventType
from temporalio.api.workflowservice.v1 import GetWorkflowExecutionHistoryReverseRequest
from temporalio.client import Client

from durabot.supervisor import port_in_use
from trading.candle import INTERVAL_MS

from .conftest import ACCOUNT_CHANNELS, AccountFeed, Up, child_pids, poll, sign_up

SESSIONS = 10
CANDLE_MS = INTERVAL_MS["5m"]
pytestmark = pytest.mark.timeout(240)


def two_free_ports(get_free_port) -> int:
    """A port whose next port is free too (the second gateway's)."""
    while True:
        port = get_free_port()
        if port < 65535 and not port_in_use(port + 1):
            return port


async def worker_of(temporal: Client, workflow_id: str) -> int | None:
    """The pid of the worker that started the workflow's latest workflow task."""
    reply = await temporal.workflow_service.get_workflow_execution_history_reverse(
        GetWorkflowExecutionHistoryReverseRequest(namespace="default", maximum_page_size=100,
                                                  execution=WorkflowExecution(workflow_id=workflow_id)))
    for event in reply.history.events:
        if event.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED:
            identity = event.workflow_task_started_event_attributes.identity
            return int(identity.rsplit(":", 1)[1].split("/")[0])
    return None


async def open_account_feed(port: int, token: str) -> tuple[AccountFeed, asyncio.Task]:
    sock = await websockets.connect(f"ws://127.0.0.1:{port}/ws?token={token}")
    feed = AccountFeed(sock)
    reader = asyncio.create_task(feed.read())
    await sock.send(json.dumps({"type": "Unsubscribe", "channels": ["MarketData", "ChartUpdate"]}))
    await sock.send(json.dumps({"type": "Subscribe", "channels": ACCOUNT_CHANNELS}))
    subscribed = await feed.wait_for(lambda f: f["type"] in ("Subscribed", "Error"))
    assert subscribed["type"] == "Subscribed", subscribed
    return feed, reader


async def kill_restarts(up: Up, survivor: int) -> None:
    """Keep one worker: SIGKILL every other worker `up` starts, the moment it appears."""
    while True:
        for pid in child_pids(up.proc.pid, "worker"):
            if pid != survivor:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        await asyncio.sleep(0.05)


async def test_two_workers_two_gateways(tmp_path, stack_env, get_free_port):
    env, ports = stack_env
    first = two_free_ports(get_free_port)
    gateways = [f"http://127.0.0.1:{first}", f"http://127.0.0.1:{first + 1}"]
    up = Up({**env, "DURABOT_WORKERS": "2", "DURABOT_GATEWAYS": "2", "DURABOT_GATEWAY_PORT": str(first),
             "DURABOT_MCP_PORT": str(two_free_ports(get_free_port)),
             "DURABOT_SIM_SPEED": "1200", "DURABOT_LOGIN_ATTEMPTS_PER_IP": "1000",
             # The feed moves to the surviving worker within seconds, not the default 30 s.
             "DURABOT_FEED_HEARTBEAT_TIMEOUT_S": "5",
             # A killed worker stays down long enough to see its sessions move (kill_restarts does the rest).
             "DURABOT_UP_FIRST_RESTART_PAUSE_S": "30"}, tmp_path)
    mongo: AsyncMongoClient = AsyncMongoClient(f"mongodb://127.0.0.1:{ports['MONGO_PORT']}/?directConnection=true")
    db = mongo.durabot
    tasks: list[asyncio.Task] = []
    feeds: list[AccountFeed] = []
    try:
        async with httpx.AsyncClient(base_url=gateways[0], timeout=30) as a, \
                httpx.AsyncClient(base_url=gateways[1], timeout=30) as b:
            await up.wait_healthy(a)
            async def second_gateway_printed() -> bool:  # the URLs follow "Durabot is up"
                return f"Gateway 2    {gateways[1]}/" in up.log()

            await poll(second_gateway_printed, 5, "up to print the second gateway's URL", up, interval=0.1)
            assert (await b.get("/api/health")).status_code == 200
            workers = child_pids(up.proc.pid, "worker")
            assert len(workers) == 2, (workers, up.log())
            temporal = await Client.connect(f"127.0.0.1:{ports['TEMPORAL_PORT']}")

            # Users sign up and start their sessions through both gateways.
            via = [a if i % 2 == 0 else b for i in range(SESSIONS)]
            users = await asyncio.gather(*(sign_up(http) for http in via))
            watched_user, watched_token = users[0]
            for port in (first, first + 1):
                feed, reader = await open_account_feed(port, watched_token)
                feeds.append(feed)
                tasks.append(reader)

            async def start(http: httpx.AsyncClient, token: str) -> None:
                auth = {"Authorization": f"Bearer {token}"}
                changed = await http.put("/api/paper-trading/strategy-settings", json={"min_agree": 2}, headers=auth)
                assert changed.status_code == 200, changed.text
                started = await http.post("/api/paper-trading/start", headers=auth)
                assert started.status_code == 200, started.text

            await asyncio.gather(*(start(http, token) for http, (_, token) in zip(via, users, strict=True)))
            session_ids = [f"session:{user_id}:paper" for user_id, _ in users]

            async def processed(index: int) -> int:
                auth = {"Authorization": f"Bearer {users[index][1]}"}
                reply = await via[index].get("/api/paper-trading/status", headers=auth)
                return reply.json()["candles_processed"] if reply.status_code == 200 else -1

            async def all_trading() -> bool:
                counts = await asyncio.gather(*(processed(i) for i in range(SESSIONS)))
                return min(counts) >= 5 and await db.paper_trading_trades.count_documents({}) > 0

            await poll(all_trading, 60, "every session to process candles and some to trade", up, interval=0.5)

            # Temporal spread the sessions over both workers.
            placed = dict(zip(session_ids, await asyncio.gather(*(worker_of(temporal, s) for s in session_ids)),
                              strict=True))
            assert set(placed.values()) == set(workers), placed
            victim = max(workers, key=lambda pid: sum(1 for w in placed.values() if w == pid))
            survivor = next(pid for pid in workers if pid != victim)
            moved = [i for i, s in enumerate(session_ids) if placed[s] == victim]
            before = {i: await processed(i) for i in moved}

            os.kill(victim, signal.SIGKILL)
            tasks.append(asyncio.create_task(kill_restarts(up, survivor)))

            async def moved_on() -> bool:
                for i in moved:
                    if await processed(i) <= before[i] or await worker_of(temporal, session_ids[i]) != survivor:
                        return False
                return True

            await poll(moved_on, 90, f"sessions {moved} to go on on worker {survivor}", up, interval=1)

            # Nothing lost or doubled: each session's account rows are one per candle, with no gap,
            # and its journal and trade numbers run without a hole.
            for session_id in session_ids:
                times = [d["time"] async for d in db.portfolio_history.find({"session_id": session_id},
                                                                            {"time": 1}).sort("time", 1)]
                assert times and len(set(times)) == len(times), session_id
                gaps = [(x, y) for x, y in zip(times, times[1:], strict=False) if y - x != CANDLE_MS]
                assert not gaps, f"{session_id}: candles missing between {gaps[:3]}"
                seqs = [d["seq"] async for d in db.session_journal.find({"session_id": session_id},
                                                                        {"seq": 1}).sort("seq", 1)]
                assert seqs == list(range(1, len(seqs) + 1)), f"{session_id}: journal {seqs[:5]}…{seqs[-5:]}"
                ids = sorted([d["trade_id"] async for d in db.paper_trading_trades.find({"session_id": session_id},
                                                                                         {"trade_id": 1})])
                assert not ids or ids == list(range(ids[0], ids[0] + len(ids))), f"{session_id}: trades {ids}"

            # Each gateway handed its client every event of the watched user, once.
            async def stored_keys() -> set[str]:
                return {d["event_key"] async for d in db.events.find(
                    {"user_id": watched_user, "type": {"$in": ACCOUNT_CHANNELS}}, {"event_key": 1})}

            stored = await stored_keys()
            assert stored, "the watched user's session published no event"

            async def both_have_them() -> bool:
                return all(stored <= {f["event_key"] for f in feed.account_events()} for feed in feeds)

            await poll(both_have_them, 15, "both /ws clients to have every stored event", up, interval=0.5)
            stored = await stored_keys()
            for feed in feeds:
                keys = [f["event_key"] for f in feed.account_events()]
                assert len(keys) == len(set(keys)), "an event was sent twice on one connection"
                assert set(keys) <= stored, "a connection got an event that is not the user's"

            # The login limit counts failures on both gateways together (5 per email and window).
            email = f"limit-{time.monotonic_ns()}@example.com"
            password = "a long e2e passphrase"
            assert (await a.post("/api/auth/register", json={"email": email, "password": password})).status_code == 201
            for http in (a, a, a, b, b):
                wrong = await http.post("/api/auth/login", json={"email": email, "password": "not the password"})
                assert wrong.status_code == 401, wrong.text
            for http in (a, b):
                refused = await http.post("/api/auth/login", json={"email": email, "password": password})
                assert refused.status_code == 429 and int(refused.headers["Retry-After"]) > 0, refused.text
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for feed in feeds:
            await feed.sock.close()
        await mongo.close()
        up.stop()
