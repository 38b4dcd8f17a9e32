"""The aiogram ``Bot`` (pointed at ``telegram_api_url``) and the ``Dispatcher`` with one router per area."""

from __future__ import annotations

from aiogram import Bot, Dispatcher
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer

from core.settings import Settings
from gateway.telegram.access import Gate, linked
from gateway.telegram.commands import bot_commands
from gateway.telegram.handlers import ask, control, fallback, linking, reads
from gateway.telegram.replies import DomainErrors
from services.container import Services


def build_bot(settings: Settings, token: str) -> Bot:
    """A bot speaking to Telegram, or to the local stand-in (sim/telegram) at ``telegram_api_url``."""
    session = AiohttpSession(api=TelegramAPIServer.from_base(settings.telegram_api_url))
    return Bot(token=token, session=session)


def build_dispatcher(services: Services) -> Dispatcher:
    """Handlers get ``services`` (the application layer), and from the gate ``sender``, ``access`` and the
    update's idempotency ``key``; the obeyed routers also ``principal`` and ``link``."""
    dispatcher = Dispatcher(services=services)
    gate = Gate(services.telegram_links)
    dispatcher.message.outer_middleware(gate)
    dispatcher.callback_query.outer_middleware(gate)
    obeyed = [reads.router(), control.router(), ask.router()]
    for router in obeyed:
        router.message.filter(linked)
        router.callback_query.filter(linked)
    first = linking.router()
    for router in (first, *obeyed):
        router.message.middleware(DomainErrors())
        router.callback_query.middleware(DomainErrors())
    dispatcher.include_routers(first, *obeyed, fallback.router())
    return dispatcher


async def announce_commands(bot: Bot) -> None:
    """The command menu Telegram shows (setMyCommands), and long polling rather than a webhook."""
    await bot.delete_webhook(drop_pending_updates=False)
    await bot.set_my_commands(bot_commands())
