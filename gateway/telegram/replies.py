"""Sending the bot's answers: HTML, split to Telegram's length, paced by its 429s; and every domain
error of a use case as a reply the person can act on."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiogram import BaseMiddleware, Bot
from aiogram.exceptions import TelegramBadRequest, TelegramForbiddenError, TelegramRetryAfter
from aiogram.types import CallbackQuery, InlineKeyboardMarkup, Message, TelegramObject

from gateway.telegram.format import esc, split_message
from services.errors import (
    DomainError,
    Forbidden,
    NeedsConfirmation,
    NotFound,
    Rejected,
    TooManyRequests,
    Unauthenticated,
    Unavailable,
    UpstreamFailed,
)

log = logging.getLogger("durabot.telegram")

SEND_ATTEMPTS = 4
# A 429 asking for longer than this is not waited out inline (the reply is dropped and logged).
MAX_RETRY_AFTER_S = 30
DASHBOARD_ONLY = ("What needs a two-factor code is done in the dashboard for now (a step-up by code in "
                  "Telegram comes later).")


async def send(bot: Bot, chat_id: int, text: str, markup: InlineKeyboardMarkup | None = None) -> list[Message]:
    """Send ``text`` (HTML) to a chat as one message or several; ``markup`` goes on the last one."""
    parts = split_message(text)
    sent: list[Message] = []
    for i, part in enumerate(parts):
        found = await _send_one(bot, chat_id, part, markup if i == len(parts) - 1 else None)
        if found is None:
            break
        sent.append(found)
    return sent


async def _send_one(bot: Bot, chat_id: int, text: str, markup: InlineKeyboardMarkup | None) -> Message | None:
    for attempt in range(1, SEND_ATTEMPTS + 1):
        try:
            return await bot.send_message(chat_id, text, parse_mode="HTML", reply_markup=markup)
        except TelegramRetryAfter as exc:
            if exc.retry_after > MAX_RETRY_AFTER_S or attempt == SEND_ATTEMPTS:
                log.warning("reply dropped: Telegram asked to wait", extra={"fields": {
                    "chat_id": chat_id, "retry_after": exc.retry_after}})
                return None
            await asyncio.sleep(exc.retry_after)
        except TelegramForbiddenError:
            # The person blocked the bot (or left the group): nothing to deliver to.
            log.info("reply not delivered: the bot is blocked", extra={"fields": {"chat_id": chat_id}})
            return None
    return None


async def answer(message: Message, text: str, markup: InlineKeyboardMarkup | None = None) -> list[Message]:
    assert message.bot is not None
    return await send(message.bot, message.chat.id, text, markup)


async def edit_or_send(query: CallbackQuery, text: str) -> None:
    """Show ``text`` in place of the message whose button was pressed (a new message if it cannot be edited)."""
    message = query.message
    assert query.bot is not None
    if isinstance(message, Message):
        try:
            await message.edit_text(text, parse_mode="HTML", reply_markup=None)
            return
        except TelegramBadRequest as exc:
            if "not modified" in exc.message:
                return
    if message is not None:
        await send(query.bot, message.chat.id, text)


def error_text(exc: DomainError) -> str:
    """A use case's refusal as the person reads it (messages of domain errors are safe to show)."""
    message = esc(exc.message)
    if isinstance(exc, Forbidden):
        # What a person may do but not from a chat is what needs a two-factor step-up (a login session).
        return f"⛔ Not from Telegram: {message.rstrip('.')}.\n{DASHBOARD_ONLY}"
    if isinstance(exc, Rejected):
        where = f" ({esc(exc.field)})" if exc.field and exc.field != "Idempotency-Key" else ""
        return f"⚠️ Refused{where}: {message}"
    if isinstance(exc, NotFound):
        return f"🔎 {message}"
    if isinstance(exc, TooManyRequests):
        return f"⏳ {message} (try again in {exc.retry_after_s} s)"
    if isinstance(exc, Unavailable):
        return f"⏳ {message}: try again shortly"
    if isinstance(exc, UpstreamFailed):
        return f"🌐 The exchange could not answer: {message}"
    if isinstance(exc, NeedsConfirmation):
        return f"✋ {message}: confirm it in the dashboard"
    if isinstance(exc, Unauthenticated):
        return f"⛔ {message}"
    return f"⚠️ {message}"


class DomainErrors(BaseMiddleware):
    """A handler's domain error becomes its reply; anything else is logged and answered in general terms
    (never with the exception's text, which may hold internals)."""

    async def __call__(self, handler: Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]],
                       event: TelegramObject, data: dict[str, Any]) -> Any:
        try:
            return await handler(event, data)
        except DomainError as exc:
            text = error_text(exc)
        except Exception:
            log.exception("a Telegram command failed")
            text = "⚠️ Something went wrong on our side; nothing more was done. Try again shortly."
        if isinstance(event, Message):
            await answer(event, text)
        elif isinstance(event, CallbackQuery):
            await event.answer()
            await edit_or_send(event, text)
        return None
