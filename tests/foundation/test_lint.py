"""Lint everything with ruff; type-check the workflow code, contracts, the application layer and the pure
domain with mypy."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent

TYPED = [
    "workflows", "core", "services", "gateway/errors.py", "gateway/deps.py",
    # The MCP adapter's frame: who an agent is and what it may reach.
    "gateway/mcp/registry.py", "gateway/mcp/server.py",
    # The pure domain that runs inside workflows.
    "trading/candle.py", "trading/signals.py", "trading/models.py", "trading/engine.py", "trading/ledger.py",
    "trading/entry_planning.py", "trading/order_book.py", "trading/fast_paths.py", "trading/engine_types.py",
    "trading/errors.py", "trading/broker.py", "trading/risk.py", "trading/analysis_settings.py",
    "trading/ai_analysis.py", "trading/ai_modes.py", "trading/price_model.py", "trading/reconciliation.py",
    # The activities behind Grok: what reaches a paid API and a user's budget.
    "activities/grok.py", "activities/ai_breaker.py", "activities/ai_spend.py", "activities/ai_replay.py",
    # The activities that send real orders.
    "activities/real_orders.py", "activities/binance/futures_orders.py", "activities/binance/spot_orders.py",
    "activities/binance/signed.py",
    "activities/binance/shared_gate.py", "activities/binance/futures_account.py", "activities/real_session.py",
]


def test_ruff_is_clean():
    done = subprocess.run([str(BIN / "ruff"), "check", "--no-cache", "."], cwd=REPO, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_mypy_is_clean_on_workflows_contracts_and_domain():
    done = subprocess.run([str(BIN / "mypy"), "--no-incremental", *TYPED], cwd=REPO, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
