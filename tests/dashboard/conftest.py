"""Fixtures of the dashboard tests: the webapp built from source, a sim exchange, a trading worker and a
gateway on a real socket (real Temporal + SecantusDB), and Debian's Chromium driven by Playwright."""

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

from ..conftest import trading_worker_running

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


@pytest.fixture
async def browser() -> AsyncIterator[Any]:
    _ensure_chromium()
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        instance = await pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield instance
        finally:
            await instance.close()


@pytest.fixture
async def sim(start_sim) -> Any:
    return await start_sim(speed="60")


@pytest.fixture
def dash_settings(settings, jwt_private_pem, sim):
    # The exchange is the sim started here, so the banner shows its real clock.
    return settings.model_copy(update={
        "jwt_private_key": SecretStr(jwt_private_pem), "master_key": SecretStr(new_master_key_text()),
        "login_attempts_per_ip": 1000, "task_queue_prefix": f"dash-{uuid.uuid4().hex[:10]}-",
        "data_dir": REPO / "data", "sim_exchange_port": sim.port, "exchange_rest_url": sim.rest_url,
        "exchange_futures_url": sim.rest_url, "exchange_ws_url": sim.ws_url,
        # The fixture Temporal runs headless; the link only has to name the session in a UI.
        "temporal_ui_url": "http://127.0.0.1:8233",
    })


@pytest.fixture
async def trading_worker(dash_settings, temporal_client: Client, mongo_client) -> AsyncIterator[Worker]:
    async with trading_worker_running(temporal_client, dash_settings, mongo_client[dash_settings.mongo_database],
                                      "dashboard-test") as worker:
        yield worker


@pytest.fixture
async def gateway(webapp_dist, dash_settings, run_gateway, trading_worker) -> AsyncIterator[Any]:
    async with run_gateway(dash_settings) as gw:
        yield gw
