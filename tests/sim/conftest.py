"""Fixtures for the sim exchange and Binance client tests: in-process sims on free ports."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx

from sim.exchange import SimExchangeServer

REPO = Path(__file__).resolve().parents[2]
DATA = REPO / "data"
BTCUSDT_FILE = DATA / "candles" / "BTCUSDT-5m-2023-01.csv.gz"

# The ``start_sim`` fixture lives in tests/conftest.py, shared with the feed tests.
StartSim = Callable[..., Awaitable[SimExchangeServer]]


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
