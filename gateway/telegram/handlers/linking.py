"""/start (greet, or link with a code), /help, /version and /unlink.

Telegram sends ``/start`` whenever a person opens the chat, so it never does anything but greet or,
with a code (``/start CODE``, what the dashboard's deep link sends), link."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from aiogram import Router
from aiogram.filters import Command, CommandObject
from aiogram.types import Message

from gateway.telegram.access import linked
from gateway.telegram.commands import help_lines
from gateway.telegram.format import esc
from gateway.telegram.replies import answer
from services.container import Services
from services.principal import Principal
from services.telegram_links import Access, Link, LinkRefused, TelegramUser

HOW_TO_LINK = ("To link your Durabot account: Dashboard → Settings → Telegram → “Get a link code”, then open the "
               "link it shows or send me <code>/start CODE</code>.")


def durabot_version() -> str:
    try:
        return version("durabot")
    except PackageNotFoundError:
        return "unknown"


async def start(message: Message, command: CommandObject, sender: TelegramUser, access: Access,
                services: Services) -> None:
    code = (command.args or "").strip()
    if not code:
        if access.principal is not None and access.link is not None:
            await answer(message, f"👋 Welcome back. This chat is linked to your Durabot account (mode "
                                  f"<b>{esc(access.link.mode)}</b>). /help lists the commands.")
        else:
            await answer(message, f"👋 Hello! I am Durabot's bot. {HOW_TO_LINK}")
        return
    try:
        made = await services.telegram_links.link(sender, code)
    except LinkRefused as refused:
        await answer(message, f"🔒 {esc(refused.reason)}")
        return
    await answer(message, f"✅ Linked. I take commands from you, {esc(made.first_name or made.username or 'there')}, "
                          f"in this chat only. Commands address the <b>{esc(made.mode)}</b> session (/mode switches)."
                          " /help lists them; /unlink ends the link.")


async def help_command(message: Message, access: Access) -> None:
    text = "<b>Durabot commands</b>\n" + "\n".join(esc(line) for line in help_lines())
    if access.principal is None:
        text += f"\n\n{HOW_TO_LINK}"
    await answer(message, text)


async def version_command(message: Message, services: Services) -> None:
    info = await services.system.info()
    await answer(message, f"Durabot {esc(durabot_version())} · exchange: {esc(info.exchange)}")


async def unlink(message: Message, principal: Principal, link: Link, services: Services) -> None:
    await services.telegram_links.unlink_telegram(principal)
    await answer(message, "🔓 Unlinked. I will not take commands from this chat any more. Link again from the "
                          "dashboard whenever you like.")


def router() -> Router:
    """A fresh router of these handlers (a router joins one dispatcher only)."""
    made = Router(name="linking")
    made.message.register(start, Command("start", ignore_case=True))
    made.message.register(help_command, Command("help", ignore_case=True))
    made.message.register(version_command, Command("version", ignore_case=True), linked)
    made.message.register(unlink, Command("unlink", ignore_case=True), linked)
    return made
