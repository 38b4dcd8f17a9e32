"""Fixtures of the paper-trading API tests: a gateway on a real socket and an in-process trading
worker on a unique task-queue prefix (real Temporal + SecantusDB), users, and candles fed to a
session by signal, as the market feed would."""

from __future__ import annotations

import asyncio
import gzip
import os
import sys
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr
from temporalio.client import Client
from temporalio.worker import Worker

from activities.binance.key_vault import new_master_key_text
from activities.market_store import store_candles
from core.contracts import (
    SIGNAL_CANDLE_CLOSED,
    CandleClosed,
    session_workflow_id,
)
from core.datafiles import load_candles
from trading.candle import Candle

from ..conftest import registered_and_logged_in, trading_worker_running

REPO = Path(__file__).resolve().parents[2]
CANDLES = REPO / "data" / "candles"
PASSWORD = "correct horse battery staple"
SYMBOL = "ETHBTC"
DATASET = "ETHBTC-5m-2018-01.csv.gz"


# The alt/BTC set is quoted in BTC: it trades in a BTC-denominated spot account.
BTC_ACCOUNT = {"market": "spot", "account_currency": "BTC", "leverage": 1}
SIM_SYMBOLS = (SYMBOL, "LTCBTC", "BTCUSDT")


@pytest.fixture
async def exchange_sim(start_sim):
    """The sim exchange the gateway asks which symbols exist and with which filters."""
    return await start_sim(symbols=SIM_SYMBOLS, max_candles_per_series=600, start_offset_candles=100)


@pytest.fixture
def paper_settings(settings, jwt_private_pem, exchange_sim):
    url = f"http://127.0.0.1:{exchange_sim.port}"
    return settings.model_copy(update={
        "jwt_private_key": SecretStr(jwt_private_pem), "master_key": SecretStr(new_master_key_text()),
        "login_attempts_per_ip": 1000, "task_queue_prefix": f"papi-{uuid.uuid4().hex[:10]}-",
        "data_dir": REPO / "data", "exchange_rest_url": url, "exchange_futures_url": url,
    })


@pytest.fixture
async def trading_worker(paper_settings, temporal_client: Client, mongo_client) -> AsyncIterator[Worker]:
    async with trading_worker_running(temporal_client, paper_settings, mongo_client[paper_settings.mongo_database],
                                      "paper-api-test") as worker:
        yield worker


@pytest.fixture
async def gateway(paper_settings, run_gateway, trading_worker) -> AsyncIterator[Any]:
    async with run_gateway(paper_settings) as gw:
        yield gw


@dataclass
class Account:
    user_id: str
    email: str
    access: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.access}"}

    @property
    def session_id(self) -> str:
        return session_workflow_id(self.user_id)


SignUp = Callable[[], Awaitable[Account]]


async def register(gateway) -> Account:
    """A new user, logged in (a human session) on ``gateway``."""
    found = await registered_and_logged_in(gateway.http, PASSWORD)
    return Account(found["user_id"], found["email"], found["access_token"])


@pytest.fixture
def sign_up(gateway) -> SignUp:
    async def sign_up() -> Account:
        return await register(gateway)

    return sign_up


def candles(count: int, start: int = 0) -> list[Candle]:
    return load_candles(CANDLES / DATASET)[start:start + count]


async def store(gateway, fed: Sequence[Candle]) -> None:
    await store_candles(gateway.db, fed, "5m", "test")


async def feed(gateway, temporal_client: Client, account: Account, fed: Sequence[Candle],
               within_s: float = 120) -> dict[str, Any]:
    """Store candles, signal them to the account's session, wait until it processed the last one."""
    await store(gateway, fed)
    handle = temporal_client.get_workflow_handle(account.session_id)
    for c in fed:
        await handle.signal(SIGNAL_CANDLE_CLOSED, CandleClosed("test", c.symbol, "5m", c.open_time, c.close_time,
                                                               c.open, c.high, c.low, c.close, c.volume))
    deadline = asyncio.get_running_loop().time() + within_s
    while True:
        status = (await gateway.http.get("/api/paper-trading/status", headers=account.headers)).json()
        if status["last_open_time"].get(f"{SYMBOL}@5m") == fed[-1].open_time and status["queued"] == 0:
            return status
        assert asyncio.get_running_loop().time() < deadline, f"session stuck at {status}"
        await asyncio.sleep(0.2)


async def fuzz(gateway, account: Account, tmp_path: Path, phases: str) -> str:
    """Run schemathesis over /api/paper-trading, /api/backtests and /api/tuning as ``account``; return the JUnit
    report. Fails on any 5xx, undeclared status or wrong content type."""
    report = tmp_path / "schemathesis.xml"
    proc = await asyncio.create_subprocess_exec(
        str(Path(sys.executable).parent / "schemathesis"),
        "run", f"{gateway.settings.gateway_url}/openapi.json",
        "--include-path-regex", "^/api/(paper-trading|backtests|tuning)",
        "--checks", "not_a_server_error,status_code_conformance,content_type_conformance",
        "--max-examples", "20", "--seed", "1", "--workers", "2", "--phases", phases,
        "--no-color", "--suppress-health-check", "all",
        "-H", f"Authorization: Bearer {account.access}",
        "--report", "junit", "--report-junit-path", str(report),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        cwd=tmp_path,  # schemathesis keeps its example database in the working directory
    )
    output, _ = await proc.communicate()
    text = output.decode(errors="replace")
    assert proc.returncode == 0, text[-6000:]
    return report.read_text()


async def live_session(gateway, temporal_client: Client, account: Account) -> None:
    """A started session that has traded 20 candles, so fuzzed writes reach a live session."""
    started = await gateway.http.post("/api/paper-trading/start", headers=account.headers,
                                      json={"symbols": [SYMBOL], "interval": "5m", "basic": BTC_ACCOUNT})
    assert started.status_code == 200, started.text
    await feed(gateway, temporal_client, account, candles(20))


async def keep_histories(temporal_client, user_id: str) -> None:
    """With DURABOT_RECORD_TUNING_HISTORIES=<dir>, write every tuning workflow history of the user there
    (how tests/paper_api/tuning_histories is recorded; see test_tuning_replay.py)."""
    target = os.environ.get("DURABOT_RECORD_TUNING_HISTORIES")
    if not target:
        return
    query = f"DurabotUser = '{user_id}' AND WorkflowType IN ('TuningWorkflow', 'TuningApprovalWorkflow')"
    async for found in temporal_client.list_workflows(query):
        history = await temporal_client.get_workflow_handle(found.id, run_id=found.run_id).fetch_history()
        name = f"{found.id.replace(':', '-')}-{found.run_id}.json.gz"
        (Path(target) / name).write_bytes(gzip.compress(history.to_json().encode()))
