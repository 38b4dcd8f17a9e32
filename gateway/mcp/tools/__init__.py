"""The MCP tools, one module per category of the seed. ``load()`` imports them all, which registers them."""

from __future__ import annotations

import importlib

MODULES = ("health", "market", "paper", "paper_reads", "real", "tuning", "ai", "backtests", "tasks", "monitoring",
           "settings", "account")


def load() -> None:
    for name in MODULES:
        importlib.import_module(f"gateway.mcp.tools.{name}")
