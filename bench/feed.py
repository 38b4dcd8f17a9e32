"""Market feed on the embedded stack: ingest throughput, and kline-to-workflow latency by fan-out.

Everything runs as it does under ``durabot up``, each piece its own process on free ports in a temp
dir: Temporal dev server (SQLite, WAL), SecantusDB, the sim exchange (``durabot sim exchange``) and
the product worker (``durabot worker``, unchanged, ``DURABOT_*`` settings, feed autostart off).
This process only starts workflows, hosts the bench's own subscriber workflows and measures.

(a) Ingest: the sim replays data/candles/BTCUSDT-5m-2023-01.csv.gz (real 5-minute candles, tiling
    off) at speed ``max``, paced only by how fast the feed reads. No subscribers. The figure is the
    number of candles whose ``market_data.stored_at`` (wall time, written by the feed) falls in a
    fixed wall-clock window after the first-sight REST backfill, divided by the window; the median
    of ``--ingest-runs`` runs, each on a fresh database, sim and worker.
(b) Latency: the sim replays the same file at a paced speed (a 5-minute candle every 300/speed
    seconds). N bench subscriber workflows are started, subscribed in ``feed_subscriptions``, then
    the feed is started. The send time of each closed kline is the wall time at which a second
    WebSocket client (a separate process, so this process's load cannot delay it) receives its
    ``x: true`` message from the sim; the receive time is ``workflow.now()`` in the subscriber's
    ``candle_closed`` signal handler, i.e. the start of the workflow task that carries the signal.
    One sample per (subscriber, candle); p50 and p99 over all samples.

    .venv/bin/python bench/feed.py [--subscribers 1,50,500] [--speeds 600,300,30]
        [--latency-candles 30,30,12] [--ingest-runs 3] [--ingest-window-s 12] [--budget-s 360]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from multiprocessing.synchronize import Event as ProcessEvent
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
BIN = Path(sys.executable).parent

import httpx  # noqa: E402
from pymongo import AsyncMongoClient  # noqa: E402
from pymongo.asynchronous.database import AsyncDatabase  # noqa: E402
from temporalio import workflow  # noqa: E402
from temporalio.client import Client, WorkflowHandle  # noqa: E402
from temporalio.worker import UnsandboxedWorkflowRunner, Worker  # noqa: E402

from activities import market_store  # noqa: E402
from core.contracts import (  # noqa: E402
    SIGNAL_CANDLE_CLOSED,
    TASK_QUEUE_MARKET,
    CandleClosed,
    FeedSubscription,
    MarketFeedInput,
    feed_workflow_id,
    task_queue_name,
)
from trading.candle import INTERVAL_MS  # noqa: E402
from worker.main import ensure_search_attributes  # noqa: E402
from workflows.market_feed import MarketFeedWorkflow  # noqa: E402

SYMBOL, INTERVAL = "BTCUSDT", "5m"
DATA_FILE = REPO / "data" / "candles" / "BTCUSDT-5m-2023-01.csv.gz"
START_OFFSET = 500  # candles of the file already closed when the sim starts
STARTS_IN_FLIGHT = 16  # concurrent workflow starts: the SQLite dev server manages ~20-50/s
QUERIES_IN_FLIGHT = 32
POLL_S = 0.2


# ---- processes -----------------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Service:
    """One child process in its own session, logging to a file; stopped with SIGTERM, then SIGKILL."""

    def __init__(self, name: str, argv: list[str], log: Path, env: dict[str, str] | None = None,
                 cwd: Path | None = None) -> None:
        self.name, self.log = name, log
        with open(log, "ab") as out:
            self.proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=cwd,
                                         start_new_session=True)

    def check_alive(self) -> None:
        if self.proc.poll() is not None:
            raise RuntimeError(f"{self.name} exited ({self.proc.returncode}): {self.log.read_text()[-2000:]}")

    def stop(self, grace_s: float = 10.0) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=grace_s)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


async def wait_for(check: Callable[[], Awaitable[bool]], timeout_s: float, what: str, service: Service | None = None,
                   interval_s: float = POLL_S) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if service is not None:
            service.check_alive()
        try:
            if await check():
                return
        except (httpx.HTTPError, OSError):
            pass  # not listening yet
        await asyncio.sleep(interval_s)
    raise TimeoutError(f"timed out after {timeout_s:.0f}s waiting for {what}")


class Stack:
    """Temporal and SecantusDB for the whole bench, plus the per-run sims and workers it started."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.services: list[Service] = []
        self.temporal_address = f"127.0.0.1:{free_port()}"
        mongo_port = free_port()
        self.mongo_uri = f"mongodb://127.0.0.1:{mongo_port}/?retryWrites=false&directConnection=true"

    def spawn(self, name: str, argv: list[str], env: dict[str, str] | None = None) -> Service:
        workdir = self.root / name
        workdir.mkdir(parents=True, exist_ok=True)
        service = Service(name, argv, workdir / "out.log", env=env, cwd=workdir)
        self.services.append(service)
        return service

    def stop(self, service: Service) -> None:
        service.stop()
        self.services.remove(service)

    def stop_all(self) -> None:
        for service in reversed(self.services):
            service.stop()
        self.services.clear()

    async def start_servers(self) -> None:
        host, port = self.temporal_address.split(":")
        temporal = self.spawn("temporal", [
            str(BIN / "temporal"), "server", "start-dev", "--headless", "--ip", host, "--port", port,
            "--db-filename", str(self.root / "temporal.db"),
            "--sqlite-pragma", "journal_mode=wal", "--sqlite-pragma", "synchronous=normal",
            "--dynamic-config-value", "frontend.enableServerVersionCheck=false", "--log-level", "error"])
        mongo_port = self.mongo_uri.split(":")[2].split("/")[0]
        mongo = self.spawn("mongo", [
            str(BIN / "secantusd-py"), "--host", "127.0.0.1", "--port", mongo_port,
            "--storage-path", str(self.root / "mongo-data"), "--log-level", "WARNING"])

        async def temporal_serving() -> bool:
            done = await asyncio.to_thread(subprocess.run, [
                str(BIN / "temporal"), "operator", "cluster", "health", "--address", self.temporal_address],
                capture_output=True, text=True)
            return "SERVING" in done.stdout

        async def mongo_serving() -> bool:
            probe: AsyncMongoClient = AsyncMongoClient(self.mongo_uri, serverSelectionTimeoutMS=500)
            try:
                await probe.admin.command("ping")
                return True
            except Exception:
                return False
            finally:
                await probe.close()

        await wait_for(temporal_serving, 60, "Temporal", temporal)
        await wait_for(mongo_serving, 60, "SecantusDB", mongo)

    async def start_sim(self, name: str, speed: str) -> tuple[Service, str]:
        port = free_port()
        sim = self.spawn(name, [
            str(BIN / "durabot"), "sim", "exchange", "--port", str(port), "--speed", speed,
            "--symbol", SYMBOL, "--data-dir", str(REPO / "data"), "--state-dir", str(self.root / name / "state"),
            "--no-tiling", "--start-offset-candles", str(START_OFFSET)])
        rest = f"http://127.0.0.1:{port}"

        async def pinging() -> bool:
            async with httpx.AsyncClient(timeout=2) as http:
                return (await http.get(f"{rest}/api/v3/ping")).status_code == 200

        await wait_for(pinging, 60, f"sim exchange {name}", sim)
        return sim, rest

    def start_worker(self, name: str, run: RunIds, sim_rest: str, backfill: int) -> Service:
        sim_ws = sim_rest.replace("http://", "ws://")
        settings = {
            "VAR_DIR": str(self.root / name / "var"), "TEMPORAL_ADDRESS": self.temporal_address,
            "MONGO_URI": self.mongo_uri, "MONGO_DATABASE": run.database, "TASK_QUEUE_PREFIX": run.prefix,
            "EXCHANGE_REST_URL": sim_rest, "EXCHANGE_FUTURES_URL": sim_rest, "EXCHANGE_WS_URL": sim_ws,
            "FEED_SOURCE": run.source, "FEED_STREAMS": f"{SYMBOL}@{INTERVAL}", "FEED_AUTOSTART": "false",
            "FEED_BACKFILL_CANDLES": str(backfill), "LOG_LEVEL": "WARNING",
        }
        env = {k: v for k, v in os.environ.items() if not k.startswith("DURABOT_")}
        env.update({f"DURABOT_{k}": v for k, v in settings.items()})
        return self.spawn(name, [str(BIN / "durabot"), "worker"], env=env)


@dataclass(frozen=True)
class RunIds:
    """Names that keep one run's data, queues and feed apart from every other run's."""

    tag: str
    database: str
    prefix: str
    source: str

    @classmethod
    def new(cls, tag: str) -> RunIds:
        unique = uuid.uuid4().hex[:8]
        return cls(tag, f"bench_{tag}_{unique}", f"bench-{tag}-{unique}-", f"bench-{tag}-{unique}")


async def start_feed(client: Client, run: RunIds) -> WorkflowHandle:
    return await client.start_workflow(
        MarketFeedWorkflow.run, MarketFeedInput(source=run.source, run_seconds=3600.0),
        id=feed_workflow_id(run.source), task_queue=task_queue_name(TASK_QUEUE_MARKET, run.prefix),
        execution_timeout=timedelta(minutes=30))


async def stored_count(db: AsyncDatabase) -> int:
    return await db.market_data.count_documents({"symbol": SYMBOL, "interval": INTERVAL})


# ---- (a) ingest ----------------------------------------------------------------------------------

@dataclass
class IngestRun:
    backfilled: int
    window_s: float
    stored_in_window: int
    reached_series_end: bool
    # At the window's end: how many candles the sim had sent beyond the feed's newest stored one.
    sim_ahead: int

    @property
    def rate(self) -> float:
        return self.stored_in_window / self.window_s


async def ingest_run(stack: Stack, client: Client, mongo: AsyncMongoClient, index: int, window_s: float,
                     backfill: int) -> IngestRun:
    run = RunIds.new(f"ingest{index}")
    db = mongo[run.database]
    sim, rest = await stack.start_sim(f"{run.tag}-sim", "max")
    worker = stack.start_worker(f"{run.tag}-worker", run, rest, backfill)
    feed = await start_feed(client, run)
    try:
        await wait_for(lambda: _has_rows(db, 1), 90, "the first-sight backfill", worker)
        # One bulk upsert stores the backfill, every row with the same stored_at (taken before the
        # write, which is not atomic): the stream has begun once a row carries a later one.
        first = await db.market_data.find_one({"symbol": SYMBOL, "interval": INTERVAL}, sort=[("open_time", 1)])
        assert first is not None
        batch_at = first["stored_at"]

        async def streaming() -> bool:
            return await db.market_data.count_documents({"stored_at": {"$gt": batch_at}}, limit=1) > 0

        await wait_for(streaming, 60, "the first streamed candle", worker)
        backfilled = await db.market_data.count_documents({"stored_at": batch_at})
        # One second of warm-up after the first streamed candle, then a fixed wall-clock window.
        await asyncio.sleep(1.0)
        window_start = time.time()
        await asyncio.sleep(window_s)
        window_end = time.time()
        sim.check_alive()
        worker.check_alive()
        stored_in_window = await db.market_data.count_documents({
            "symbol": SYMBOL, "interval": INTERVAL,
            "stored_at": {"$gte": datetime.fromtimestamp(window_start, UTC),
                          "$lt": datetime.fromtimestamp(window_end, UTC)}})
        last = await market_store.last_open_time(db, SYMBOL, INTERVAL)
        async with httpx.AsyncClient(base_url=rest, timeout=10) as http:
            sim_state = (await http.get("/sim/state")).json()
        return IngestRun(backfilled, window_end - window_start, stored_in_window,
                         reached_series_end=last is not None and last >= _series_last_open_time(sim_state),
                         sim_ahead=(_sim_last_closed(sim_state) - (last or 0)) // INTERVAL_MS[INTERVAL])
    finally:
        await _terminate(feed)
        stack.stop(worker)
        stack.stop(sim)


async def _has_rows(db: AsyncDatabase, at_least: int) -> bool:
    return await stored_count(db) >= at_least


def _series_last_open_time(sim_state: dict) -> int:
    """The open time of the sim's final candle once its replay has closed every candle, else +infinity."""
    for series in sim_state["series"]:
        if (series["symbol"], series["interval"], series["kind"]) == (SYMBOL, INTERVAL, "spot") and (
                series["closed_candles"] >= series["file_candles"]):
            return int(series["last_closed_open_time"])
    return sys.maxsize


def _sim_last_closed(sim_state: dict) -> int:
    return next(int(s["last_closed_open_time"]) for s in sim_state["series"]
                if (s["symbol"], s["interval"], s["kind"]) == (SYMBOL, INTERVAL, "spot"))


async def _terminate(handle: WorkflowHandle) -> None:
    try:
        await handle.terminate("bench run over")
    except Exception as exc:  # noqa: BLE001 - a feed that already ended is fine
        print(f"  (terminating {handle.id}: {exc})", file=sys.stderr)


# ---- (b) latency ---------------------------------------------------------------------------------

@workflow.defn(name="BenchFeedLatencySubscriber")
class LatencySubscriber:
    """Records when each candle's first ``candle_closed`` signal reached it (workflow task start time)."""

    def __init__(self) -> None:
        self._received: dict[int, float] = {}
        self._stop = False

    @workflow.run
    async def run(self) -> None:
        await workflow.wait_condition(lambda: self._stop)

    @workflow.signal(name=SIGNAL_CANDLE_CLOSED)
    def candle_closed(self, candle: CandleClosed) -> None:
        self._received.setdefault(candle.open_time, workflow.now().timestamp())

    @workflow.signal
    def stop(self) -> None:
        self._stop = True

    @workflow.query
    def received(self) -> list[tuple[int, float]]:
        return sorted(self._received.items())


def probe_closed_klines(ws_url: str, out_path: str, stop: ProcessEvent) -> None:
    """In its own process: write "open_time wall_time" for every closed kline the sim sends."""
    from websockets.sync.client import connect

    stream = f"{SYMBOL.lower()}@kline_{INTERVAL}"
    with connect(f"{ws_url}/ws/{stream}", max_size=None) as ws, open(out_path, "w") as out:
        while not stop.is_set():
            try:
                text = ws.recv(timeout=0.5)
            except TimeoutError:
                continue
            wall = time.time()
            kline = json.loads(text)["k"]
            if kline["x"]:
                out.write(f"{kline['t']} {wall:.6f}\n")
                out.flush()


def read_probe(path: Path) -> dict[int, float]:
    sent: dict[int, float] = {}
    if path.exists():
        for line in path.read_text().splitlines():
            open_time, wall = line.split()
            sent.setdefault(int(open_time), float(wall))
    return sent


@dataclass
class LatencyRun:
    subscribers: int
    speed: float
    starts_per_s: float
    candles: list[int] = field(default_factory=list)
    samples: list[float] = field(default_factory=list)  # seconds, one per (subscriber, candle)
    fanout_s: list[float] = field(default_factory=list)  # per candle: send → last subscriber
    to_store_s: list[float] = field(default_factory=list)  # per candle: send → market_data.stored_at
    missing: int = 0
    note: str = ""

    @property
    def period_s(self) -> float:
        return 300.0 / self.speed


async def latency_run(stack: Stack, client: Client, mongo: AsyncMongoClient, subscribers: int, speed: float,
                      candles: int, warmup_candles: int, deadline: float) -> LatencyRun:
    run = RunIds.new(f"lat{subscribers}")
    db = mongo[run.database]
    period = 300.0 / speed
    sim, rest = await stack.start_sim(f"{run.tag}-sim", f"{speed:g}")
    probe_out = stack.root / f"{run.tag}-probe.txt"
    stop_probe = multiprocessing.get_context("spawn").Event()
    probe = multiprocessing.get_context("spawn").Process(
        target=probe_closed_klines, args=(rest.replace("http://", "ws://"), str(probe_out), stop_probe), daemon=True)
    probe.start()
    worker = stack.start_worker(f"{run.tag}-worker", run, rest, backfill=100)
    queue = f"{run.prefix}bench-subscribers"
    bench_worker = Worker(client, task_queue=queue, workflows=[LatencySubscriber],
                          workflow_runner=UnsandboxedWorkflowRunner(), max_cached_workflows=subscribers + 100)
    feed: WorkflowHandle | None = None
    try:
        async with bench_worker:
            handles, starts_per_s = await _start_subscribers(client, queue, run, subscribers, deadline)
            result = LatencyRun(subscribers, speed, starts_per_s)
            if len(handles) < subscribers:
                result.note = (f"only {len(handles)} of {subscribers} subscribers started before the time budget "
                               "ran out; no latency measured")
                return result
            gate = asyncio.Semaphore(STARTS_IN_FLIGHT)

            async def subscribe(handle: WorkflowHandle) -> None:
                async with gate:
                    await market_store.subscribe(db, FeedSubscription(run.source, SYMBOL, INTERVAL, handle.id))

            await asyncio.gather(*(subscribe(h) for h in handles))
            subscribed = await db.feed_subscriptions.count_documents({"source": run.source})
            if subscribed != subscribers:
                raise RuntimeError(f"{subscribed} subscriptions stored, expected {subscribers}")
            feed_started = time.time()
            feed = await start_feed(client, run)
            # The feed's first delivery is the newest backfilled candle (from REST, not the stream),
            # and the first few streamed candles still meet worker and cache warm-up: skip them.
            settle = feed_started + 3.0 + warmup_candles * period
            wanted_until = time.monotonic() + 90 + (warmup_candles + candles) * period * 1.5
            while time.monotonic() < min(wanted_until, deadline):
                worker.check_alive()
                measured = [t for t, wall in sorted(read_probe(probe_out).items()) if wall >= settle]
                if len(measured) >= candles:
                    break
                await asyncio.sleep(POLL_S)
            sent = read_probe(probe_out)
            result.candles = [t for t, wall in sorted(sent.items()) if wall >= settle][:candles]
            if len(result.candles) < candles:
                result.note = f"only {len(result.candles)} of {candles} candles were sent within the time budget"
            if not result.candles:
                return result
            received = await _collect(handles, result.candles, drain_s=max(10.0, 3 * period),
                                      deadline=deadline + 30)
            stored = {d["open_time"]: d["stored_at"].timestamp() async for d in db.market_data.find(
                {"symbol": SYMBOL, "interval": INTERVAL, "open_time": {"$in": result.candles}},
                {"open_time": 1, "stored_at": 1})}
            for open_time in result.candles:
                times = [got[open_time] for got in received if open_time in got]
                result.missing += subscribers - len(times)
                result.samples += [t - sent[open_time] for t in times]
                if len(times) == subscribers:
                    result.fanout_s.append(max(times) - sent[open_time])
                if open_time in stored:
                    result.to_store_s.append(stored[open_time] - sent[open_time])
            return result
    finally:
        if feed is not None:
            await _terminate(feed)
        stop_probe.set()
        probe.join(timeout=5)
        if probe.is_alive():
            probe.terminate()
            probe.join()
        stack.stop(worker)
        stack.stop(sim)


async def _start_subscribers(client: Client, queue: str, run: RunIds, count: int,
                             deadline: float) -> tuple[list[WorkflowHandle], float]:
    gate = asyncio.Semaphore(STARTS_IN_FLIGHT)

    async def start(i: int) -> WorkflowHandle | None:
        async with gate:
            if time.monotonic() > deadline:
                return None
            return await client.start_workflow(
                LatencySubscriber.run, id=f"{run.source}-subscriber-{i}", task_queue=queue,
                execution_timeout=timedelta(minutes=30))

    began = time.monotonic()
    started = [h for h in await asyncio.gather(*(start(i) for i in range(count))) if h is not None]
    return started, len(started) / max(time.monotonic() - began, 1e-9)


async def _collect(handles: Sequence[WorkflowHandle], candles: list[int], drain_s: float,
                   deadline: float) -> list[dict[int, float]]:
    """Query every subscriber until each has the last measured candle or the drain time is over."""
    gate = asyncio.Semaphore(QUERIES_IN_FLIGHT)
    got: list[dict[int, float]] = [{} for _ in handles]
    last = candles[-1]

    async def query(i: int) -> None:
        async with gate:
            got[i] = dict(await handles[i].query(LatencySubscriber.received))

    until = min(time.monotonic() + drain_s, deadline)
    pending = list(range(len(handles)))
    while pending:
        await asyncio.gather(*(query(i) for i in pending))
        pending = [i for i in pending if last not in got[i]]
        if not pending or time.monotonic() >= until:
            break
        await asyncio.sleep(1.0)
    return got


# ---- report --------------------------------------------------------------------------------------

def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of a non-empty sample."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(q / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


def ms(seconds: float) -> str:
    return f"{seconds * 1000:7.1f}"


def print_header(args: argparse.Namespace) -> None:
    print("Durabot market-feed bench (embedded stack: Temporal dev server on SQLite with WAL, SecantusDB, "
          "sim exchange, product worker; each its own process)")
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"machine: {os.cpu_count()} cores (shared; load average {load} at start), {platform.platform()}, "
          f"Python {platform.python_version()}")
    print(f"data: {DATA_FILE.relative_to(REPO)} (real BTC/USDT 5m candles, 10,999 rows), sim tiling off, "
          f"replay starts {START_OFFSET} candles in, symbol {SYMBOL}, stream {SYMBOL}@{INTERVAL}")


def print_ingest(runs: list[IngestRun], backfill: int) -> None:
    print(f"\n(a) ingest: sim speed max, no subscribers, first-sight backfill {backfill} candles by REST, then the "
          "kline stream; per streamed candle the feed upserts market_data, publishes 2 events and heartbeats")
    for i, r in enumerate(runs, 1):
        end = "  (the sim's series ended inside the window: rate is a lower bound)" if r.reached_series_end else ""
        print(f"  run {i}: {r.stored_in_window} candles stored in {r.window_s:.1f} s = {r.rate:7.1f} candles/s; "
              f"backfill {r.backfilled}; at window end the sim was {r.sim_ahead} candles ahead of the feed{end}")
    if runs:
        print(f"  median of {len(runs)} runs: {statistics.median(r.rate for r in runs):.1f} candles/s stored "
              "(rows whose market_data.stored_at falls inside the window / window)")
        print("  the sim ran ahead of the feed (its sends were buffered in the socket), so this is the feed's rate;")
        print("  the backfill size varies because the sim moves on between the feed's WebSocket connect and its REST "
              "call")


def print_latency(runs: list[LatencyRun], warmup: int) -> None:
    print("\n(b) latency, sim kline send -> subscriber workflow receives candle_closed (wall time)")
    print("    send = wall time a second WebSocket client (own process) got the x:true kline from the sim;")
    print("    receive = workflow.now() in the subscriber's signal handler (start of the workflow task);")
    print(f"    first {warmup} streamed candles after the feed starts skipped as warm-up; p = nearest rank")
    print("  subs  speed  period   starts/s  candles  samples  missing   p50 ms   p99 ms   max ms   "
          "fan-out p50 ms  send->stored p50 ms")
    for r in runs:
        if r.samples:
            fan = ms(statistics.median(r.fanout_s)) if r.fanout_s else "    n/a"
            store = ms(statistics.median(r.to_store_s)) if r.to_store_s else "    n/a"
            print(f"  {r.subscribers:4d}  {r.speed:5g}  {r.period_s:5.2f} s  {r.starts_per_s:8.1f}  "
                  f"{len(r.candles):7d}  {len(r.samples):7d}  {r.missing:7d}  {ms(percentile(r.samples, 50))}  "
                  f"{ms(percentile(r.samples, 99))}  {ms(max(r.samples))}  {fan:>14}  {store:>19}")
        else:
            print(f"  {r.subscribers:4d}  {r.speed:5g}  {r.period_s:5.2f} s  {r.starts_per_s:8.1f}  no samples")
        if r.note:
            print(f"        note: {r.note}")
        saturated = r.fanout_s and statistics.median(r.fanout_s) > r.period_s
        if saturated:
            print("        note: median fan-out exceeds the candle period: delivery did not keep up at this speed")
    print("  fan-out = send -> the last of the N subscribers received it (median over candles delivered to all);")
    print("  missing = (subscriber, candle) pairs not received by the end of the drain time")
    print("  send->stored = send -> market_data.stored_at, written by the feed before it publishes and signals: it")
    print("    isolates the WebSocket hop and the store from the signal fan-out through Temporal. BSON datetimes are")
    print("    truncated to the ms, so a value near -0.5 ms means \"within the same ms\"")
    print("  subscribers: bench-only workflows (this file) on an in-process worker, unsandboxed, started concurrently")
    print(f"    ({STARTS_IN_FLIGHT} in flight); their rows are upserted in feed_subscriptions before the feed starts.")
    print("    Each count gets a fresh sim, database and product worker; the feed's first backfill is 100 candles")


# ---- main ----------------------------------------------------------------------------------------

def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)

    def ints(text: str) -> list[int]:
        return [int(p) for p in text.split(",") if p]

    def floats(text: str) -> list[float]:
        return [float(p) for p in text.split(",") if p]

    parser.add_argument("--subscribers", type=ints, default=[1, 50, 500], help="subscriber counts (comma list)")
    parser.add_argument("--speeds", type=floats, default=[600.0, 300.0, 30.0],
                        help="sim speed per subscriber count (a 5m candle every 300/speed s)")
    parser.add_argument("--latency-candles", type=ints, default=[30, 30, 12], help="measured candles per count")
    parser.add_argument("--warmup-candles", type=int, default=2)
    parser.add_argument("--ingest-runs", type=int, default=3)
    parser.add_argument("--ingest-window-s", type=float, default=12.0)
    parser.add_argument("--ingest-backfill", type=int, default=1000, help="the feed's first-sight REST backfill")
    parser.add_argument("--budget-s", type=float, default=360.0, help="stop starting new work after this")
    parser.add_argument("--keep-dir", action="store_true", help="keep the temp dir (logs) after the run")
    args = parser.parse_args(argv)
    if not (len(args.subscribers) == len(args.speeds) == len(args.latency_candles)):
        parser.error("--subscribers, --speeds and --latency-candles need the same number of entries")
    if any(n < 1 for n in args.subscribers) or any(s <= 0 for s in args.speeds) or any(
            c < 1 for c in args.latency_candles):
        parser.error("subscriber counts, speeds and candle counts must be positive")
    if args.ingest_runs < 0 or args.ingest_window_s <= 0 or args.budget_s <= 0 or args.warmup_candles < 0:
        parser.error("--ingest-runs >= 0, --warmup-candles >= 0, --ingest-window-s and --budget-s > 0")
    return args


async def bench(args: argparse.Namespace, root: Path) -> None:
    began = time.monotonic()
    deadline = began + args.budget_s
    stack = Stack(root)
    try:
        await stack.start_servers()
        client = await Client.connect(stack.temporal_address)
        await ensure_search_attributes(client, "default")
        mongo: AsyncMongoClient = AsyncMongoClient(stack.mongo_uri, tz_aware=True)
        try:
            print_header(args)
            print(f"stack up in {time.monotonic() - began:.1f} s; temp dir {root}", flush=True)
            ingest: list[IngestRun] = []
            for i in range(args.ingest_runs):
                if time.monotonic() + args.ingest_window_s + 20 > deadline:
                    print(f"  ingest: time budget reached after {i} runs", flush=True)
                    break
                ingest.append(await ingest_run(stack, client, mongo, i + 1, args.ingest_window_s,
                                               args.ingest_backfill))
                print(f"  ingest run {i + 1}: {ingest[-1].rate:.1f} candles/s", flush=True)
            latency: list[LatencyRun] = []
            for count, speed, candles in zip(args.subscribers, args.speeds, args.latency_candles, strict=True):
                if time.monotonic() + 20 > deadline:
                    latency.append(LatencyRun(count, speed, 0.0, note="skipped: time budget reached"))
                    continue
                t0 = time.monotonic()
                latency.append(await latency_run(stack, client, mongo, count, speed, candles, args.warmup_candles,
                                                 deadline))
                print(f"  latency run, {count} subscribers: {time.monotonic() - t0:.0f} s", flush=True)
            print_ingest(ingest, args.ingest_backfill)
            print_latency(latency, args.warmup_candles)
            print(f"\ntotal wall time {time.monotonic() - began:.0f} s", flush=True)
        finally:
            await mongo.close()
    finally:
        stack.stop_all()


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    root = Path(tempfile.mkdtemp(prefix="durabot-bench-feed-"))
    status = 0
    try:
        asyncio.run(bench(args, root))
    except BaseException:  # noqa: BLE001 - reported, then the hard exit below
        traceback.print_exc()
        status = 1
    finally:
        if not args.keep_dir:
            shutil.rmtree(root, ignore_errors=True)
    sys.stdout.flush()
    sys.stderr.flush()
    # A short-lived process holding a Temporal client can hang at interpreter exit (sdk-python#300).
    os._exit(status)


if __name__ == "__main__":
    main()
