"""``durabot sim exchange``: run the sim exchange in the foreground until Ctrl-C."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Annotated

import typer

from sim.exchange.config import DEFAULT_DATA_DIR, DEFAULT_STATE_DIR, SimExchangeConfig
from sim.exchange.server import serve


def register(sim_app: typer.Typer) -> None:
    """Add the ``exchange`` command to the ``durabot sim`` command group."""

    @sim_app.command("exchange")
    def exchange(
        host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
        port: Annotated[int, typer.Option(help="Port for REST and WebSocket (0 picks a free one).")] = 8900,
        data_dir: Annotated[Path, typer.Option(help="Folder holding candles/, futures/ and trades/.")] = (
            DEFAULT_DATA_DIR
        ),
        state_dir: Annotated[Path, typer.Option(help="Where the clock origin and position persist.")] = (
            DEFAULT_STATE_DIR
        ),
        speed: Annotated[str, typer.Option(help="'max' (paced by subscribers) or a multiplier of wall time.")] = ("60"),
        start_offset_candles: Annotated[int, typer.Option(help="Candles already closed at first start.")] = 500,
        symbol: Annotated[
            list[str] | None, typer.Option(help="Serve only this symbol (repeatable; default: every file).")
        ] = None,
        tiling: Annotated[bool, typer.Option(help="Repeat each file forward, scaled to continue its prices.")] = (True),
        max_candles_per_series: Annotated[
            int | None, typer.Option(help="Use only the first N candles of each file.")
        ] = None,
        ws_max_lifetime_s: Annotated[float, typer.Option(help="WebSocket connections close after this.")] = (
            24 * 3600.0
        ),
        ws_ping_interval_s: Annotated[float, typer.Option(help="Server ping interval.")] = 20.0,
        weight_limit_per_minute: Annotated[int, typer.Option(help="Request weight per IP per minute.")] = 6000,
        slippage_bps: Annotated[
            float, typer.Option(help="USDⓈ-M market and triggered fills move this many bps against the taker.")
        ] = 0.0,
        taker_fee_rate: Annotated[float, typer.Option(help="USDⓈ-M taker fee (0.0005 = 0.05%).")] = 0.0005,
        maker_fee_rate: Annotated[float, typer.Option(help="USDⓈ-M maker fee (0.0002 = 0.02%).")] = 0.0002,
        spot_fee_rate: Annotated[float, typer.Option(help="Spot fee, maker and taker (0.001 = 0.1%).")] = 0.001,
        lockstep: Annotated[
            bool, typer.Option(help="Hold the clock after each candle close until POST /sim/lockstep/ack.")
        ] = False,
        lockstep_timeout_s: Annotated[
            float, typer.Option(help="Lockstep: the clock moves on after this long without an ack.")
        ] = 30.0,
    ) -> None:
        """Serve a Binance-compatible exchange replaying the real data on a virtual clock."""
        try:
            config = SimExchangeConfig(
                host=host,
                port=port,
                data_dir=data_dir,
                state_dir=state_dir,
                speed=speed,
                start_offset_candles=start_offset_candles,
                symbols=tuple(symbol) if symbol else None,
                tiling=tiling,
                max_candles_per_series=max_candles_per_series,
                ws_max_lifetime_s=ws_max_lifetime_s,
                ws_ping_interval_s=ws_ping_interval_s,
                weight_limit_per_minute=weight_limit_per_minute,
                slippage_bps=slippage_bps,
                taker_fee_rate=taker_fee_rate,
                maker_fee_rate=maker_fee_rate,
                spot_fee_rate=spot_fee_rate,
                lockstep=lockstep,
                lockstep_timeout_s=lockstep_timeout_s,
            )
        except ValueError as exc:
            raise typer.BadParameter(str(exc)) from None
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
        typer.echo(f"sim exchange on http://{host}:{port} (REST) and ws://{host}:{port} (streams), speed {speed}")
        try:
            asyncio.run(serve(config))
        except KeyboardInterrupt:
            typer.echo("sim exchange stopped")
