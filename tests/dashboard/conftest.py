"""Fixtures of the dashboard tests: the webapp built from source, a sim exchange, a sim xAI (Grok), a
trading worker, an ai worker, a real-orders worker and a gateway on a real socket (real Temporal +
SecantusDB), and Debian's Chromium driven by Playwright; all started once per run and shared by the tests
(each signs up a user of its own)."""

from __future__ import annotations

import shutil
import subprocess
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr
from temporalio.client import Client
from temporalio.worker import Worker

from activities.binance.key_vault import new_master_key_text
from core.contracts import TASK_QUEUE_AI, TASK_QUEUE_REAL, TASK_QUEUE_TRADING

from ..conftest import free_port, running_gateway, worker_running

REPO = Path(__file__).resolve().parents[2]
WEBAPP = REPO / "webapp"
ARTIFACTS = REPO / "test-artifacts" / "dashboard"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def _run(cmd: list[str], timeout: float) -> None:
    done = subprocess.run(cmd, cwd=WEBAPP, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"{' '.join(cmd)} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"


@pytest.fixture(scope="session")
def webapp_dist() -> Path:
    """Builds the dashboard from the sources under test (installs node_modules when missing)."""
    npm = shutil.which("npm")
    if npm is None:
        pytest.skip("npm is not installed: the dashboard cannot be built (install Node 20+)")
    if not (WEBAPP / "node_modules").is_dir():
        _run([npm, "ci", "--no-audit", "--no-fund"], timeout=600)
    _run([npm, "run", "build"], timeout=300)
    assert (WEBAPP / "dist" / "index.html").is_file()
    return WEBAPP / "dist"


def _ensure_chromium() -> None:
    if CHROMIUM.exists():
        return
    apt = shutil.which("apt-get")
    if apt:
        subprocess.run([apt, "install", "-y", "chromium"], capture_output=True, timeout=900)
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing and `apt-get install -y chromium` could not install it")


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS


# One stack and one Chromium for every dashboard test of a run: each test registers a user of its own
# (a session is per user) and opens its own browser context, so they share nothing but the processes.
@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Any]:
    _ensure_chromium()
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        instance = await pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield instance
        finally:
            await instance.close()


@pytest.fixture(scope="session")
async def sim(tmp_path_factory) -> AsyncIterator[Any]:
    """The sim exchange at ×60 (the start_sim defaults otherwise), for the banner's live clock and the
    symbol listings sessions are checked against."""
    from sim.exchange import SimExchangeConfig, SimExchangeServer

    server = SimExchangeServer(SimExchangeConfig(
        port=0, state_dir=tmp_path_factory.mktemp("dash-sim"), speed="60", symbols=LISTED, tiling=False,
        max_candles_per_series=2000, start_offset_candles=500))
    await server.start()
    yield server
    await server.stop()


# Sessions trade only what the exchange lists: BTCUSDT (USDⓈ-M) and, for spot accounts in BTC, the
# BTC-quoted pairs the trading-desk tests use (each test its own, see test_trading_desk.py).
LISTED = ("BTCUSDT", "LTCBTC", "ADABTC", "DASHBTC", "TRXBTC")
# The sessions follow the tests' own candle deliveries (feed "test": stored, published and signalled
# by tests/dashboard/helpers.py), not the sim's replay: a manual fill takes that feed's newest price,
# as it would take the live feed's. The worker keeps its default feed (the sim), whose exchange prices
# are for sessions of that feed only.
TEST_FEED = "test"


@pytest.fixture(scope="session")
async def sim_xai(tmp_path_factory) -> AsyncIterator[Any]:
    """The sim xAI API (Grok) the AI page's analyses and chat reach; tests inject its faults over HTTP."""
    from sim.xai import SimXaiConfig, SimXaiServer

    server = SimXaiServer(SimXaiConfig(port=0, state_dir=tmp_path_factory.mktemp("dash-sim-xai")))
    await server.start()
    yield server
    await server.stop()


@pytest.fixture(scope="session")
def dash_settings(tmp_path_factory, temporal_server, mongo_server, jwt_private_pem, sim, sim_xai):
    from core.settings import Settings

    # The exchange is the sim started here, so the banner shows its real clock.
    return Settings(
        _env_file=None, var_dir=tmp_path_factory.mktemp("dash-var"), temporal_address=temporal_server.address,
        mongo_uri=mongo_server.uri, mongo_database=f"dash_{uuid.uuid4().hex[:10]}", gateway_port=free_port(),
        mcp_port=free_port(),
        connect_timeout_s=10, jwt_private_key=SecretStr(jwt_private_pem), master_key=SecretStr(new_master_key_text()),
        login_attempts_per_ip=1000, task_queue_prefix=f"dash-{uuid.uuid4().hex[:10]}-", data_dir=REPO / "data",
        sim_exchange_port=sim.port, exchange_rest_url=sim.rest_url, exchange_futures_url=sim.rest_url,
        exchange_ws_url=sim.ws_url, exchange_futures_ws_url=sim.ws_url, feed_source=TEST_FEED,
        # The fixture Temporal runs headless; the link only has to name the session in a UI.
        temporal_ui_url="http://127.0.0.1:8233",
        # Grok is the sim's: two failed calls open the breaker, which stays open for the rest of a test;
        # retries pause briefly, so an outage turns into the fallback in well under a second.
        xai_base_url=sim_xai.base_url, xai_api_key=SecretStr("some-test-key"), ai_breaker_failures=2,
        ai_breaker_cooldown_s=60, ai_retry_initial_s=0.1,
        # Real orders: a confirmation deadline a test can wait out (with room for a step-up on a busy CI
        # machine), and exchange waits of seconds.
        order_confirm_expiry_s=10.0, order_submit_timeout_s=3.0, order_request_timeout_s=2.0,
        order_protection_window_s=3.0, order_poll_interval_s=0.5,
    )


def stack_worker(dash_settings, temporal_client: Client, mongo_client, identity: str, role: str):
    """The product's worker of one task-queue role on this stack; workers keep their default feed (the sim)."""
    worker_settings = dash_settings.model_copy(update={"feed_source": None})
    return worker_running(temporal_client, worker_settings, mongo_client[dash_settings.mongo_database], identity, role)


@pytest.fixture(scope="session")
async def trading_worker(dash_settings, temporal_client: Client, mongo_client) -> AsyncIterator[Worker]:
    async with stack_worker(dash_settings, temporal_client, mongo_client, "dashboard-test",
                            TASK_QUEUE_TRADING) as worker:
        yield worker


@pytest.fixture(scope="session")
async def ai_worker(dash_settings, temporal_client: Client, mongo_client) -> AsyncIterator[Worker]:
    """Grok's analyses and chat rounds (the ``ai`` queue); /api/ai/analyze needs the trading worker too."""
    async with stack_worker(dash_settings, temporal_client, mongo_client, "dashboard-test-ai", TASK_QUEUE_AI) as worker:
        yield worker


@pytest.fixture(scope="session")
async def real_worker(dash_settings, temporal_client: Client, mongo_client) -> AsyncIterator[Worker]:
    """Real orders (the ``real`` queue): their workflows send to the sim exchange, which plays Binance."""
    async with stack_worker(dash_settings, temporal_client, mongo_client, "dashboard-test-real",
                            TASK_QUEUE_REAL) as worker:
        yield worker


@pytest.fixture(scope="session")
async def gateway(webapp_dist, dash_settings, trading_worker, ai_worker, real_worker) -> AsyncIterator[Any]:
    async with running_gateway(dash_settings) as gw:
        yield gw
