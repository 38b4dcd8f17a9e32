"""Engine state: compact, plain JSON, and dump/restore mid-run changes nothing; sandbox-safe imports."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from core.datafiles import load_candles, load_series
from trading import Engine
from trading.models import SymbolSpec
from trading.settings import EngineSettings, FundingMode
from trading.simple_signals import sma_cross

REPO = Path(__file__).resolve().parents[2]


def _settings() -> EngineSettings:
    return EngineSettings(
        leverage=20,
        slippage_bps=2.0,
        trailing_stop_pct=1.5,
        partial_fill_min_ratio=0.6,
        seed=42,
        funding_mode=FundingMode.SERIES,
        symbols=(SymbolSpec("XRPUSDT", tick_size=0.0001, step_size=0.1, min_notional=5.0),),
    )


def _run(checkpoints: set[int]) -> tuple[list[str], dict]:
    candles = load_candles(REPO / "data/futures/XRPUSDT-5m-futures.csv.gz")
    funding = {"XRPUSDT": load_series(REPO / "data/futures/XRPUSDT-8h-funding_rate.csv.gz")}
    signals = sma_cross(candles, 5, 20)
    engine = Engine(_settings(), funding)
    out: list[str] = []
    for i, (candle, signal) in enumerate(zip(candles, signals, strict=True)):
        if i in checkpoints:
            text = json.dumps(engine.to_state(), allow_nan=False)
            engine = Engine.from_state(json.loads(text), funding)
        if i % 500 == 7 and not engine.orders:
            position = engine.positions.get("XRPUSDT")
            side = position.side if position is not None else "long"
            engine.place_order("XRPUSDT", side, "limit", 100.0, limit_price=candle.close * 0.99, time=engine.now)
        result = engine.step(candle, signal)
        out.append(json.dumps([f.to_dict() for f in result.fills] + [t.to_dict() for t in result.trades]))
    return out, engine.to_state()


def test_dump_restore_continue_equals_straight_through() -> None:
    straight, final = _run(set())
    restored, final_restored = _run({3, 250, 251, 999, 1500, 1998})
    assert any(line != "[]" for line in straight)
    assert restored == straight
    assert json.dumps(final_restored) == json.dumps(final)


def test_state_is_compact_and_plain_json() -> None:
    _, state = _run(set())
    text = json.dumps(state, allow_nan=False)
    assert len(text) < 20_000  # bounded windows, no trade history
    assert "trades" not in state
    assert json.loads(text) == state
    with pytest.raises(ValueError, match="state version"):
        Engine.from_state({**state, "version": 99})


def test_settings_validation_names_the_field() -> None:
    with pytest.raises(ValueError, match="Leverage must be a whole number from 1 to 125x, got 126"):
        EngineSettings(leverage=126)
    with pytest.raises(ValueError, match="Leverage must be 1 on a spot account, got 2"):
        EngineSettings(market="spot", leverage=2)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="Stop loss is required"):
        EngineSettings(stop_loss_pct=None)
    with pytest.raises(ValueError, match="Taker fee must be a number"):
        EngineSettings(taker_fee=float("nan"))
    with pytest.raises(ValueError, match="Risk checks on has unknown checks \\['vibes'\\]"):
        EngineSettings().with_risk(enabled=("vibes",))
    with pytest.raises(ValueError, match="Starting balance must be a number above 0 and at most 1e\\+09 account"):
        EngineSettings(starting_balance=1e308)
    with pytest.raises(ValueError, match="unknown settings \\['levrage'\\]"):
        EngineSettings.from_dict({"levrage": 3})
    settings = replace(_settings(), take_profit_pct=None)
    assert EngineSettings.from_dict(json.loads(json.dumps(settings.to_dict()))) == settings


SANDBOX_PROBE = """
import importlib.abc, sys

class Blocker(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("numpy", "pandas", "talib", "pandas_ta"):
            raise ImportError(f"workflow sandbox: {name} is not allowed")
        return None

sys.meta_path.insert(0, Blocker())
import trading, trading.engine, trading.broker, trading.risk, trading.models, trading.margin
import trading.funding, trading.settings, trading.metrics, trading.simple_signals, trading.analysis_settings
assert trading.analysis_settings.AnalysisSettings.from_dict({"min_agree": 2}).min_agree == 2
from trading import Engine, EngineSettings
from trading.candle import Candle
from trading.signals import Direction, Signal
engine = Engine(EngineSettings())
c = Candle(0, 100.0, 101.0, 99.0, 100.0, 1.0, 3_600_000, "BTCUSDT")
assert not engine.step(c, Signal("BTCUSDT", 0, Direction.LONG, 1.0, "probe")).fills
result = engine.step(Candle(3_600_000, 100.5, 101.0, 99.0, 100.0, 1.0, 3_600_000, "BTCUSDT"))
assert result.fills and result.fills[0].price == 100.5, result  # at the next open
assert not any(m.split(".")[0] in ("numpy", "pandas") for m in sys.modules)
print("ok")
"""


def test_engine_modules_import_without_numpy_or_pandas() -> None:
    done = subprocess.run([sys.executable, "-c", SANDBOX_PROBE], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"
