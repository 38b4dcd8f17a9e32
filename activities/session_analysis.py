"""The analysis activity of trading sessions: strategies + consensus on one closed candle.

Indicator values are a pure function of the candle series from an anchor (DESIGN §4), so the
analysis of a candle reads the stored candles from the anchor of its (symbol, interval, settings
hash) up to that candle and runs ``trading.analysis.analyze_latest``. The anchor is shared: the
first session to analyse a key records it in ``system_config``, every later one reuses it, and the
result lands in ``ai_analysis_results`` under a key naming symbol, interval, open time, settings
hash and anchor, so sessions with the same settings compute each candle once.

Failures say what they are: a candle missing from ``market_data`` is ``CandleNotStored`` (retried a
few times: it may land any moment), an analysis that cannot be computed (bad settings, bad data) is
``AnalysisFailed`` and never retried; anything else (MongoDB out of reach: every read and write is
``bounded``) is retried, and a session waits it out rather than trade without a signal.

The CPU-bound part runs on a thread (``asyncio.to_thread``) so the worker's event loop, which
also serves workflows, never blocks on pandas. A worker also keeps the results it has read or
computed: a stored analysis never changes, and when a candle closes every session with those
settings asks for the same key at once, so one of them computes it and the rest wait for it.
"""

from __future__ import annotations

import asyncio
import json
from collections import OrderedDict
from datetime import UTC, datetime
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import PyMongoError
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities import market_store
from activities.db import bounded
from core.contracts import AnalyzeCandleInput, AnalyzeCandleResult, CompactSignal
from trading.analysis import AnalysisSettings, analyze_latest, latest_indicators, warmup_candles
from trading.candle import Candle, interval_ms
from trading.signals import Signal

# ApplicationError types of a failed analysis (see the module docstring).
ANALYSIS_FAILED = "AnalysisFailed"
CANDLE_NOT_STORED = "CandleNotStored"

# Streams whose candles from the anchor a worker keeps in memory (each at most a few MB).
CACHED_SERIES = 64
READ_BATCH = 5000
# Results and parsed settings a worker keeps (a result is ~200 bytes).
CACHED_RESULTS = 8192
CACHED_SETTINGS = 256


def anchor_config_key(symbol: str, interval: str, settings_hash: str) -> str:
    return f"analysis_anchor:{symbol}:{interval}:{settings_hash}"


def analysis_key(symbol: str, interval: str, open_time: int, settings_hash: str, anchor: int) -> str:
    return f"{symbol}:{interval}:{open_time}:{settings_hash}:{anchor}"


def compact(signal: Signal | None) -> CompactSignal | None:
    if signal is None:
        return None
    return CompactSignal(signal.direction.value, signal.confidence, signal.reason)


def _analyze(candles: list[Candle], settings: AnalysisSettings) -> tuple[Signal | None, dict[str, float | None]]:
    return analyze_latest(candles, settings), latest_indicators(candles, settings)


def analysis_doc(key: str, request: AnalyzeCandleInput, settings_hash: str, anchor: int,
                 signal: Signal | None, indicator_values: dict[str, float | None] | None = None) -> dict[str, Any]:
    return {
        "analysis_key": key,
        "symbol": request.symbol,
        "interval": request.interval,
        "open_time": request.open_time,
        "settings_hash": settings_hash,
        "anchor": anchor,
        "warming_up": signal is None,
        "direction": signal.direction.value if signal else None,
        "confidence": signal.confidence if signal else None,
        "reason": signal.reason if signal else None,
        "verdicts": [
            {"strategy": v.strategy, "direction": v.direction.value, "confidence": v.confidence, "reason": v.reason}
            for v in (signal.verdicts if signal else ())
        ],
        # Every indicator on this candle (None while undefined), enabled by a strategy or not.
        "indicators": indicator_values or {},
        "created_at": datetime.now(UTC),
    }


def stored_signal(doc: dict[str, Any]) -> CompactSignal | None:
    if doc["warming_up"]:
        return None
    return CompactSignal(doc["direction"], doc["confidence"], doc["reason"])


class SessionAnalysisActivities:
    def __init__(self, db: AsyncDatabase) -> None:
        self.db = db
        # (symbol, interval, anchor) -> stored candles from the anchor, oldest first. market_data
        # rows never change once stored and the feed stores a stream in open-time order, so a
        # cached prefix stays valid and only newer candles need reading.
        self._series: OrderedDict[tuple[str, str, int], list[Candle]] = OrderedDict()
        self._locks: dict[tuple[str, str, int], asyncio.Lock] = {}
        self._results: OrderedDict[str, AnalyzeCandleResult] = OrderedDict()
        self._result_locks: dict[str, asyncio.Lock] = {}
        self._settings: OrderedDict[str, tuple[AnalysisSettings, str]] = OrderedDict()

    @activity.defn
    async def analyze_candle(self, request: AnalyzeCandleInput) -> AnalyzeCandleResult:
        """The consensus signal on one stored candle (None while warming up), stored and shared."""
        try:
            return await self.analysis_of(request)
        except (ApplicationError, PyMongoError):
            raise
        except Exception as exc:  # noqa: BLE001 (bad settings or data: retrying gives the same answer)
            raise ApplicationError(f"{type(exc).__name__}: {exc}", type=ANALYSIS_FAILED, non_retryable=True) from exc

    async def analysis_of(self, request: AnalyzeCandleInput) -> AnalyzeCandleResult:
        """The shared analysis of one candle, computed at most once per worker (the feed asks it for
        each settings its subscribers use, and hands the result on inside ``candle_closed``)."""
        step = interval_ms(request.interval)
        settings, settings_hash = self._parsed(request.analysis_settings)
        anchor = request.anchor
        if anchor is None:
            anchor = await self._shared_anchor(request, settings, settings_hash, step)
        key = analysis_key(request.symbol, request.interval, request.open_time, settings_hash, anchor)
        result = self._results.get(key)
        if result is not None:
            return result
        lock = self._result_locks.setdefault(key, asyncio.Lock())
        async with lock:
            result = self._results.get(key)
            if result is None:
                result = await self._analysis(request, settings, settings_hash, anchor, key, step)
                self._results[key] = result
                while len(self._results) > CACHED_RESULTS:
                    self._results.popitem(last=False)
        self._result_locks.pop(key, None)  # later callers find the result first
        return result

    def _parsed(self, analysis_settings: dict[str, Any]) -> tuple[AnalysisSettings, str]:
        """The settings and their hash; validating them costs more than the rest of a cached call."""
        text = json.dumps(analysis_settings, sort_keys=True)
        parsed = self._settings.get(text)
        if parsed is None:
            settings = AnalysisSettings.from_dict(analysis_settings)
            parsed = self._settings[text] = (settings, settings.settings_hash())
            while len(self._settings) > CACHED_SETTINGS:
                self._settings.popitem(last=False)
        return parsed

    async def _analysis(self, request: AnalyzeCandleInput, settings: AnalysisSettings, settings_hash: str,
                        anchor: int, key: str, step: int) -> AnalyzeCandleResult:
        with bounded():
            known = await self.db.ai_analysis_results.find_one({"analysis_key": key})
        if known is not None:
            return AnalyzeCandleResult(anchor, key, stored_signal(known))
        candles = await self._candles(request.symbol, request.interval, anchor, request.open_time, step)
        if not candles or candles[-1].open_time != request.open_time:
            raise ApplicationError(
                f"candle {request.symbol} {request.interval} @{request.open_time} is not in market_data",
                type=CANDLE_NOT_STORED)
        signal, indicator_values = await asyncio.to_thread(_analyze, candles, settings)
        with bounded():
            await self.db.ai_analysis_results.update_one(
                {"analysis_key": key},
                {"$setOnInsert": analysis_doc(key, request, settings_hash, anchor, signal, indicator_values)},
                upsert=True,
            )
        return AnalyzeCandleResult(anchor, key, compact(signal))

    async def _shared_anchor(self, request: AnalyzeCandleInput, settings: AnalysisSettings,
                             settings_hash: str, step: int) -> int:
        """The anchor of (symbol, interval, settings hash); a new one lies one warm-up before this
        candle (or at the oldest stored candle), so the first signal is trusted right away."""
        config_key = anchor_config_key(request.symbol, request.interval, settings_hash)
        with bounded():
            return await self._anchor_of(request, settings, config_key)

    async def _anchor_of(self, request: AnalyzeCandleInput, settings: AnalysisSettings, config_key: str) -> int:
        existing = await self.db.system_config.find_one({"key": config_key})
        if existing is not None:
            return int(existing["value"])
        lookback = await market_store.read_candles(
            self.db, request.symbol, request.interval, end=request.open_time,
            limit=warmup_candles(settings) + 1, newest=True,
        )
        if not lookback:
            raise ApplicationError(f"no stored candles of {request.symbol} {request.interval} up to "
                                   f"{request.open_time}", type=CANDLE_NOT_STORED)
        await self.db.system_config.update_one(
            {"key": config_key},
            {"$setOnInsert": {"value": lookback[0].open_time, "created_at": datetime.now(UTC)}},
            upsert=True,
        )
        # Another session may have won the race: everyone uses the stored anchor.
        stored = await self.db.system_config.find_one({"key": config_key})
        assert stored is not None
        return int(stored["value"])

    async def _candles(self, symbol: str, interval: str, anchor: int, open_time: int, step: int) -> list[Candle]:
        cache_key = (symbol, interval, anchor)
        lock = self._locks.setdefault(cache_key, asyncio.Lock())
        async with lock:
            series = self._series.get(cache_key)
            if series is None:
                series = []
                self._series[cache_key] = series
                while len(self._series) > CACHED_SERIES:
                    evicted, _ = self._series.popitem(last=False)
                    self._locks.pop(evicted, None)
            self._series.move_to_end(cache_key)
            while not series or series[-1].open_time < open_time:
                start = series[-1].open_time + step if series else anchor
                with bounded():
                    batch = await market_store.read_candles(self.db, symbol, interval, start=start, end=open_time,
                                                            limit=READ_BATCH, newest=False)
                if not batch:
                    break
                series.extend(batch)
            end = len(series)
            while end and series[end - 1].open_time > open_time:
                end -= 1
            return series[:end]
