"""Crash durability of a paper session fed by the market feed (issue 6).

A `durabot worker` subprocess runs the session and the feed against the sim at speed `max` on a
2,000-candle real slice, on a Temporal dev server that suggests continue-as-new every 200 history
events. The worker is SIGKILLed at least 20 times at seeded random moments: a random commit of
each worker life, the instant the commit local activity logs its start (dying inside the commit)
or its end (dying between steps); the Temporal server and SecantusDB are restarted mid-run. The
session must still trade exactly as the backtest: no lost trade, no duplicate row, no duplicate
event.

Reproduce a run with DURABILITY_SEED=<seed printed by the test>.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import random
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pymongo import AsyncMongoClient
from temporalio.client import Client, WorkflowExecutionStatus

from activities.events import TRADE_EXECUTED
from activities.market_store import read_candles
from core.contracts import StartSessionInput, session_workflow_id
from core.settings import Settings
from sim.exchange.series import series_checksum

from ..conftest import TemporalServer, durabot_env, free_port
from .conftest import SessionRig, new_user
from .feedrig import (
    INTERVAL,
    FeedSlice,
    backtest_for,
    canonical,
    drain_and_stop_feed,
    expected_series,
    feed_settings,
    session_outcome,
    start_feed,
)

log = logging.getLogger(__name__)

# The sim at `max` races ahead between the feed's socket connecting and its first REST backfill
# (a few hundred candles, varying): a short start leaves the session enough of the slice to trade.
SLICE = FeedSlice("ETHBTC-5m-2018-01.csv.gz", served=2000, closed_at_start=300)
# Found offline by backtesting this slice: one strategy suffices to enter and exits are tight, so
# even the last 250 candles (the sim may race that far ahead) give >= 15 trades with stop-loss
# and take-profit exits.
ENGINE = {"slippage_bps": 1.0, "take_profit_pct": 0.8, "stop_loss_pct": 0.5, "fill_price": "next_open"}
ANALYSIS = {"min_agree": 1}
KILLS = 20
COMMIT_KILLS_NEEDED = 5
BUDGET_S = 600.0
# Restart Temporal and SecantusDB after these kill rounds, while the session still has work.
RESTART_TEMPORAL_AFTER = 7
RESTART_MONGO_AFTER = 13


def commit_line(line: dict[str, Any]) -> tuple[str, Any, Any] | None:
    if line.get("logger") == "durabot.session.commit" and line.get("msg") in ("commit start", "commit end"):
        return line["msg"], line.get("session_id"), line.get("time")
    return None


@dataclass
class Incarnation:
    """One `durabot worker` process: its JSON log lines and the commit log line it dies at, if armed."""

    proc: subprocess.Popen
    kill_at: tuple[str, int] | None = None  # ("commit start" | "commit end", n-th such line)
    lines: list[dict[str, Any]] = field(default_factory=list)
    seen: Counter[str] = field(default_factory=Counter)
    killed: str | None = None
    started: threading.Event = field(default_factory=threading.Event)
    reader: threading.Thread | None = None

    def arm(self, what: str, after: int) -> None:
        self.kill_at = (what, self.seen[what] + after)

    def kill(self, why: str) -> None:
        if self.killed is None and self.proc.poll() is None:
            self.killed = why
            os.kill(self.proc.pid, signal.SIGKILL)

    def read(self, sink: Any) -> None:
        """Read stderr line by line; SIGKILL the instant the armed commit line appears."""
        assert self.proc.stderr is not None
        for raw in self.proc.stderr:
            try:
                line = json.loads(raw)
            except ValueError:
                line = {}
            mark = commit_line(line)
            if mark:
                self.seen[mark[0]] += 1
                if self.kill_at == (mark[0], self.seen[mark[0]]):
                    self.kill(f"at {mark[0]} #{self.seen[mark[0]]} (time {mark[2]})")
            sink.write(raw)
            sink.flush()
            if line:
                self.lines.append(line)
            if line.get("msg") == "worker started":
                self.started.set()

    def died_inside_commit(self) -> bool:
        """Killed between a commit's start and its end: its last commit line is a start."""
        marks = [m for m in map(commit_line, self.lines) if m]
        return self.killed is not None and bool(marks) and marks[-1][0] == "commit start"


class WorkerRunner:
    def __init__(self, env: dict[str, str], workdir: Path) -> None:
        self.env = env
        self.workdir = workdir
        self.log_path = workdir / "worker.log"
        self.sink = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        self.all: list[Incarnation] = []

    @property
    def current(self) -> Incarnation:
        return self.all[-1]

    def start(self) -> Incarnation:
        proc = subprocess.Popen([sys.executable, "-m", "durabot", "worker"], env=self.env, cwd=self.workdir,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        incarnation = Incarnation(proc)
        incarnation.reader = threading.Thread(target=incarnation.read, args=(self.sink,), daemon=True)
        incarnation.reader.start()
        self.all.append(incarnation)
        return incarnation

    def reap(self, incarnation: Incarnation) -> None:
        incarnation.proc.wait(timeout=30)
        assert incarnation.reader is not None
        incarnation.reader.join(timeout=30)

    def stop(self) -> None:
        for incarnation in self.all:
            if incarnation.proc.poll() is None:
                incarnation.proc.send_signal(signal.SIGTERM)
                try:
                    incarnation.proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    incarnation.proc.kill()
                    incarnation.proc.wait()
            if incarnation.reader is not None:
                incarnation.reader.join(timeout=10)
        self.sink.close()

    def tail(self, chars: int = 4000) -> str:
        return "\n" + self.log_path.read_text(errors="replace")[-chars:]


async def until(predicate: Any, within_s: float, what: str, runner: WorkerRunner) -> None:
    deadline = time.monotonic() + within_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}{runner.tail()}")
        await asyncio.sleep(0.02)


async def until_async(probe: Any, at_least: int, within_s: float, what: str, runner: WorkerRunner) -> None:
    deadline = time.monotonic() + within_s
    while (value := await probe()) < at_least:
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what} (at {value}){runner.tail()}")
        await asyncio.sleep(0.25)


async def stored_count(db: Any) -> int:
    return await db.market_data.count_documents({"symbol": SLICE.symbol, "interval": INTERVAL})


def restart(server: Any) -> None:
    """Stop and start a server on the same port and storage (blocking: run it off the event loop,
    which also serves the sim)."""
    server.stop()
    server.start()


async def continued_as_new(client: Client, workflow_id: str) -> int:
    runs = [w async for w in client.list_workflows(f"WorkflowId = '{workflow_id}'")]
    return sum(1 for w in runs if w.status == WorkflowExecutionStatus.CONTINUED_AS_NEW)


async def test_session_survives_worker_kills_and_server_restarts(tmp_path, start_sim, spawn_mongo):
    began = time.monotonic()
    seed = int(os.environ.get("DURABILITY_SEED") or random.SystemRandom().randrange(2**32))
    rng = random.Random(seed)
    print(f"durability seed {seed} (DURABILITY_SEED={seed} reproduces the kill plan)")
    log.warning("durability seed %s", seed)

    temporal = TemporalServer(tmp_path / "temporal", extra_args=[
        "--dynamic-config-value", "limit.historyCount.suggestContinueAsNew=200"])
    temporal.start()
    mongo = spawn_mongo()
    mongo_client: AsyncMongoClient = AsyncMongoClient(mongo.uri, tz_aware=True)
    try:
        await crash_and_check(rng, began, tmp_path, temporal, mongo, mongo_client, start_sim)
    finally:
        await mongo_client.close()
        temporal.stop()
    elapsed = time.monotonic() - began
    assert elapsed <= BUDGET_S, f"took {elapsed:.0f}s"


async def crash_and_check(rng: random.Random, began: float, tmp_path: Path, temporal: TemporalServer,
                          mongo: Any, mongo_client: AsyncMongoClient, start_sim: Any) -> None:
    sim = await start_sim(**SLICE.sim_options())
    series = await expected_series(sim, SLICE)
    prefix = f"dur-{uuid.uuid4().hex[:8]}-"
    base = Settings(_env_file=None, var_dir=tmp_path / "var", temporal_address=temporal.address, mongo_uri=mongo.uri,
                    mongo_database=f"dur_{uuid.uuid4().hex[:8]}", gateway_port=free_port(), mcp_port=free_port(),
                    connect_timeout_s=60)
    s = feed_settings(base, sim, SLICE, prefix)
    env = durabot_env(**{f"DURABOT_{k.upper()}": str(v) for k, v in s.model_dump().items() if v is not None})
    runner = WorkerRunner(env, tmp_path)
    db = mongo_client[s.mongo_database]
    user = new_user()
    session_id = session_workflow_id(user)
    feed = None
    try:
        client = await Client.connect(temporal.address)
        rig = SessionRig(client, db, prefix)
        runner.start()
        await until(runner.current.started.is_set, 60, "the worker to start", runner)
        handle, status = await rig.start(user, StartSessionInput(
            s.market_source, (SLICE.symbol,), INTERVAL, ENGINE, ANALYSIS))
        assert status.status == "running"
        # Subscribed first, so the session sees the feed's very first delivery. The session keeps up
        # with the feed (its analysis comes with the candle), and at speed `max` the sim's clock
        # stands while the feed is down, so after a kill the session waits for the feed: a short
        # heartbeat timeout moves it to the next worker in seconds (the catch-up heartbeats per
        # candle delivered).
        feed = await start_feed(client, s, heartbeat_s=5.0)
        # The first kills hit the feed mid-delivery too; by then the session has a backlog, so
        # every round interrupts live work.
        await until_async(lambda: stored_count(db), len(series) * 3 // 5, 120, "the feed to store 60%", runner)

        plan: list[str] = []
        for round_no in range(1, KILLS + 1):
            incarnation = runner.current
            await until(lambda inc=incarnation: inc.seen["commit end"] >= 1, 180,
                        f"progress before kill {round_no}", runner)
            # Killed right after a commit, the worker may already hold the next candle's analysis
            # activity, which Temporal retries only after the workflow's 2-minute ANALYSIS_TIMEOUT
            # (no heartbeat): kept rare so the run fits its budget.
            what = "commit end" if rng.random() < 0.25 else "commit start"
            after = rng.randint(1, 20)
            plan.append(f"{what} +{after}")
            incarnation.arm(what, after)
            await until(lambda inc=incarnation: inc.killed is not None, 180, f"kill {round_no}", runner)
            await asyncio.to_thread(runner.reap, incarnation)
            if round_no == RESTART_TEMPORAL_AFTER:
                await asyncio.to_thread(restart, temporal)
            if round_no == RESTART_MONGO_AFTER:
                await asyncio.to_thread(restart, mongo)
            runner.start()
        print(f"kill plan: {plan}")
        # The servers restart under a running worker too: it must ride them out (or be restarted).
        await until(lambda: runner.current.seen["commit end"] >= 1, 180, "progress after the last kill", runner)
        await asyncio.to_thread(restart, temporal)
        await until(lambda: runner.current.seen["commit end"] >= 5 or runner.current.proc.poll() is not None, 180,
                    "progress after the Temporal restart", runner)
        await asyncio.to_thread(restart, mongo)
        await asyncio.sleep(2.0)
        survived = runner.current.proc.poll() is None
        print(f"the worker {'rode out' if survived else 'died in'} the server restarts")
        if not survived:
            runner.start()
        status = await drain_and_stop_feed(handle, feed, series, BUDGET_S - (time.monotonic() - began) - 60,
                                           describe=runner.tail)
        feed = None
    finally:
        if feed is not None:
            try:
                await feed.terminate("test over")
            except Exception:  # noqa: BLE001 - best effort at teardown
                pass
        await asyncio.to_thread(runner.stop)

    killed = [inc for inc in runner.all if inc.killed]
    inside = [inc for inc in killed if inc.died_inside_commit()]
    print(f"{len(killed)} kills, {len(inside)} inside a commit; continued-as-new "
          f"{await continued_as_new(client, session_id)}; {time.monotonic() - began:.0f}s")
    assert len(killed) >= KILLS
    assert len(inside) >= COMMIT_KILLS_NEEDED, [inc.killed for inc in killed]

    stored = (await read_candles(db, SLICE.symbol, INTERVAL, limit=10_000, newest=False))[:len(series) - 1]
    assert series_checksum(stored) == series_checksum(series[:-1])

    outcome = await session_outcome(db, session_id)
    backtest, traded = backtest_for(series, status, outcome, ENGINE, ANALYSIS)
    start = f"traded from candle {series.index(traded[0])} of {len(series)}"
    print(start)
    reasons = Counter(t.close_reason.value for t in backtest.trades)
    assert len(backtest.trades) >= 15 and reasons["stop_loss"] >= 1 and reasons["take_profit"] >= 1, (start, reasons)
    # No lost trade, none twice: the stored trades are the backtest's, byte for byte.
    assert canonical(outcome.closed_trades) == canonical([t.to_dict() for t in backtest.trades])
    assert outcome.open_trade_ids == [p["trade_id"] for p in backtest.final_state["positions"]]
    assert status.equity == backtest.equity[-1]
    # No duplicate row: one trade row per trade id, one portfolio point per processed candle.
    ids = [r["trade_id"] for r in outcome.rows]
    assert len(ids) == len(set(ids))
    assert outcome.history_times == sorted(set(outcome.history_times))
    assert len(outcome.history_times) == status.candles_processed == len(traded)
    # No duplicate event: each event key once; a closed trade opened and closed, an open one opened.
    keys = Counter(e["event_key"] for e in await db.events.find({"user_id": user}, {"event_key": 1}).to_list())
    assert not [k for k, n in keys.items() if n > 1]
    trade_events = await db.events.count_documents({"type": TRADE_EXECUTED, "user_id": user})
    assert trade_events == 2 * len(outcome.closed_trades) + len(outcome.open_trade_ids)

    runs = await continued_as_new(client, session_id)
    print(f"{status.candles_processed} candles traded, {len(backtest.trades)} trades closed {dict(reasons)}, "
          f"{len(outcome.open_trade_ids)} open; {runs} continue-as-new")
    assert runs >= 2
