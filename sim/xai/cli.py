"""``durabot sim xai``: run the sim xAI API in the foreground until Ctrl-C."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Annotated

import typer

from sim.xai.config import DEFAULT_STATE_DIR, SimXaiConfig
from sim.xai.server import serve


def register(sim_app: typer.Typer) -> None:
    """Add the ``xai`` command to the ``durabot sim`` command group."""

    @sim_app.command("xai")
    def xai(
        host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
        port: Annotated[int, typer.Option(help="Port of the OpenAI-compatible API (0 picks a free one).")] = 8901,
        state_dir: Annotated[Path, typer.Option(help="Where the request log and usage totals persist.")] = (
            DEFAULT_STATE_DIR
        ),
        api_key: Annotated[
            list[str] | None, typer.Option(help="Accept only this bearer key (repeatable; default: any key).")
        ] = None,
    ) -> None:
        """Serve an xAI-compatible (OpenAI chat completions) API that answers by fixed rules."""
        try:
            config = SimXaiConfig(host=host, port=port, state_dir=state_dir,
                                  api_keys=tuple(api_key) if api_key else None)
        except ValueError as exc:
            raise typer.BadParameter(str(exc)) from None
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
        typer.echo(f"sim xai on http://{host}:{port}/v1 (controls under /sim)")
        try:
            asyncio.run(serve(config))
        except KeyboardInterrupt:
            typer.echo("sim xai stopped")
