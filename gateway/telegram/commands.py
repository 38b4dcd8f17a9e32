"""The bot's commands, as Telegram's command menu (setMyCommands) and /help list them."""

from __future__ import annotations

from aiogram.types import BotCommand

# (command, arguments, what it does). Names: 1-32 of a-z, 0-9 and _ (Telegram's rule).
COMMANDS: tuple[tuple[str, str, str], ...] = (
    ("status", "", "session status and open trades"),
    ("trades", "[n]", "recent closed trades"),
    ("profit", "", "profit summary"),
    ("balance", "", "account balance"),
    ("daily", "[n]", "profit per day"),
    ("weekly", "[n]", "profit per week"),
    ("monthly", "[n]", "profit per month"),
    ("performance", "", "profit per pair"),
    ("count", "", "open trades vs the most there can be"),
    ("startbot", "", "start trading"),
    ("stop", "", "stop trading (no new entries)"),
    ("stopentry", "", "stop new entries, keep managing trades"),
    ("forceexit", "<id|all>", "close a trade, or all (real: <symbol|all>)"),
    ("forcelong", "<symbol> <quantity>", "open a long at market"),
    ("forceshort", "<symbol> <quantity>", "open a short at market"),
    ("show_config", "", "the session's settings"),
    ("approvals", "", "tuning proposals waiting for you"),
    ("mode", "[paper|real]", "which session the commands address"),
    ("ask", "<question>", "ask Grok about your trading"),
    ("unlink", "", "unlink this Telegram account"),
    ("version", "", "Durabot's version"),
    ("help", "", "this list"),
)


def bot_commands() -> list[BotCommand]:
    return [BotCommand(command=name, description=what[:256]) for name, _, what in COMMANDS]


def help_lines() -> list[str]:
    return [f"/{name}{' ' + args if args else ''} — {what}" for name, args, what in COMMANDS]
