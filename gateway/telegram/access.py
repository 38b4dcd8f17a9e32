"""Who the bot obeys. Every message and button press is matched to its sender's link
(``services.telegram_links``): only the linked Telegram *user* (``from.id``, never the chat: anyone in a
group can type or press a button), in the chat they linked, acts — as a human principal on channel
``telegram``. Everyone else gets a polite refusal, and the refusal is audited."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from aiogram import BaseMiddleware, Bot
from aiogram.types import CallbackQuery, Message, TelegramObject, Update

from gateway.telegram.replies import answer
from services.telegram_links import Access, TelegramLinks, TelegramUser

REFUSAL = ("🔒 Sorry, I only take commands from the Telegram account linked to a Durabot account, in the chat "
           "it was linked in. To link yours: Dashboard → Settings → Telegram → “Get a link code”, then send "
           "/start CODE to me in a private chat.")


def sender_of(event: TelegramObject) -> TelegramUser | None:
    """The sender and chat of a message or a button press (None for what has no user: channel posts)."""
    chat_id: int | None
    if isinstance(event, Message):
        user, chat_id = event.from_user, event.chat.id
    elif isinstance(event, CallbackQuery):
        user, chat_id = event.from_user, event.message.chat.id if event.message is not None else None
    else:
        return None
    if user is None or chat_id is None or user.is_bot:
        return None
    return TelegramUser(user_id=user.id, chat_id=chat_id, username=user.username, first_name=user.first_name)


def update_key(bot: Bot, update: Update) -> str:
    """The idempotency key of every write an update makes: the same update never acts twice."""
    return f"tg-{bot.id}-{update.update_id}"


class Gate(BaseMiddleware):
    """Puts ``sender``, ``access`` and ``key`` into the handler data of every message and button press."""

    def __init__(self, links: TelegramLinks) -> None:
        self.links = links

    async def __call__(self, handler: Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]],
                       event: TelegramObject, data: dict[str, Any]) -> Any:
        sender = sender_of(event)
        if sender is None:
            return None
        data["sender"] = sender
        data["access"] = await self.links.access(sender)
        data["key"] = update_key(data["bot"], data["event_update"])
        return await handler(event, data)


def linked(event: TelegramObject, access: Access) -> bool | dict[str, Any]:
    """The filter of every command but /start and /help: the obeyed sender's principal and link."""
    if access.principal is None or access.link is None:
        return False
    return {"principal": access.principal, "link": access.link}


async def refuse(event: TelegramObject, sender: TelegramUser, access: Access, links: TelegramLinks) -> None:
    """Answer a sender the bot does not obey, and audit it."""
    text = event.text if isinstance(event, Message) else event.data if isinstance(event, CallbackQuery) else None
    command = (text or "").split(maxsplit=1)[0] if text else None
    await links.refuse(sender, access.refusal or "not_obeyed", command)
    if isinstance(event, CallbackQuery):
        await event.answer("Not yours to press.", show_alert=True)
    elif isinstance(event, Message):
        await answer(event, REFUSAL if access.refusal != "two_factor_required" else
                     "🔒 Your administrator requires two-factor authentication: set it up in the dashboard first.")
