"""``durabot sim telegram``: run the sim Telegram Bot API (and its web chat) in the foreground until Ctrl-C."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Annotated

import typer

from sim.telegram.config import DEFAULT_STATE_DIR, DEFAULT_TOKEN, SimTelegramConfig
from sim.telegram.server import serve


def register(sim_app: typer.Typer) -> None:
    """Add the ``telegram`` command to the ``durabot sim`` command group."""

    @sim_app.command("telegram")
    def telegram(
        host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
        port: Annotated[int, typer.Option(help="Port of the Bot API and the web chat (0 picks a free one).")] = 8950,
        state_dir: Annotated[Path, typer.Option(help="Where users, chats and pending updates persist.")] = (
            DEFAULT_STATE_DIR
        ),
        token: Annotated[str, typer.Option(help="The bot token the API accepts (Telegram's shape).")] = DEFAULT_TOKEN,
        bot_username: Annotated[str, typer.Option(help="The bot's @username.")] = "durabot_sim_bot",
        privacy_mode: Annotated[bool, typer.Option(help="In groups the bot sees only commands and replies.")] = True,
    ) -> None:
        """Serve a Telegram Bot API stand-in and a web chat (/chat) to talk to the bot offline."""
        try:
            config = SimTelegramConfig(host=host, port=port, state_dir=state_dir, token=token,
                                       bot_username=bot_username, privacy_mode=privacy_mode)
        except ValueError as exc:
            raise typer.BadParameter(str(exc)) from None
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
        typer.echo(f"sim telegram on http://{host}:{port} (web chat /chat, controls under /sim)")
        try:
            asyncio.run(serve(config))
        except KeyboardInterrupt:
            typer.echo("sim telegram stopped")
