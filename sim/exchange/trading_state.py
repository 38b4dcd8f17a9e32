"""Persistence of the trading side of the sim (keys, futures book, spot book, listen keys) in
``state_dir/trading.json``, written via a temporary file and a rename after every change."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from sim.exchange.account import SimKeyStore
from sim.exchange.futures_book import FuturesBook
from sim.exchange.spot_book import SpotBook
from sim.exchange.user_stream import ListenKeys

TRADING_FILE_NAME = "trading.json"


class TradingStore:
    def __init__(
        self, state_dir: Path, keys: SimKeyStore, book: FuturesBook, spot: SpotBook, listen_keys: ListenKeys
    ) -> None:
        self.path = state_dir / TRADING_FILE_NAME
        self.keys = keys
        self.book = book
        self.spot = spot
        self.listen_keys = listen_keys
        keys.on_change = listen_keys.on_change = self.save

    def load(self) -> None:
        if not self.path.exists():
            return
        try:
            raw = json.loads(self.path.read_text())
            self.keys.load(raw["keys"])
            self.book.load(raw["book"])
            if "spot" in raw:  # files written before spot trading have none
                self.spot.load(raw["spot"])
            self.listen_keys.by_api_key = {k: list(v) for k, v in raw["listen_keys"].items()}
        except (ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"{self.path}: unreadable sim trading state ({exc}); delete it to start afresh") from None

    def save(self) -> None:
        payload = json.dumps(
            {
                "keys": self.keys.dump(),
                "book": self.book.dump(),
                "spot": self.spot.dump(),
                "listen_keys": self.listen_keys.by_api_key,
            },
            separators=(",", ":"),
        )
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".trading-", suffix=".tmp")
        try:
            with os.fdopen(fd, "w") as fh:
                fh.write(payload)
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
