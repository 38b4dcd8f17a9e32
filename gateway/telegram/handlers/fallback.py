"""What no other handler took: a sender the bot does not obey is refused (and audited); the linked
person typing something that is not a command is pointed at /help."""

from __future__ import annotations

from aiogram import Router
from aiogram.types import CallbackQuery, Message

from gateway.telegram.access import refuse
from gateway.telegram.replies import answer
from services.container import Services
from services.telegram_links import Access, TelegramUser


async def anything(message: Message, sender: TelegramUser, access: Access, services: Services) -> None:
    if access.principal is None:
        await refuse(message, sender, access, services.telegram_links)
        return
    await answer(message, "I did not understand that. /help lists what I can do.")


async def any_button(query: CallbackQuery, sender: TelegramUser, access: Access, services: Services) -> None:
    if access.principal is None:
        await refuse(query, sender, access, services.telegram_links)
        return
    await query.answer("This button is no longer in use.")


def router() -> Router:
    """A fresh router of these handlers (a router joins one dispatcher only)."""
    made = Router(name="fallback")
    made.message.register(anything)
    made.callback_query.register(any_button)
    return made
