"""A protocol-true stand-in for the Telegram Bot API, with people to chat with the bot (tests and a web page)."""

from sim.telegram.app import SimTelegram
from sim.telegram.config import SimTelegramConfig
from sim.telegram.server import SimTelegramServer, serve

__all__ = ["SimTelegram", "SimTelegramConfig", "SimTelegramServer", "serve"]
