"""Session-wide fixtures: a real Temporal dev server and a real SecantusDB on free ports in a temp
dir, clients for both, and a unique task queue per test."""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pyotp
import pytest
import uvicorn
from pymongo import AsyncMongoClient, MongoClient
from temporalio.client import Client

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(predicate, timeout: float, what: str, interval: float = 0.1) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout}s waiting for {what}")


def _parents() -> dict[int, int]:
    """Every live process's parent, from /proc."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parents[int(entry.name)] = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except OSError:
                continue
    return parents


def descendants(pid: int) -> set[int]:
    """Every live descendant of pid."""
    parents = _parents()
    found: set[int] = set()
    frontier = [pid]
    while frontier:
        current = frontier.pop()
        for child, parent in parents.items():
            if parent == current and child not in found:
                found.add(child)
                frontier.append(child)
    return found


def alive(pid: int) -> bool:
    """True unless pid is gone or a zombie."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def stop_process(proc: subprocess.Popen, grace: float = 10.0) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class TemporalServer:
    """A real `temporal server start-dev` on free ports; restartable on the same SQLite file."""

    def __init__(self, workdir: Path, extra_args: list[str] | None = None) -> None:
        self.workdir = workdir
        self.port = free_port()
        self.extra_args = extra_args or []
        self.proc: subprocess.Popen | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        log = open(self.workdir / "temporal.log", "ab")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [str(BIN / "temporal"), "server", "start-dev", "--headless", "--ip", "127.0.0.1",
             "--port", str(self.port), "--db-filename", str(self.workdir / "temporal.db"),
             "--sqlite-pragma", "journal_mode=wal", "--sqlite-pragma", "synchronous=normal",
             "--dynamic-config-value", "frontend.enableServerVersionCheck=false", "--log-level", "error",
             *self.extra_args],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        wait_until(self._healthy, 30, f"Temporal on {self.address}")

    def _healthy(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise RuntimeError(f"temporal exited: {(self.workdir / 'temporal.log').read_text()[-2000:]}")
        done = subprocess.run([str(BIN / "temporal"), "operator", "cluster", "health", "--address", self.address],
                              capture_output=True, text=True)
        return "SERVING" in done.stdout

    def stop(self) -> None:
        if self.proc:
            stop_process(self.proc)


class MongoServer:
    """A real SecantusDB process on a free port; restartable on the same storage."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.port = free_port()
        self.proc: subprocess.Popen | None = None

    @property
    def uri(self) -> str:
        return f"mongodb://127.0.0.1:{self.port}/?retryWrites=false&directConnection=true"

    def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        log = open(self.workdir / "mongo.log", "ab")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [str(BIN / "secantusd-py"), "--host", "127.0.0.1", "--port", str(self.port),
             "--storage-path", str(self.workdir / "data"), "--log-level", "WARNING"],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        wait_until(self._healthy, 30, f"SecantusDB on {self.port}")

    def _healthy(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise RuntimeError(f"secantusd exited: {(self.workdir / 'mongo.log').read_text()[-2000:]}")
        try:
            with MongoClient(self.uri, serverSelectionTimeoutMS=500) as client:
                client.admin.command("ping")
            return True
        except Exception:
            return False

    def stop(self) -> None:
        if self.proc:
            stop_process(self.proc)


@pytest.fixture(scope="session")
def temporal_server(tmp_path_factory) -> Iterator[TemporalServer]:
    server = TemporalServer(tmp_path_factory.mktemp("temporal"))
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def mongo_server(tmp_path_factory) -> Iterator[MongoServer]:
    server = MongoServer(tmp_path_factory.mktemp("mongo"))
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def jwt_private_pem() -> str:
    """One RSA signing key for every gateway of the run: generating one per test would dominate the runtime."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode()


@pytest.fixture(scope="session")
async def temporal_client(temporal_server: TemporalServer) -> Client:
    from worker.main import ensure_search_attributes

    client = await Client.connect(temporal_server.address)
    await ensure_search_attributes(client, "default")
    return client


@pytest.fixture(scope="session")
async def mongo_client(mongo_server: MongoServer) -> AsyncIterator[AsyncMongoClient]:
    client: AsyncMongoClient = AsyncMongoClient(mongo_server.uri, tz_aware=True)
    yield client
    await client.close()


@pytest.fixture
def db_name() -> str:
    return f"t_{uuid.uuid4().hex[:10]}"


@pytest.fixture
def task_queue(request) -> str:
    return f"tq-{request.node.name[:40]}-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def settings(tmp_path, temporal_server: TemporalServer, mongo_server: MongoServer, db_name: str):
    """Settings that point at the fixture servers as external services."""
    from core.settings import Settings

    return Settings(
        _env_file=None,
        var_dir=tmp_path / "var",
        temporal_address=temporal_server.address,
        mongo_uri=mongo_server.uri,
        mongo_database=db_name,
        gateway_port=free_port(),
        mcp_port=free_port(),
        connect_timeout_s=10,
    )


def with_key(headers: dict[str, str] | None = None) -> dict[str, str]:
    """``headers`` with a fresh Idempotency-Key, as the dashboard sends one per action."""
    return {**(headers or {}), "Idempotency-Key": f"test-{uuid.uuid4().hex}"}


async def registered_and_logged_in(http: Any, password: str, email: str | None = None) -> dict[str, Any]:
    """Register a new user (a fresh email unless given) and log in: the login's answer with ``user_id``
    and ``email``."""
    email = email or f"u{uuid.uuid4().hex[:10]}@example.com"
    reply = await http.post("/api/auth/register", json={"email": email, "password": password})
    assert reply.status_code == 201, reply.text
    tokens = await http.post("/api/auth/login", json={"email": email, "password": password})
    assert tokens.status_code == 200, tokens.text
    return {**tokens.json(), "user_id": reply.json()["user_id"], "email": email}


async def enrol_two_factor(http: Any, headers: dict[str, str]) -> Any:
    """Turn two-factor on for the account behind ``headers`` through the API (which also steps its login
    session up); the ``pyotp.TOTP`` that makes its codes, with the recovery codes as ``.recovery``."""
    setup = await http.post("/api/auth/2fa/setup", headers=headers)
    assert setup.status_code == 200, setup.text
    totp = pyotp.TOTP(setup.json()["secret"])
    enabled = await http.post("/api/auth/2fa/enable", headers=headers, json={"code": totp.now()})
    assert enabled.status_code == 200, enabled.text
    totp.recovery = enabled.json()["recovery_codes"]
    return totp


def durabot_env(**overrides: str) -> dict[str, str]:
    """A clean environment for running `durabot` subprocesses: no DURABOT_* leaks from the caller."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DURABOT_")}
    env.update(overrides)
    return env


@pytest.fixture
def run_env():
    return durabot_env


@pytest.fixture
def spawn_mongo(tmp_path) -> Iterator:
    """Start extra SecantusDB servers that a test may stop or restart on its own."""
    servers: list[MongoServer] = []

    def spawn() -> MongoServer:
        server = MongoServer(tmp_path / f"mongo-{len(servers)}")
        server.start()
        servers.append(server)
        return server

    yield spawn
    for server in servers:
        server.stop()


@pytest.fixture
def get_free_port():
    return free_port


WRITE_METHODS = ("POST", "PUT", "PATCH", "DELETE")


async def _add_idempotency_key(request: httpx.Request) -> None:
    """Give every write a fresh Idempotency-Key unless it carries one, as the dashboard does per action."""
    if request.method in WRITE_METHODS and "Idempotency-Key" not in request.headers:
        request.headers["Idempotency-Key"] = f"test-{uuid.uuid4().hex}"


@dataclass
class Gateway:
    """A gateway running in-process on a real socket, with HTTP clients and its captured JSON logs.
    ``http`` adds a fresh Idempotency-Key to writes that carry none; ``bare`` sends requests as given."""

    http: httpx.AsyncClient
    settings: Any
    app: Any
    logs: io.StringIO
    bare: httpx.AsyncClient

    @property
    def db(self):
        return self.app.state.services.db


@asynccontextmanager
async def running_gateway(settings) -> AsyncIterator[Gateway]:
    from core.logs import JsonFormatter, RedactionFilter
    from gateway.app import create_app

    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter("gateway"))
    handler.addFilter(RedactionFilter())
    root = logging.getLogger()
    root.addHandler(handler)
    previous_level = root.level
    root.setLevel(logging.INFO)
    app = create_app(settings)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=settings.gateway_port, log_config=None,
                                           lifespan="on", ws="websockets-sansio"))
    task = asyncio.create_task(server.serve())
    try:
        for _ in range(400):
            if server.started or task.done():
                break
            await asyncio.sleep(0.05)
        assert server.started, "gateway did not start"
        async with httpx.AsyncClient(base_url=settings.gateway_url, timeout=30,
                                     event_hooks={"request": [_add_idempotency_key]}) as http, \
                httpx.AsyncClient(base_url=settings.gateway_url, timeout=30) as bare:
            yield Gateway(http, settings, app, stream, bare)
    finally:
        server.should_exit = True
        await task
        root.removeHandler(handler)
        root.setLevel(previous_level)


@pytest.fixture
def run_gateway():
    """``async with run_gateway(settings) as gw:`` — gw.http, gw.logs, gw.db."""
    return running_gateway


@pytest.fixture
async def start_sim(tmp_path: Path):
    """Start in-process sim exchanges on free ports (state in this test's tmp dir unless given); all stop
    at teardown. Defaults: BTCUSDT only, speed max, tiling off, 2,000 candles, 500 closed at start. The
    sim serves from the test's event loop, so only async HTTP clients may call it."""
    from sim.exchange import SimExchangeConfig, SimExchangeServer

    running: list[SimExchangeServer] = []

    async def start(**overrides: Any) -> SimExchangeServer:
        settings: dict[str, Any] = {"port": 0, "state_dir": tmp_path / "sim-state", "speed": "max",
                                    "symbols": ("BTCUSDT",), "tiling": False, "max_candles_per_series": 2000,
                                    "start_offset_candles": 500}
        settings.update(overrides)
        server = SimExchangeServer(SimExchangeConfig(**settings))
        await server.start()
        running.append(server)
        return server

    yield start
    for server in reversed(running):
        await server.stop()


@pytest.fixture
async def start_sim_xai(tmp_path: Path):
    """Start in-process sim xAI APIs on free ports (ledger in this test's tmp dir unless given); all stop
    at teardown. ``server.base_url`` is the OpenAI SDK's base URL, ``server.sim`` the app (faults, ledger).
    It serves from the test's event loop, so only async clients may call it."""
    from sim.xai import SimXaiConfig, SimXaiServer

    running: list[SimXaiServer] = []

    async def start(**overrides: Any) -> SimXaiServer:
        server = SimXaiServer(SimXaiConfig(**{"port": 0, "state_dir": tmp_path / "sim-xai", **overrides}))
        await server.start()
        running.append(server)
        return server

    yield start
    for server in reversed(running):
        await server.stop()


@pytest.fixture
async def start_sim_telegram(tmp_path: Path):
    """Start in-process sim Telegram Bot APIs on free ports (state in this test's tmp dir unless given; update ids
    from 1000 unless given); all stop at teardown. ``server.url`` is the Bot API base URL (aiogram's
    ``TelegramAPIServer.from_base(server.url)``, ``DURABOT_TELEGRAM_API_URL``) and the controls' base,
    ``server.token`` the bot token it accepts, ``server.sim`` the app (``.state``, ``.faults``, ``.requests``).
    It serves from the test's event loop, so only async clients may call it."""
    from sim.telegram import SimTelegramConfig, SimTelegramServer

    running: list[SimTelegramServer] = []

    async def start(**overrides: Any) -> SimTelegramServer:
        settings: dict[str, Any] = {"port": 0, "state_dir": tmp_path / "sim-telegram", "first_update_id": 1000}
        server = SimTelegramServer(SimTelegramConfig(**{**settings, **overrides}))
        await server.start()
        running.append(server)
        return server

    yield start
    for server in reversed(running):
        await server.stop()


@asynccontextmanager
async def running_all(workers: list[Any]) -> AsyncIterator[list[Any]]:
    """Run every worker ``worker.main.build_workers`` made (one per task-queue role) until the block ends."""
    async with contextlib.AsyncExitStack() as stack:
        for worker in workers:
            await stack.enter_async_context(worker)
        yield workers


@asynccontextmanager
async def worker_running(client: Client, settings, db, identity: str, role: str) -> AsyncIterator[Any]:
    """The product's worker of one task-queue role (workflows and activities of worker/registry.py)
    in-process on the settings' task-queue prefix, stopped without a grace period at the end."""
    from datetime import timedelta

    from temporalio.worker import Worker

    from core.contracts import task_queue_name
    from worker.registry import WorkerContext, activities_for, workflows_for

    ctx = WorkerContext(settings=settings, db=db, temporal=client)
    worker = Worker(client, task_queue=task_queue_name(role, settings.task_queue_prefix),
                    workflows=workflows_for(role), activities=activities_for(role, ctx),
                    identity=identity, graceful_shutdown_timeout=timedelta(seconds=0))
    async with worker:
        yield worker


@asynccontextmanager
async def trading_worker_running(client: Client, settings, db, identity: str) -> AsyncIterator[Any]:
    """The product's trading worker in-process (see ``worker_running``)."""
    from core.contracts import TASK_QUEUE_TRADING

    async with worker_running(client, settings, db, identity, TASK_QUEUE_TRADING) as worker:
        yield worker


async def record_histories(temporal_client: Client, workflow_ids: list[str], env_var: str) -> None:
    """With ``env_var`` naming a folder, write every run's history of these workflows there (gzipped
    JSON, ``{id}-{run}.json.gz`` with ':' as '-'): how committed replay histories are recorded."""
    import gzip

    target = os.environ.get(env_var)
    if not target:
        return
    for workflow_id in workflow_ids:
        async for found in temporal_client.list_workflows(f"WorkflowId = '{workflow_id}'"):
            history = await temporal_client.get_workflow_handle(found.id, run_id=found.run_id).fetch_history()
            name = f"{found.id.replace(':', '-')}-{found.run_id}.json.gz"
            (Path(target) / name).write_bytes(gzip.compress(history.to_json().encode()))
