"""The sim's persisted clock: origin midnight and virtual position, written atomically."""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from trading.candle import DAY_MS

STATE_FILE_NAME = "clock.json"


@dataclass(frozen=True)
class ClockState:
    origin_ms: int
    virtual_now_ms: int | None  # None until the sim has chosen its start position


def load_or_create_state(state_dir: Path, wall_now_ms: int) -> ClockState:
    """Read the persisted clock, or start a new one whose origin is today's UTC midnight."""
    path = state_dir / STATE_FILE_NAME
    if path.exists():
        try:
            raw = json.loads(path.read_text())
            state = ClockState(
                int(raw["origin_ms"]),
                None if raw.get("virtual_now_ms") is None else int(raw["virtual_now_ms"]),
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"{path}: unreadable sim clock state ({exc}); delete it to start afresh") from None
        if state.origin_ms % DAY_MS:
            raise ValueError(f"{path}: origin {state.origin_ms} is not a UTC midnight")
        return state
    state = ClockState(wall_now_ms - wall_now_ms % DAY_MS, None)
    save_state(state_dir, state)
    return state


def save_state(state_dir: Path, state: ClockState) -> None:
    """Write via a temporary file and rename, so a crash never leaves a half-written state."""
    state_dir.mkdir(parents=True, exist_ok=True)
    payload = json.dumps({"origin_ms": state.origin_ms, "virtual_now_ms": state.virtual_now_ms})
    fd, tmp = tempfile.mkstemp(dir=state_dir, prefix=".clock-", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(payload)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, state_dir / STATE_FILE_NAME)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
