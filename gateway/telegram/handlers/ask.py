"""/ask: a question to Grok about the person's own trading (``services.ai_chat``, which reads only the
caller's data through its tools)."""

from __future__ import annotations

from aiogram import Router
from aiogram.filters import Command, CommandObject
from aiogram.types import Message

from gateway.telegram.format import esc, money
from gateway.telegram.replies import answer
from services.ai_chat import ChatRequest
from services.container import Services
from services.principal import Principal


async def ask(message: Message, command: CommandObject, principal: Principal, services: Services, key: str) -> None:
    question = (command.args or "").strip()
    if not question:
        await answer(message, "Usage: /ask &lt;question&gt;, e.g. /ask why did my last trade lose?")
        return
    if message.bot is not None:
        await message.bot.send_chat_action(message.chat.id, "typing")
    reply = await services.ai_chat.ask(principal, ChatRequest(message=question), key)
    if reply.answer is None:
        await answer(message, f"🤖 Grok could not answer ({esc(reply.fallback_reason or 'unavailable')}"
                              f"{': ' + esc(reply.fallback_detail) if reply.fallback_detail else ''}).")
        return
    used = f"\n<i>{reply.rounds} round(s), {money(reply.cost_usd)} USD</i>" if reply.cost_usd else ""
    await answer(message, f"🤖 {esc(reply.answer)}{used}")


def router() -> Router:
    """A fresh router of these handlers (a router joins one dispatcher only)."""
    made = Router(name="ask")
    made.message.register(ask, Command("ask", ignore_case=True))
    return made
