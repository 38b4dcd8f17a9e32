"""Fixtures for the sim exchange and Binance client tests: in-process sims on free ports."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from sim.exchange import SimExchangeConfig, SimExchangeServer

REPO = Path(__file__).resolve().parents[2]
DATA = REPO / "data"
BTCUSDT_FILE = DATA / "candles" / "BTCUSDT-5m-2023-01.csv.gz"

StartSim = Callable[..., Awaitable[SimExchangeServer]]


@pytest.fixture
async def start_sim(tmp_path: Path) -> AsyncIterator[StartSim]:
    """Start sims on free ports (state in this test's tmp dir unless given); all stop at teardown."""
    running: list[SimExchangeServer] = []

    async def start(**overrides: Any) -> SimExchangeServer:
        settings: dict[str, Any] = {
            "port": 0,
            "state_dir": tmp_path / "sim-state",
            "speed": "max",
            "symbols": ("BTCUSDT",),
            "tiling": False,
            "max_candles_per_series": 2000,
            "start_offset_candles": 500,
        }
        settings.update(overrides)
        server = SimExchangeServer(SimExchangeConfig(**settings))
        await server.start()
        running.append(server)
        return server

    yield start
    for server in reversed(running):
        await server.stop()


async def sim_state(sim: SimExchangeServer) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=sim.rest_url) as client:
        return (await client.get("/sim/state")).json()


async def set_faults(sim: SimExchangeServer, **faults: Any) -> None:
    async with httpx.AsyncClient(base_url=sim.rest_url) as client:
        reply = await client.post("/sim/faults", json=faults)
        assert reply.status_code == 200, reply.text


async def wait_for(predicate: Callable[[], Awaitable[bool]], within_s: float, what: str) -> None:
    deadline = asyncio.get_running_loop().time() + within_s
    while not await predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)
