"""The sim's ground truth: a log of the API requests (never a key, never message text) and the token
usage of every 200 answer, which tests compare with the product's own accounting. Persisted as one JSON
file in the state dir (written atomically at shutdown, read at start) so a restart keeps both."""

from __future__ import annotations

import json
import logging
import os
from collections import deque
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

STATE_FILE = "ledger.json"
USAGE_FIELDS = ("requests", "prompt_tokens", "completion_tokens", "total_tokens")


def _zero() -> dict[str, int]:
    return dict.fromkeys(USAGE_FIELDS, 0)


class Ledger:
    def __init__(self, max_entries: int) -> None:
        self.entries: deque[dict[str, Any]] = deque(maxlen=max_entries)
        self.seq = 0
        self.usage = _zero()
        self.usage_by_model: dict[str, dict[str, int]] = {}

    def record(self, *, wall_ms: int, path: str, model: str | None, status: int | None, fault: str | None = None,
               usage: dict[str, int] | None = None, finish_reason: str | None = None,
               tool_calls: list[str] | None = None, response_format: str | None = None,
               error_code: str | None = None) -> None:
        self.seq += 1
        counted = usage or {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}
        self.entries.append({
            "seq": self.seq, "wall_ms": wall_ms, "path": path, "model": model, "status": status, "fault": fault,
            **{name: counted[name] for name in USAGE_FIELDS[1:]},
            "finish_reason": finish_reason, "tool_calls": tool_calls or [], "response_format": response_format,
            "error_code": error_code,
        })
        if status == 200 and usage is not None and model is not None:
            for totals in (self.usage, self.usage_by_model.setdefault(model, _zero())):
                totals["requests"] += 1
                for name in USAGE_FIELDS[1:]:
                    totals[name] += usage[name]

    def usage_report(self) -> dict[str, Any]:
        return {**self.usage, "by_model": self.usage_by_model}

    def clear_usage(self) -> None:
        self.usage, self.usage_by_model = _zero(), {}

    def save(self, state_dir: Path) -> None:
        state_dir.mkdir(parents=True, exist_ok=True)
        path = state_dir / STATE_FILE
        temporary = path.with_suffix(".tmp")
        temporary.write_text(json.dumps({"seq": self.seq, "requests": list(self.entries), "usage": self.usage,
                                         "usage_by_model": self.usage_by_model}))
        os.replace(temporary, path)

    def load(self, state_dir: Path) -> None:
        path = state_dir / STATE_FILE
        if not path.is_file():
            return
        try:
            state = json.loads(path.read_text())
            entries, seq = list(state["requests"]), int(state["seq"])
            usage = {name: int(state["usage"][name]) for name in USAGE_FIELDS}
            by_model = {str(m): {name: int(t[name]) for name in USAGE_FIELDS}
                        for m, t in state["usage_by_model"].items()}
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            # A damaged file must not keep the sim down: start empty, keep the file for a look.
            log.warning("sim xai: ignoring unreadable %s (%s)", path, exc)
            return
        self.entries.extend(entries)
        self.seq, self.usage, self.usage_by_model = seq, usage, by_model
