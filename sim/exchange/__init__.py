"""A Binance-compatible exchange replaying the real candles in ``data/`` on a virtual clock."""

from sim.exchange.app import SimExchange
from sim.exchange.config import SimExchangeConfig
from sim.exchange.series import ReplaySeries, replay_series, series_checksum, whole_day_shift
from sim.exchange.server import SimExchangeServer, serve

__all__ = [
    "ReplaySeries",
    "SimExchange",
    "SimExchangeConfig",
    "SimExchangeServer",
    "replay_series",
    "serve",
    "series_checksum",
    "whole_day_shift",
]
