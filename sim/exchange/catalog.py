"""Which data files the sim serves, loaded and rebased onto one virtual clock."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

from core.datafiles import load_candles, load_series, parse_data_filename
from sim.exchange.config import SimExchangeConfig
from sim.exchange.series import ReplaySeries, replay_series, whole_day_shift
from sim.exchange.trades import TradeRecord, load_trades, trade_file_symbol
from trading.candle import Candle

log = logging.getLogger(__name__)

USDM_MARGIN_ASSETS = ("USDT", "USDC")
_QUOTE_ASSETS = ("USDT", "USDC", "BUSD", "FDUSD", "TUSD", "USD", "BTC", "ETH", "BNB", "EUR")


class SeriesKind(StrEnum):
    SPOT = "spot"
    FUTURES = "futures"
    MARK = "mark"


@dataclass
class Catalog:
    origin_ms: int
    klines: dict[SeriesKind, dict[str, dict[str, ReplaySeries]]] = field(
        default_factory=lambda: {kind: {} for kind in SeriesKind}
    )
    funding: dict[str, list[tuple[int, float]]] = field(default_factory=dict)
    trades: dict[str, list[TradeRecord]] = field(default_factory=dict)

    def series(self, kind: SeriesKind, symbol: str) -> dict[str, ReplaySeries]:
        return self.klines[kind].get(symbol, {})

    @property
    def spot_symbols(self) -> list[str]:
        return sorted(self.klines[SeriesKind.SPOT])

    @property
    def futures_symbols(self) -> list[str]:
        """Futures endpoints serve every symbol with futures data, and every spot symbol quoted in a
        USDⓈ-M margin asset (from its spot series), so a default futures session works on BTCUSDT.
        Like Binance USDⓈ-M, they list no BTC- or ETH-quoted contract."""
        usd_margined = {s for s in self.klines[SeriesKind.SPOT] if split_symbol(s)[1] in USDM_MARGIN_ASSETS}
        return sorted(set(self.klines[SeriesKind.FUTURES]) | usd_margined)

    def streamed_series(self) -> list[ReplaySeries]:
        """The series the clock replays as kline streams: every spot series, and the futures series of a
        symbol served on futures only (as Binance's USDⓈ-M streams carry a contract's klines)."""
        spot = self.klines[SeriesKind.SPOT]
        return [s for kind, s in self.all_series()
                if kind is SeriesKind.SPOT or (kind is SeriesKind.FUTURES and s.symbol not in spot)]

    def all_series(self) -> list[tuple[SeriesKind, ReplaySeries]]:
        return [
            (kind, s)
            for kind, by_symbol in self.klines.items()
            for by_interval in by_symbol.values()
            for s in by_interval.values()
        ]


def split_symbol(symbol: str) -> tuple[str, str]:
    """``BTCUSDT`` → ``("BTC", "USDT")`` by the longest known quote asset suffix."""
    for quote in sorted(_QUOTE_ASSETS, key=len, reverse=True):
        if symbol.endswith(quote) and len(symbol) > len(quote):
            return symbol[: -len(quote)], quote
    return symbol[:-3], symbol[-3:]


def _kind_of_futures_file(path: Path) -> SeriesKind | None:
    stem = path.name.split(".")[0]
    if stem.endswith("-futures"):
        return SeriesKind.FUTURES
    if stem.endswith("-mark"):
        return SeriesKind.MARK
    return None


def load_catalog(config: SimExchangeConfig, origin_ms: int) -> Catalog:
    """Load every selected file. Files of one symbol share one whole-day shift (set by the symbol's
    earliest file) so spot, futures, mark, funding and trades of a symbol stay aligned."""
    wanted = set(config.symbols) if config.symbols is not None else None
    raw_klines: list[tuple[SeriesKind, list[Candle]]] = []
    raw_funding: dict[str, list[tuple[int, float]]] = {}
    raw_trades: dict[str, list[TradeRecord]] = {}

    for path in sorted((config.data_dir / "candles").glob("*.csv*")):
        if wanted is None or parse_data_filename(path)[0] in wanted:
            raw_klines.append((SeriesKind.SPOT, _capped(load_candles(path), config)))
    for path in sorted((config.data_dir / "futures").glob("*.csv*")):
        symbol, _ = parse_data_filename(path)
        if wanted is not None and symbol not in wanted:
            continue
        kind = _kind_of_futures_file(path)
        if kind is not None:
            raw_klines.append((kind, _capped(load_candles(path), config)))
        elif "funding" in path.name:
            raw_funding[symbol] = load_series(path)
        else:
            log.warning("sim exchange: ignoring futures file %s (neither -futures, -mark nor funding)", path)
    for path in sorted((config.data_dir / "trades").glob("*.csv*")):
        symbol = trade_file_symbol(path)
        if wanted is None or symbol in wanted:
            raw_trades[symbol] = load_trades(path)

    if not raw_klines:
        raise ValueError(f"no candle files to serve under {config.data_dir} (symbols: {config.symbols})")
    if wanted is not None:
        missing = wanted - {candles[0].symbol for _, candles in raw_klines}
        if missing:
            raise ValueError(f"no candle file for symbol(s) {sorted(missing)} under {config.data_dir}")

    group_first: dict[str, int] = {}
    for _, candles in raw_klines:
        symbol = candles[0].symbol
        group_first[symbol] = min(group_first.get(symbol, candles[0].open_time), candles[0].open_time)

    catalog = Catalog(origin_ms)
    spot_end: dict[str, int] = {}
    for kind, candles in raw_klines:
        symbol = candles[0].symbol
        series = replay_series(candles, origin_ms, tiling=config.tiling, group_first_time_ms=group_first[symbol])
        catalog.klines[kind].setdefault(symbol, {})[series.interval] = series
        if kind is SeriesKind.SPOT:
            spot_end[symbol] = max(spot_end.get(symbol, 0), candles[-1].close_time + series.shift_ms)
    for symbol, rows in raw_funding.items():
        if symbol in group_first:
            shift = whole_day_shift(group_first[symbol], origin_ms)
            catalog.funding[symbol] = [(t + shift, rate) for t, rate in rows]
    for symbol, trades in raw_trades.items():
        if symbol not in spot_end:
            continue
        # Trades are not tiled: they end with the first copy of their symbol's candles.
        shift = whole_day_shift(group_first[symbol], origin_ms)
        catalog.trades[symbol] = [t.shifted(shift) for t in trades if t.time_ms + shift < spot_end[symbol]]
    return catalog


def _capped(candles: list[Candle], config: SimExchangeConfig) -> list[Candle]:
    cap = config.max_candles_per_series
    return candles if cap is None else candles[:cap]
