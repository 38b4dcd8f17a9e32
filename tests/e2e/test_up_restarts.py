"""`durabot up` keeps a bot running: the worker and the gateway are each SIGKILLed three times while
a paper session trades the replay; each comes back by itself, `up` says so, and the session's trades
equal a backtest of the candles it traded (an uninterrupted run). Then the gateway crash-loops (killed
the moment it is back) and `up` stops, naming it, with no child left behind.

Why the comparison is exact: the status query is one atomic read of the session (last traded candle,
equity, closed trades), and the backtest replays the stored candles from the session's analysis
anchor up to that candle, trading from the first candle the session traded. The session keeps
trading meanwhile; its stored trades must contain the backtest's, byte for byte, and nothing twice.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from datetime import timedelta

import httpx
import pytest
from pymongo import AsyncMongoClient
from temporalio.client import Client
from temporalio.service import RPCError

from activities.market_store import read_candles
from core.contracts import stream_key
from workflows.trading_session import TradingSessionWorkflow

from ..conftest import alive, descendants
from ..session.feedrig import backtest_for, canonical, session_outcome
from .conftest import Up, child_pids, poll, sign_up

KILLS_EACH = 3
SYMBOL, INTERVAL = "BTCUSDT", "5m"
pytestmark = pytest.mark.timeout(480)


def child_pid(parent: int, command: str) -> int | None:
    """The live child of ``parent`` running ``durabot {command}``."""
    return next(iter(child_pids(parent, command)), None)


def kill_on_sight(up: Up, command: str, within_s: float) -> int | None:
    """SIGKILL every ``durabot {command}`` child of `up` the moment it appears, until `up` exits;
    its exit code (None if it outlived ``within_s``)."""
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        if up.proc.poll() is not None:
            return up.proc.returncode
        pid = child_pid(up.proc.pid, command)
        if pid:
            os.kill(pid, signal.SIGKILL)
        time.sleep(0.05)
    return None


def outlive(pids: set[int], within_s: float) -> set[int]:
    """Those of ``pids`` still alive after waiting up to ``within_s`` for them all to end."""
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline and any(alive(pid) for pid in pids):
        time.sleep(0.05)
    return {pid for pid in pids if alive(pid)}


async def test_up_restarts_killed_children_and_stops_on_a_crash_loop(tmp_path, stack_env):
    env, ports = stack_env
    # Short pauses before restarts: the backoff's doubling and crash-loop rule stay what they are.
    # The feed ran on the killed worker: it resumes after its heartbeat timeout, here seconds, not 30.
    up = Up({**env, "DURABOT_UP_FIRST_RESTART_PAUSE_S": "0.2", "DURABOT_FEED_HEARTBEAT_TIMEOUT_S": "5"}, tmp_path)
    mongo: AsyncMongoClient = AsyncMongoClient(
        f"mongodb://127.0.0.1:{ports['MONGO_PORT']}/?directConnection=true", tz_aware=True)
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{ports['GATEWAY_PORT']}", timeout=30) as http:
            await up.wait_healthy(http)
            temporal = await Client.connect(f"127.0.0.1:{ports['TEMPORAL_PORT']}")
            user_id, token = await sign_up(http)
            http.headers["Authorization"] = f"Bearer {token}"
            # Two strategies agreeing trade often enough on the replay for a test of minutes.
            changed = await http.put("/api/paper-trading/strategy-settings", json={"min_agree": 2})
            assert changed.status_code == 200, changed.text
            started = await http.post("/api/paper-trading/start")
            assert started.status_code == 200, started.text
            session = temporal.get_workflow_handle(started.json()["session_id"])

            async def processed() -> int:
                # A worker that just started answers queries once it has replayed the session.
                try:
                    return (await session.query(TradingSessionWorkflow.status, rpc_timeout=timedelta(seconds=5))
                            ).candles_processed
                except RPCError:
                    return -1

            async def gateway_answers() -> bool:
                try:
                    return (await http.get("/api/paper-trading/status")).status_code == 200
                except httpx.HTTPError:
                    return False

            for round_ in range(1, KILLS_EACH + 1):
                for command in ("worker", "gateway"):
                    pid = child_pid(up.proc.pid, command)
                    assert pid, f"no {command} under up:\n{up.log()}"
                    before = -1
                    while before < 0:
                        before = await processed()
                    os.kill(pid, signal.SIGKILL)
                    back = f"{command} is back"

                    async def came_back(pid=pid, command=command, back=back, round_=round_) -> bool:
                        fresh = child_pid(up.proc.pid, command)
                        return bool(fresh and fresh != pid and up.log().count(back) >= round_)

                    await poll(came_back, 90, f"{command} to come back (kill {round_})", up, interval=0.5)
                    if command == "worker":
                        # The restarted worker picks the session up where it was.
                        await poll(lambda before=before: _more(processed, before + 20), 90,
                                   "the session to trade again", up, interval=0.5)
                    else:
                        await poll(gateway_answers, 30, "the restarted gateway to answer", up, interval=0.5)
            output = up.log()
            assert output.count("worker exited with code -9") == KILLS_EACH, output
            assert output.count("gateway exited with code -9") == KILLS_EACH, output

            # An uninterrupted run: the backtest of the candles the session traded.
            status = await session.query(TradingSessionWorkflow.status)
            settings = await session.query(TradingSessionWorkflow.settings)
            db = mongo[env.get("DURABOT_MONGO_DATABASE", "durabot")]

            async def written() -> bool:
                return (await session.query(TradingSessionWorkflow.status)).pending_writes == 0

            await poll(written, 60, "the session's writes to land", up, interval=0.5)
            outcome = await session_outcome(db, session.id)
            series = await read_candles(db, SYMBOL, INTERVAL, limit=100_000, newest=False)
            backtest, traded = backtest_for(series, status, outcome, settings.engine_settings,
                                            settings.analysis_settings)
            assert status.candles_processed >= len(traded) - 1 and len(traded) > 300, (len(traded), status)
            assert len(backtest.trades) >= 3, "too few trades to compare"
            assert status.trades_closed == len(backtest.trades) and status.equity == backtest.equity[-1], status
            stored = {row["trade_id"]: row["trade"] for row in outcome.rows if row["status"] == "closed"}
            assert len(outcome.rows) == len({row["trade_id"] for row in outcome.rows}), "a trade stored twice"
            assert canonical([stored.get(t.id) for t in backtest.trades]) == canonical(
                [t.to_dict() for t in backtest.trades])
            key = stream_key(SYMBOL, INTERVAL)
            print(f"{status.candles_processed} candles traded up to {status.last_open_time[key]}, "
                  f"{len(backtest.trades)} trades equal the backtest's, {status.gap_candles_filled} read back")

        # The gateway now dies as soon as it is started again (as it would with a broken config):
        # `up` gives up on it after five crashes in a row, each within a minute of its start, and stops all.
        children = descendants(up.proc.pid)
        code = await asyncio.to_thread(kill_on_sight, up, "gateway", 150)
        output = up.log()
        assert code == 1, output
        assert "gateway crash-loops" in output and "giving up" in output, output
        assert not outlive(children, 30), "children outlived up"
    finally:
        up.stop()
        await mongo.close()


async def _more(count, at_least: int) -> bool:
    return await count() >= at_least
