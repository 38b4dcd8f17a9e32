"""The analysis entry points: warm-up gate, anchor property, determinism, settings."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from core.datafiles import load_candles
from trading import indicators
from trading.analysis import (
    AnalysisSettings,
    CandleArrays,
    analyze_latest,
    compute_indicator_frame,
    compute_signal_series,
    compute_signals,
    strategy_warmup,
    warmup_candles,
)
from trading.candle import BadCandleError, Candle
from trading.signals import Direction, Signal
from trading.strategies import (
    LONG,
    SHORT,
    STRATEGY_NAMES,
    MacdParams,
    RsiParams,
    StochasticParams,
)

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "data" / "candles"
# Pinned on purpose: if this changes, stored analyses keyed by the old hash no longer match.
# Change it only together with a deliberate settings format change (or ANALYSIS_VERSION bump).
DEFAULT_SETTINGS_HASH = "8b4ead9f4818945595eea93190d9072eddeffc1149b939081a2533e62a08c0bb"


@pytest.fixture(scope="module")
def candles() -> list[Candle]:
    return load_candles(DATA / "BTCUSDT-5m-2023-01.csv.gz")[:6000]


@pytest.fixture(scope="module")
def default_series(candles: list[Candle]):
    return compute_signal_series(candles, AnalysisSettings())


def test_warmup_gate_on_real_data(candles: list[Candle]) -> None:
    settings = AnalysisSettings()
    warmup = warmup_candles(settings)
    assert warmup == 115  # MACD(12,26,9): 33 to the first histogram, +1 for the cross, +81 to settle
    signals = compute_signals(candles[:1000], settings)
    assert len(signals) == 1000
    assert all(s is None for s in signals[:warmup])
    assert all(isinstance(s, Signal) for s in signals[warmup:])
    assert all("not available" not in v.reason for s in signals[warmup:] for v in s.verdicts)


def test_every_signal_after_warmup_is_well_formed(candles: list[Candle], default_series) -> None:
    directions = {LONG: 0, SHORT: 0}
    for i in np.flatnonzero(default_series.direction != 0):
        signal = default_series.signal_at(int(i))
        assert signal is not None
        assert signal.symbol == "BTCUSDT" and signal.open_time == candles[i].open_time
        assert [v.strategy for v in signal.verdicts] == list(STRATEGY_NAMES)
        agreeing = [v for v in signal.verdicts if v.direction == signal.direction]
        assert len(agreeing) >= 3
        assert signal.confidence == pytest.approx(sum(v.confidence for v in agreeing) / 5)
        assert signal.reason.startswith(f"{signal.direction.value}: {len(agreeing)} of 5 agree")
        directions[int(default_series.direction[i])] += 1
    assert directions[LONG] > 0 and directions[SHORT] > 0  # real data exercises both sides


@pytest.mark.parametrize(
    ("enabled", "settings", "lookback"),
    [
        (("bollinger",), {}, 19),  # first band on candle 19
        (("volume",), {}, 20),  # baseline of the 20 candles before
        (
            ("stochastic",),
            {"stochastic": StochasticParams(k=5, d=3, smooth_k=2)},
            8,
        ),  # %D on 7, cross needs 8
        (("stochastic",), {"stochastic": StochasticParams(k=14, d=4, smooth_k=4)}, 20),
    ],
)
def test_warmup_of_non_recursive_strategies_is_their_exact_lookback(
    candles: list[Candle], enabled: tuple[str, ...], settings: dict, lookback: int
) -> None:
    s = AnalysisSettings(enabled=enabled, min_agree=1, **settings)
    assert warmup_candles(s) == lookback
    result = compute_signal_series(candles[:200], s).consensus.results[0]
    assert "not available" in result.explain(lookback - 1)
    assert "not available" not in result.explain(lookback)


def test_recursive_strategies_wait_for_the_seed_to_fade() -> None:
    rsi_only = AnalysisSettings(enabled=("rsi",), min_agree=1, rsi=RsiParams(length=14))
    # (13/14)^k < 0.01 first at k = 63, after the first RSI on candle 14.
    assert warmup_candles(rsi_only) == 14 + 63
    # MACD(3,5,2): histogram on candle 5, +1 for the cross, then the slow EMA's (2/3)^12 and the
    # signal EMA's (1/3)^5 are the first powers below 0.01.
    assert (
        strategy_warmup("macd", AnalysisSettings(macd=MacdParams(fast=3, slow=5, signal=2))) == 5 + 1 + 12 + 5
    )


def test_later_anchor_agrees_after_warmup(candles: list[Candle]) -> None:
    """Why the settle margin exists: a different anchor barely matters once warmed up."""
    settings = AnalysisSettings()
    warmup, shift = warmup_candles(settings), 1000
    early = compute_indicator_frame(candles, settings).iloc[shift + warmup :]
    late = compute_indicator_frame(candles[shift:], settings).iloc[warmup:]
    assert (early.index == late.index).all()
    assert np.abs(early["rsi"] - late["rsi"]).max() < 0.5
    assert (np.abs(early["macd"] - late["macd"]) / early["close"]).max() < 1e-4
    pd.testing.assert_series_equal(early["stoch_d"], late["stoch_d"], rtol=1e-9)


@pytest.mark.parametrize("end", [50, 115, 116, 2001, 4500])
def test_anchor_property_values_do_not_depend_on_where_the_series_ends(
    candles: list[Candle], default_series, end: int
) -> None:
    settings = AnalysisSettings()
    prefix = compute_signal_series(candles[:end], settings)
    np.testing.assert_array_equal(prefix.direction, default_series.direction[:end])
    np.testing.assert_array_equal(prefix.confidence, default_series.confidence[:end])
    assert prefix.signal_at(end - 1) == default_series.signal_at(end - 1)
    full_frame = compute_indicator_frame(candles[:4500], settings)
    pd.testing.assert_frame_equal(
        compute_indicator_frame(candles[:end], settings), full_frame.iloc[:end], check_exact=True
    )


@pytest.mark.parametrize("end", [0, 1, 114, 115, 116, 3000])
def test_analyze_latest_is_the_last_of_compute_signals(candles: list[Candle], end: int) -> None:
    settings = AnalysisSettings(weights={"rsi": 2.0, "volume": 0.5})
    series = candles[:end]
    latest = analyze_latest(series, settings)
    if end == 0:
        assert latest is None and compute_signals(series, settings) == []
    else:
        assert latest == compute_signals(series, settings)[-1]
    assert (latest is None) == (end <= warmup_candles(settings))


def test_results_are_deterministic_across_runs(candles: list[Candle], default_series) -> None:
    again = compute_signal_series(list(candles), AnalysisSettings())
    np.testing.assert_array_equal(again.direction, default_series.direction)
    np.testing.assert_array_equal(again.confidence, default_series.confidence)
    for i in (200, 3000, 5999):
        assert again.signal_at(i) == default_series.signal_at(i)


def test_candle_arrays_give_the_same_series_as_candles(candles: list[Candle], default_series) -> None:
    arrays = CandleArrays.from_candles(candles)
    series = compute_signal_series(arrays, AnalysisSettings())
    np.testing.assert_array_equal(series.direction, default_series.direction)
    assert series.signal_at(-1) == default_series.signal_at(-1)


def test_signal_at_bounds(default_series) -> None:
    assert default_series.signal_at(-1) == default_series.signal_at(len(default_series) - 1)
    with pytest.raises(IndexError, match="candle index 6000 out of range for 6000 candles"):
        default_series.signal_at(6000)


def test_disabled_strategies_neither_vote_nor_appear(candles: list[Candle]) -> None:
    settings = AnalysisSettings(enabled=("stochastic", "rsi"), min_agree=2, weights={"macd": 5.0})
    series = compute_signal_series(candles, settings)
    assert [r.name for r in series.consensus.results] == ["rsi", "stochastic"]
    assert warmup_candles(settings) == strategy_warmup("rsi", settings)
    for i in np.flatnonzero(series.direction != 0):
        signal = series.signal_at(int(i))
        assert signal is not None
        assert all(v.direction == signal.direction for v in signal.verdicts)


def test_indicator_frame_columns_and_values(candles: list[Candle]) -> None:
    settings = AnalysisSettings(atr_length=7)
    frame = compute_indicator_frame(candles[:500], settings)
    assert list(frame.columns) == [
        "close",
        "volume",
        "rsi",
        "macd",
        "macd_signal",
        "macd_histogram",
        "bb_lower",
        "bb_mid",
        "bb_upper",
        "bb_bandwidth",
        "bb_percent_b",
        "stoch_k",
        "stoch_d",
        "volume_sma",
        "volume_ratio",
        "atr",
    ]
    assert frame.index.name == "open_time"
    assert frame.index.tolist() == [c.open_time for c in candles[:500]]
    close = np.array([c.close for c in candles[:500]])
    high = np.array([c.high for c in candles[:500]])
    low = np.array([c.low for c in candles[:500]])
    np.testing.assert_array_equal(frame["rsi"].to_numpy(), indicators.rsi(close, 14))
    np.testing.assert_array_equal(frame["atr"].to_numpy(), indicators.atr(high, low, close, 7))


def test_bad_candles_are_rejected_with_the_row() -> None:
    good = [Candle(60_000 * i, 10.0, 11.0, 9.0, 10.5, 1.0, 60_000, "X") for i in range(5)]
    unordered = good[:3] + [good[1]] + good[4:]
    with pytest.raises(BadCandleError, match="row 4 .*open_time is not after"):
        compute_signals(unordered, AnalysisSettings())
    broken = good[:2] + [dataclasses.replace(good[2], high=8.0)] + good[3:]
    with pytest.raises(BadCandleError, match="row 3 .*open/close outside low..high"):
        analyze_latest(broken, AnalysisSettings())
    nan = good[:1] + [dataclasses.replace(good[1], close=float("nan"))]
    with pytest.raises(BadCandleError, match="row 2 .*not finite"):
        compute_signal_series(nan, AnalysisSettings())
    with pytest.raises(ValueError, match=r"one symbol at a time, got \['X', 'Y'\]"):
        compute_signals(good + [Candle(10**6, 10.0, 11.0, 9.0, 10.5, 1.0, 60_000, "Y")], AnalysisSettings())


def test_settings_hash_is_pinned_and_stable_across_processes() -> None:
    assert AnalysisSettings().settings_hash() == DEFAULT_SETTINGS_HASH
    code = "from trading.analysis import AnalysisSettings; print(AnalysisSettings().settings_hash())"
    for seed in ("0", "12345"):
        out = subprocess.run(
            [sys.executable, "-c", code],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
            env={"PYTHONHASHSEED": seed, "PATH": ""},
        )
        assert out.stdout.strip() == DEFAULT_SETTINGS_HASH


def test_settings_hash_follows_meaning_not_spelling() -> None:
    base = AnalysisSettings(enabled=("rsi", "macd", "volume"), min_agree=2, weights={"volume": 2, "rsi": 1.5})
    same = AnalysisSettings(
        enabled=["volume", "rsi", "macd"], min_agree=2, weights={"rsi": 1.5, "volume": 2.0}
    )
    assert base == same and base.settings_hash() == same.settings_hash()
    assert base.settings_hash() != dataclasses.replace(base, min_agree=3).settings_hash()
    assert AnalysisSettings().settings_hash() != AnalysisSettings(rsi=RsiParams(oversold=25)).settings_hash()
    assert hash(base) == hash(same) and len({base, same, AnalysisSettings()}) == 2


def test_settings_round_trip_through_dict() -> None:
    settings = AnalysisSettings(
        rsi=RsiParams(length=7),
        enabled=("rsi", "bollinger"),
        min_agree=1,
        weights={"rsi": 2.0},
        min_vote_weight=2.5,
    )
    data = settings.to_dict()
    assert data["rsi"] == {"length": 7, "oversold": 30.0, "overbought": 70.0}
    assert data["enabled"] == ["rsi", "bollinger"]
    again = AnalysisSettings.from_dict(data)
    assert again == settings and again.settings_hash() == settings.settings_hash()
    assert AnalysisSettings.from_dict({}) == AnalysisSettings()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"enabled": ("rsi", "momentum")}, r"Strategies that vote has unknown strategies \['momentum'\]"),
        ({"enabled": ("rsi", "rsi")}, "Strategies that vote lists a strategy twice"),
        ({"enabled": ()}, "Strategies that vote must name at least one strategy"),
        ({"enabled": "rsi"}, "Strategies that vote must be a list of strategy names"),
        ({"enabled": ("rsi", "macd")}, r"Strategies that must agree must be a whole number from 1 to 2"),
        ({"min_agree": 0}, r"Strategies that must agree must be a whole number from 1 to 5"),
        ({"weights": {"rsi": -1}}, r"rsi: Strategy weight must be a number above 0 and at most 10, got -1"),
        ({"weights": {"rsi": 1e308}}, r"rsi: Strategy weight must be a number above 0 and at most 10, got 1e\+308"),
        ({"weights": {"trend": 1}}, "Strategy weights name an unknown strategy 'trend'"),
        ({"min_vote_weight": 2.0}, "Weight that must agree only applies together with strategy weights"),
        ({"weights": {"rsi": 2}, "min_vote_weight": 7}, "at most the voting strategies' total weight 6"),
        ({"rsi": {"length": 14}}, "the rsi settings must be an object of its parameters"),
        ({"atr_length": 0}, "ATR length must be a whole number from 1 to 100 candles, got 0"),
    ],
)
def test_settings_validation_names_the_field(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        AnalysisSettings(**kwargs)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"min_agre": 3}, r"unknown analysis settings fields: \['min_agre'\]"),
        ({"rsi": {"period": 14}}, r"unknown rsi settings fields: \['period'\]"),
        ({"macd": [12, 26, 9]}, "analysis settings field 'macd' must be an object"),
        ({"macd": {"fast": 30}}, r"MACD fast length \(30\) must be below the MACD slow length \(26\)"),
    ],
)
def test_from_dict_rejects_bad_documents(data: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        AnalysisSettings.from_dict(data)


def test_signal_direction_matches_codes(default_series) -> None:
    codes = {Direction.LONG: LONG, Direction.SHORT: SHORT, Direction.NEUTRAL: 0}
    for i in range(default_series.warmup, len(default_series), 97):
        signal = default_series.signal_at(i)
        assert signal is not None
        assert codes[signal.direction] == default_series.direction[i]
        assert signal.confidence == default_series.confidence[i]


@pytest.mark.parametrize("path", sorted(DATA.glob("*.csv.gz")), ids=lambda p: p.name.split("-")[0])
def test_every_candle_file_analyses_cleanly(path: Path) -> None:
    """Altcoin/BTC prices near 1e-5, flat illiquid stretches, gaps: indicators stay finite after warm-up."""
    settings = AnalysisSettings()
    candles = load_candles(path)
    warmup = warmup_candles(settings)
    frame = compute_indicator_frame(candles, settings).iloc[warmup:]
    used = frame.drop(columns=["volume_ratio"])  # NaN by design after candles with no volume at all
    assert np.isfinite(used.to_numpy()).all()
    series = compute_signal_series(candles, settings)
    assert ((series.confidence >= 0) & (series.confidence <= 1)).all()
    assert (series.confidence[series.direction != 0] > 0).all()
