"""The real `durabot up` as a subprocess: health, Temporal UI, clean stops, no orphans, data kept."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import websockets
from pymongo import MongoClient
from temporalio.client import Client

from core.datafiles import load_candles
from trading.candle import DAY_MS

from ..conftest import REPO, alive, descendants

BTCUSDT_FILE = Path(__file__).resolve().parents[2] / "data" / "candles" / "BTCUSDT-5m-2023-01.csv.gz"


def _get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=5) as reply:
            return reply.status, reply.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()
    except OSError:
        return 0, b""


class Up:
    def __init__(self, env: dict[str, str], cwd: Path) -> None:
        self.env, self.cwd = env, cwd
        self.output = cwd / "up.out"
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        out = open(self.output, "ab")  # noqa: SIM115
        self.proc = subprocess.Popen([sys.executable, "-m", "durabot", "up"], env=self.env, cwd=self.cwd,
                                     stdout=out, stderr=subprocess.STDOUT)

    def wait_healthy(self, gateway: str, timeout: float = 150) -> dict:
        assert self.proc is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, f"up exited early:\n{self.output.read_text()}"
            status, body = _get(f"{gateway}/api/health")
            if status == 200 and b"Durabot is up" in self.output.read_bytes():
                return json.loads(body)
            time.sleep(0.5)
        raise AssertionError(f"up not healthy in {timeout}s:\n{self.output.read_text()}")


@pytest.fixture
def up_env(tmp_path, run_env, get_free_port):
    ports = {name: get_free_port() for name in
             ("TEMPORAL_PORT", "TEMPORAL_UI_PORT", "MONGO_PORT", "GATEWAY_PORT", "MCP_PORT", "SIM_EXCHANGE_PORT",
              "SIM_XAI_PORT", "SIM_TELEGRAM_PORT")}
    sim = f"127.0.0.1:{ports['SIM_EXCHANGE_PORT']}"
    env = run_env(DURABOT_VAR_DIR=str(tmp_path / "var"), **{f"DURABOT_{k}": str(v) for k, v in ports.items()},
                  DURABOT_EXCHANGE_REST_URL=f"http://{sim}", DURABOT_EXCHANGE_FUTURES_URL=f"http://{sim}",
                  DURABOT_EXCHANGE_WS_URL=f"ws://{sim}",
                  DURABOT_XAI_BASE_URL=f"http://127.0.0.1:{ports['SIM_XAI_PORT']}/v1",
                  DURABOT_TELEGRAM_API_URL=f"http://127.0.0.1:{ports['SIM_TELEGRAM_PORT']}")
    return env, ports


def check_live_market(gateway: str) -> None:
    """The offline market: real BTCUSDT prices (shifted by whole days), MarketData on /ws, clear errors."""
    deadline = time.monotonic() + 60
    candles: list[dict] = []
    while time.monotonic() < deadline and len(candles) < 100:
        status, body = _get(f"{gateway}/api/candles/BTCUSDT/5m?limit=200")
        candles = json.loads(body)["candles"] if status == 200 else []
        time.sleep(0.5)
    assert len(candles) >= 100, "no stored BTCUSDT candles"
    by_prices = {(c.open, c.high, c.low, c.close, c.volume): c.open_time for c in load_candles(BTCUSDT_FILE)}
    shifts = set()
    for c in candles:
        key = (c["open"], c["high"], c["low"], c["close"], c["volume"])
        assert key in by_prices, f"candle {c} is not a candle of the real file"
        shifts.add(c["open_time"] - by_prices[key])
    assert len(shifts) == 1 and next(iter(shifts)) % DAY_MS == 0, shifts

    assert _get(f"{gateway}/api/candles/NOPE/5m")[0] == 404
    status, body = _get(f"{gateway}/api/candles/BTCUSDT/7m")
    assert status == 422 and b"timeframe" in body

    async def market_data_on_ws() -> dict:
        async with websockets.connect(gateway.replace("http", "ws") + "/ws") as ws:
            assert json.loads(await ws.recv())["type"] == "Connected"
            while True:
                message = json.loads(await asyncio.wait_for(ws.recv(), timeout=30))
                if message["type"] == "MarketData":
                    return message

    message = asyncio.run(market_data_on_ws())
    assert message["data"]["price"] > 0 and message["data"]["symbol"]


def test_up_serves_stops_cleanly_and_keeps_its_data(tmp_path, up_env):
    env, ports = up_env
    gateway = f"http://127.0.0.1:{ports['GATEWAY_PORT']}"
    up = Up(env, tmp_path)
    up.start()
    health = up.wait_healthy(gateway)
    assert health["dependencies"]["temporal"]["status"] == "ok"
    assert health["dependencies"]["mongodb"]["status"] == "ok"
    assert health["dependencies"]["workers"]["status"] == "ok"
    status, ui = _get(f"http://127.0.0.1:{ports['TEMPORAL_UI_PORT']}/")
    assert status == 200 and b"<html" in ui.lower()
    status, deep = _get(f"{gateway}/api/health?deep=true")
    assert status == 200 and json.loads(deep)["dependencies"]["workflow_probe"]["status"] == "ok"
    check_live_market(gateway)
    printed = up.output.read_text()
    assert f"http://127.0.0.1:{ports['TEMPORAL_UI_PORT']}" in printed and f"{gateway}/docs" in printed
    if (REPO / "webapp" / "dist" / "index.html").is_file():  # the dashboard tests build it
        assert re.search(rf"Dashboard +{re.escape(gateway)}/\n", printed), printed
        status, page = _get(f"{gateway}/")
        assert status == 200 and b'<div id="root">' in page
    else:
        assert re.search(r"Dashboard +not built", printed), printed

    mongo_uri = f"mongodb://127.0.0.1:{ports['MONGO_PORT']}/?retryWrites=false&directConnection=true"
    with MongoClient(mongo_uri) as mongo:
        mongo.durabot.system_config.insert_one({"key": "smoke", "value": 42})
    children = descendants(up.proc.pid)
    assert len(children) >= 5, children

    up.proc.send_signal(signal.SIGINT)
    assert up.proc.wait(timeout=90) == 0, up.output.read_text()
    survivors = {pid for pid in children if alive(pid)}
    assert not survivors, f"children outlived up: {survivors}"

    # A second `up` on the same var/ finds the workflow history and the documents of the first.
    up.start()
    up.wait_healthy(gateway)
    with MongoClient(mongo_uri) as mongo:
        assert mongo.durabot.system_config.find_one({"key": "smoke"})["value"] == 42

    async def probes_recorded() -> int:
        client = await Client.connect(f"127.0.0.1:{ports['TEMPORAL_PORT']}")
        return (await client.count_workflows("WorkflowType = 'SystemProbeWorkflow'")).count

    assert asyncio.run(probes_recorded()) >= 1

    # SIGKILL gives `up` no chance to clean up: the kernel must take its children down.
    children = descendants(up.proc.pid)
    assert len(children) >= 5
    os.kill(up.proc.pid, signal.SIGKILL)
    up.proc.wait(timeout=10)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and any(alive(pid) for pid in children):
        time.sleep(0.2)
    assert not {pid for pid in children if alive(pid)}, "orphans survived SIGKILL of up"

