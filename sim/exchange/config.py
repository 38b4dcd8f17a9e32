"""Settings of one sim/exchange instance."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_DATA_DIR = REPO_ROOT / "data"
DEFAULT_STATE_DIR = REPO_ROOT / "var" / "sim-exchange"


@dataclass(frozen=True)
class SimExchangeConfig:
    """``speed`` is ``"max"`` (as fast as the slowest kline subscriber reads; frozen with none) or a
    multiplier of wall time (60 = a 5-minute candle every 5 s). ``symbols`` limits the served
    files to those symbols (None = every file in data/candles, data/futures and data/trades)."""

    host: str = "127.0.0.1"
    port: int = 8900
    data_dir: Path = DEFAULT_DATA_DIR
    state_dir: Path = DEFAULT_STATE_DIR
    speed: str | float = 60.0
    start_offset_candles: int = 500
    symbols: tuple[str, ...] | None = None
    tiling: bool = True
    max_candles_per_series: int | None = None
    ws_max_lifetime_s: float = 24 * 3600.0
    ws_ping_interval_s: float = 20.0
    ws_ping_timeout_s: float = 20.0
    weight_limit_per_minute: int = 6000
    ws_send_queue_size: int = 64
    state_save_interval_s: float = 0.5
    # USDⓈ-M trading: MARKET and triggered fills move this many basis points against the taker.
    slippage_bps: float = 0.0
    taker_fee_rate: float = 0.0005
    maker_fee_rate: float = 0.0002
    order_limit_per_10s: int = 300
    order_limit_per_minute: int = 1200
    # Spot trading: one fee rate for maker and taker fills (Binance's standard 0.1%).
    spot_fee_rate: float = 0.001
    # Lockstep (README "Lockstep"): after each close instant the clock waits for POST /sim/lockstep/ack
    # and for order requests in flight, at most lockstep_timeout_s seconds.
    lockstep: bool = False
    lockstep_timeout_s: float = 30.0

    def __post_init__(self) -> None:
        if isinstance(self.speed, str):
            if self.speed != "max":
                try:
                    object.__setattr__(self, "speed", float(self.speed))
                except ValueError:
                    raise ValueError(f"speed must be 'max' or a positive number, got {self.speed!r}") from None
        if isinstance(self.speed, float | int) and not self.speed > 0:
            raise ValueError(f"speed must be 'max' or a positive number, got {self.speed!r}")
        if self.start_offset_candles < 0:
            raise ValueError(f"start_offset_candles must be >= 0, got {self.start_offset_candles}")
        if self.max_candles_per_series is not None and self.max_candles_per_series < 1:
            raise ValueError(f"max_candles_per_series must be >= 1, got {self.max_candles_per_series}")
        for name in (
            "ws_max_lifetime_s",
            "ws_ping_interval_s",
            "weight_limit_per_minute",
            "ws_send_queue_size",
            "order_limit_per_10s",
            "order_limit_per_minute",
            "lockstep_timeout_s",
        ):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        for name in ("slippage_bps", "taker_fee_rate", "maker_fee_rate", "spot_fee_rate"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        object.__setattr__(self, "data_dir", Path(self.data_dir))
        object.__setattr__(self, "state_dir", Path(self.state_dir))
        if self.symbols is not None:
            object.__setattr__(self, "symbols", tuple(s.upper() for s in self.symbols))

    @property
    def max_speed(self) -> bool:
        return self.speed == "max"
