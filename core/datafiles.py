"""Reading the real market data files in ``data/`` (gzip CSV with a header).

Every loaded series is validated: a bad row raises ``BadCandleError`` naming the row, never a
silent zero.
"""

from __future__ import annotations

import csv
import gzip
import re
from pathlib import Path

from trading.candle import INTERVAL_MS, BadCandleError, Candle, validate_candles

_NAME = re.compile(r"^(?P<symbol>[A-Z0-9]+)-(?P<interval>\d+[mhd])-")


def parse_data_filename(path: str | Path) -> tuple[str, str]:
    """``BTCUSDT-5m-2023-01.csv.gz`` → ``("BTCUSDT", "5m")``."""
    name = Path(path).name
    m = _NAME.match(name)
    if not m or m.group("interval") not in INTERVAL_MS:
        raise ValueError(f"cannot tell symbol and interval from file name {name!r} (want SYMBOL-INTERVAL-…)")
    return m.group("symbol"), m.group("interval")


def _open(path: Path):
    return gzip.open(path, "rt", newline="") if path.suffix == ".gz" else open(path, newline="")


def load_candles(path: str | Path, symbol: str | None = None, interval: str | None = None) -> list[Candle]:
    """Load and validate a candle file. Symbol and interval default to those in the file name."""
    path = Path(path)
    if symbol is None or interval is None:
        file_symbol, file_interval = parse_data_filename(path)
        symbol = symbol or file_symbol
        interval = interval or file_interval
    step = INTERVAL_MS[interval]
    out: list[Candle] = []
    with _open(path) as fh:
        reader = csv.reader(fh)
        header = next(reader, None)
        if header is None:
            raise ValueError(f"{path}: empty file")
        cols = [h.strip().lower() for h in header]
        try:
            idx = [cols.index(k) for k in ("open_time", "open", "high", "low", "close", "volume")]
        except ValueError:
            raise ValueError(f"{path}: header must hold open_time,open,high,low,close,volume; got {header}") from None
        for row_no, row in enumerate(reader, start=1):
            try:
                t, o, h, lo, c, v = (row[i] for i in idx)
                # Mark-price files carry no volume: an empty cell there means none, not zero-by-accident.
                volume = float(v) if v.strip() else 0.0
                candle = Candle(int(t), float(o), float(h), float(lo), float(c), volume, step, symbol)
            except (ValueError, IndexError) as exc:
                raise BadCandleError(row_no, f"unparsable row {row!r}: {exc}") from None
            out.append(candle)
    validate_candles(out)
    return out


def load_series(path: str | Path) -> list[tuple[int, float]]:
    """A (time, value) series such as a funding-rate file (value in ``open``)."""
    path = Path(path)
    with _open(path) as fh:
        reader = csv.DictReader(fh)
        return [(int(r["open_time"]), float(r["open"])) for r in reader]
