"""A restarted sim continues the same virtual clock from its persisted position."""

from __future__ import annotations

import asyncio
import json

import websockets

from sim.exchange.state import STATE_FILE_NAME

from .conftest import StartSim, sim_state


async def _closed_open_times(ws_url: str, count: int) -> list[int]:
    seen: list[int] = []
    async with websockets.connect(f"{ws_url}/ws/btcusdt@kline_5m") as connection:
        while len(seen) < count:
            message = json.loads(await asyncio.wait_for(connection.recv(), 5))
            if message["k"]["x"]:
                seen.append(message["k"]["t"])
    return seen


async def test_restart_continues_from_the_persisted_position(start_sim: StartSim, tmp_path) -> None:
    state_dir = tmp_path / "persisted"
    first = await start_sim(state_dir=state_dir)
    before = await sim_state(first)
    seen_first = await _closed_open_times(first.ws_url, 40)
    await first.stop()
    persisted = json.loads((state_dir / STATE_FILE_NAME).read_text())
    assert persisted["origin_ms"] == before["origin_ms"]
    assert persisted["virtual_now_ms"] >= seen_first[-1] + 300_000  # at least the last close we saw

    second = await start_sim(state_dir=state_dir)
    after = await sim_state(second)
    assert after["origin_ms"] == before["origin_ms"]
    assert after["virtual_now_ms"] == persisted["virtual_now_ms"]
    seen_second = await _closed_open_times(second.ws_url, 5)
    # The market picks up after the last candle that closed before the stop: no rewind, no skip.
    last_closed_before_stop = after["series"][0]["last_closed_open_time"]
    assert seen_second[0] == last_closed_before_stop + 300_000
    assert seen_second[0] > seen_first[-1]
    assert seen_second == [seen_second[0] + i * 300_000 for i in range(5)]


async def test_a_fresh_state_dir_starts_at_the_configured_offset(start_sim: StartSim, tmp_path) -> None:
    sim = await start_sim(state_dir=tmp_path / "fresh", start_offset_candles=123)
    state = await sim_state(sim)
    assert state["origin_ms"] % 86_400_000 == 0
    assert state["series"][0]["closed_candles"] == 123
