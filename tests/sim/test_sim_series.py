"""The pure rebasing and tiling rules of DESIGN §4, checked without a server."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.datafiles import load_candles
from sim.exchange.series import replay_series, series_checksum, whole_day_shift
from trading.candle import DAY_MS, Candle, validate_candles

from .conftest import BTCUSDT_FILE

ORIGIN = 1_795_564_800_000  # a UTC midnight
BTCUSDT = load_candles(BTCUSDT_FILE)


def test_rebasing_moves_whole_days_to_the_origin_midnight_and_keeps_prices() -> None:
    series = replay_series(BTCUSDT, ORIGIN, tiling=False)
    first = series.candle(0)
    assert series.shift_ms % DAY_MS == 0
    assert first.open_time - first.open_time % DAY_MS == ORIGIN
    assert first.open_time % DAY_MS == BTCUSDT[0].open_time % DAY_MS  # time of day kept
    for i in (0, 1, 4321, len(BTCUSDT) - 1):
        original, rebased = BTCUSDT[i], series.candle(i)
        assert rebased.open_time - original.open_time == series.shift_ms
        assert (rebased.open, rebased.high, rebased.low, rebased.close, rebased.volume) == (
            original.open,
            original.high,
            original.low,
            original.close,
            original.volume,
        )
    assert series.length == len(BTCUSDT)
    with pytest.raises(IndexError):
        series.candle(len(BTCUSDT))


def test_origin_must_be_a_midnight() -> None:
    with pytest.raises(ValueError, match="midnight"):
        whole_day_shift(BTCUSDT[0].open_time, ORIGIN + 1)


def test_tiling_is_multiplicative_monotonic_and_positive() -> None:
    falling = [Candle(i * 300_000, 10.0 - i, 10.0 - i, 9.0 - i, 9.0 - i, 1.0, 300_000, "DOWNUSDT") for i in range(5)]
    series = replay_series(falling, ORIGIN, tiling=True)  # each copy ends at 60% of its start
    n = len(falling)
    for copy in range(1, 40):
        previous_last, first = series.candle(copy * n - 1), series.candle(copy * n)
        assert first.open == pytest.approx(previous_last.close, rel=1e-9)
        assert first.open_time == previous_last.open_time + 300_000
    many = series.candles(0, 40 * n)
    validate_candles(many)  # positive prices, low <= open/close <= high, strictly rising times
    assert series.length is None


def test_tiled_copies_keep_the_files_gaps_and_scale_every_price() -> None:
    series = replay_series(BTCUSDT[:100], ORIGIN, tiling=True)
    factor = BTCUSDT[99].close / BTCUSDT[0].open
    for i in (0, 37, 99):
        original, tiled = series.candle(i), series.candle(100 + i)
        assert tiled.open_time - original.open_time == series.copy_span_ms
        assert tiled.high == pytest.approx(original.high * factor, rel=1e-9)
        assert tiled.volume == original.volume


@settings(max_examples=200, deadline=None)
@given(index=st.integers(min_value=0, max_value=30_000), offset=st.integers(min_value=0, max_value=299_999))
def test_counting_by_time_agrees_with_candle_times(index: int, offset: int) -> None:
    series = replay_series(BTCUSDT[:3000], ORIGIN, tiling=True)
    candle = series.candle(index)
    assert series.count_opened_by(candle.open_time) == index + 1
    assert series.count_opened_by(candle.open_time - 1) == index
    assert series.count_closed_by(candle.close_time) == index + 1
    assert series.count_closed_by(candle.close_time - 1) == index
    # Any instant inside the candle sees it open and its predecessors closed.
    inside = candle.open_time + offset % candle.interval_ms
    assert series.count_opened_by(inside) == index + 1


def test_cap_and_checksum() -> None:
    capped = replay_series(BTCUSDT, ORIGIN, tiling=False, cap=2000)
    assert capped.length == 2000
    whole = capped.candles(0, 2000)
    assert series_checksum(whole) == series_checksum(list(whole))
    assert series_checksum(whole) != series_checksum(whole[:-1])
    changed = [
        *whole[:-1],
        Candle(
            whole[-1].open_time,
            whole[-1].open,
            whole[-1].high,
            whole[-1].low,
            whole[-1].close,
            whole[-1].volume + 1e-9,
            300_000,
            "BTCUSDT",
        ),
    ]
    assert series_checksum(whole) != series_checksum(changed)
