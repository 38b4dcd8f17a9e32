"""The real `durabot up` as a subprocess, on free ports and a fresh var dir, for end-to-end tests."""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

SIM_SPEED = "3000"
ACCOUNT_CHANNELS = ["TradeExecuted", "PositionUpdate", "BotStatusUpdate"]
STACK_PORTS = ("TEMPORAL_PORT", "TEMPORAL_UI_PORT", "MONGO_PORT", "GATEWAY_PORT", "MCP_PORT", "SIM_EXCHANGE_PORT",
               "SIM_XAI_PORT", "SIM_TELEGRAM_PORT")


class Up:
    """`durabot up` as a subprocess; its output goes to a file named in every failure."""

    def __init__(self, env: dict[str, str], cwd: Path) -> None:
        self.output = cwd / "up.out"
        self.proc = subprocess.Popen([sys.executable, "-m", "durabot", "up"], env=env, cwd=cwd,
                                     stdout=self.output.open("ab"), stderr=subprocess.STDOUT)

    def log(self) -> str:
        return self.output.read_text(errors="replace")[-4000:]

    async def wait_healthy(self, http: httpx.AsyncClient, within_s: float = 150) -> None:
        deadline = time.monotonic() + within_s
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, f"up exited early:\n{self.log()}"
            with contextlib.suppress(httpx.HTTPError):
                if (await http.get("/api/health")).status_code == 200 and b"Durabot is up" in \
                        self.output.read_bytes():
                    return
            await asyncio.sleep(0.5)
        raise AssertionError(f"up not healthy in {within_s}s:\n{self.log()}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=90)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def child_pids(parent: int, command: str) -> list[int]:
    """The live children of ``parent`` running ``durabot {command}``, oldest first."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if ppid == parent and argv[-3:-1] == [b"durabot", command.encode()]:
            found.append(int(entry.name))
    return sorted(found)


async def poll(check: Callable[[], Any], within_s: float, what: str, up: Up, interval: float = 1.0) -> Any:
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        assert up.proc.poll() is None, f"up exited:\n{up.log()}"
        found = await check()
        if found:
            return found
        await asyncio.sleep(interval)
    raise AssertionError(f"timed out after {within_s}s waiting for {what}\n{up.log()}")


@pytest.fixture
def stack_env(tmp_path, run_env, get_free_port) -> tuple[dict[str, str], dict[str, int]]:
    ports = {name: get_free_port() for name in STACK_PORTS}
    sim = f"127.0.0.1:{ports['SIM_EXCHANGE_PORT']}"
    env = run_env(DURABOT_VAR_DIR=str(tmp_path / "var"), **{f"DURABOT_{k}": str(v) for k, v in ports.items()},
                  DURABOT_EXCHANGE_REST_URL=f"http://{sim}", DURABOT_EXCHANGE_FUTURES_URL=f"http://{sim}",
                  DURABOT_EXCHANGE_WS_URL=f"ws://{sim}", DURABOT_SIM_SPEED=SIM_SPEED, DURABOT_LOG_LEVEL="WARNING",
                  DURABOT_XAI_BASE_URL=f"http://127.0.0.1:{ports['SIM_XAI_PORT']}/v1",
                  DURABOT_TELEGRAM_API_URL=f"http://127.0.0.1:{ports['SIM_TELEGRAM_PORT']}")
    return env, ports


class AccountFeed:
    """One authenticated /ws connection: every frame it receives, answering the server's Pings."""

    def __init__(self, sock: Any) -> None:
        self.sock = sock
        self.frames: list[dict[str, Any]] = []
        self.arrived = asyncio.Condition()

    async def read(self) -> None:
        async for raw in self.sock:
            frame = json.loads(raw)
            if frame["type"] == "Ping":
                await self.sock.send(json.dumps({"type": "Pong"}))
            async with self.arrived:
                self.frames.append(frame)
                self.arrived.notify_all()

    async def wait_for(self, predicate: Callable[[dict[str, Any]], bool], within_s: float = 30) -> dict[str, Any]:
        async with asyncio.timeout(within_s), self.arrived:
            while True:
                for frame in self.frames:
                    if predicate(frame):
                        return frame
                await self.arrived.wait()

    def events(self, kind: str) -> list[dict[str, Any]]:
        return [f for f in self.frames if f["type"] == kind]

    def account_events(self) -> list[dict[str, Any]]:
        # The connection keeps the public market channels too; those never stop.
        return [f for f in self.frames if f["type"] in ACCOUNT_CHANNELS]


async def sign_up(http: httpx.AsyncClient) -> tuple[str, str]:
    email, password = f"e2e-{uuid.uuid4().hex[:8]}@example.com", "a long e2e passphrase"
    registered = await http.post("/api/auth/register", json={"email": email, "password": password})
    assert registered.status_code == 201, registered.text
    login = await http.post("/api/auth/login", json={"email": email, "password": password})
    assert login.status_code == 200, login.text
    return registered.json()["user_id"], login.json()["access_token"]
