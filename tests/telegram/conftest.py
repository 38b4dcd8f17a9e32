"""The Telegram rig: the sim exchange, the Telegram Bot API stand-in (sim/telegram), the product's workers
of every role and a gateway on real sockets, and the bot's own polling loop in-process as a task that a
test stops and starts again (a restart of the bot process). People link through the REST route and then
talk to the bot as Telegram users of the stand-in, over real HTTP."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from activities.binance.key_vault import new_master_key_text
from core.contracts import TASK_QUEUES
from gateway.telegram.bot import announce_commands, build_bot, build_dispatcher
from gateway.telegram.polling import UpdateLoop
from tests.conftest import registered_and_logged_in, worker_running

PASSWORD = "correct horse battery staple"
REPLY_WITHIN_S = 20.0


@pytest.fixture
async def tg_exchange(start_sim) -> Any:
    return await start_sim(max_candles_per_series=1500)


@pytest.fixture
async def tg_sim(start_sim_telegram) -> Any:
    # Busy polling is Telegram's to throttle; the restarts here poll again at once on purpose.
    return await start_sim_telegram(throttle_repeated_polls=False)


@pytest.fixture
def tg_settings(settings, jwt_private_pem, tg_exchange, tg_sim):
    return settings.model_copy(update={
        "jwt_private_key": SecretStr(jwt_private_pem), "master_key": SecretStr(new_master_key_text()),
        "login_attempts_per_ip": 1000, "task_queue_prefix": f"tg-{uuid.uuid4().hex[:10]}-",
        "exchange_rest_url": tg_exchange.rest_url, "exchange_futures_url": tg_exchange.rest_url,
        "exchange_futures_ws_url": tg_exchange.ws_url,
        "telegram_api_url": tg_sim.url, "telegram_bot_token": SecretStr(tg_sim.config.token),
    })


@pytest.fixture
async def tg_gateway(tg_settings, run_gateway, temporal_client, mongo_client) -> AsyncIterator[Any]:
    db = mongo_client[tg_settings.mongo_database]
    async with AsyncExitStack() as stack:
        for role in TASK_QUEUES:
            await stack.enter_async_context(worker_running(temporal_client, tg_settings, db, f"tg-{role}", role))
        yield await stack.enter_async_context(run_gateway(tg_settings))


class BotProcess:
    """The bot's polling loop as an asyncio task over the gateway's services: started, stopped at any
    moment (cancelled, as a killed process stops) and started again with a fresh Bot and Dispatcher."""

    def __init__(self, gateway: Any, token: str) -> None:
        self.gateway = gateway
        self.token = token
        self.task: asyncio.Task[None] | None = None
        self.loop: UpdateLoop | None = None
        self._bot: Any = None

    def fresh_loop(self) -> UpdateLoop:
        services = self.gateway.app.state.services
        self._bot = build_bot(services.settings, self.token)
        self.loop = UpdateLoop(self._bot, build_dispatcher(services), services.telegram_updates, poll_timeout_s=1)
        return self.loop

    async def start(self) -> None:
        loop = self.fresh_loop()
        await announce_commands(loop.bot)
        self.task = asyncio.create_task(loop.run(), name="telegram-bot")

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            await asyncio.gather(self.task, return_exceptions=True)
            self.task = None
        if self._bot is not None:
            await self._bot.session.close()
            self._bot = None


@pytest.fixture
async def bot_process(tg_gateway, tg_settings) -> AsyncIterator[BotProcess]:
    process = BotProcess(tg_gateway, tg_settings.telegram_bot_token.get_secret_value())
    yield process
    await process.stop()


@dataclass
class Chat:
    """A Telegram chat of the stand-in, seen from a user's side."""

    sim: httpx.AsyncClient
    chat_id: int

    async def messages(self) -> list[dict[str, Any]]:
        reply = await self.sim.get(f"/sim/chats/{self.chat_id}/messages")
        assert reply.status_code == 200, reply.text
        return reply.json()

    async def bot_messages_after(self, message_id: int) -> list[dict[str, Any]]:
        return [m for m in await self.messages() if m["from"] == "bot" and m["message_id"] > message_id]


@dataclass
class TgUser:
    sim: httpx.AsyncClient
    user_id: int
    first_name: str
    username: str | None = None
    sent: list[dict[str, Any]] = field(default_factory=list)

    @property
    def private(self) -> Chat:
        return Chat(self.sim, self.user_id)

    async def send(self, text: str, chat_id: int | None = None) -> dict[str, Any]:
        """Queue a message from this user; its update_id and message_id."""
        chat = self.user_id if chat_id is None else chat_id
        reply = await self.sim.post(f"/sim/chats/{chat}/messages", json={"user_id": self.user_id, "text": text})
        assert reply.status_code == 200, reply.text
        self.sent.append({**reply.json(), "chat_id": chat, "text": text})
        return reply.json()

    async def ask(self, text: str, chat_id: int | None = None, replies: int = 1) -> str:
        """Send ``text`` and wait for the bot's answer (``replies`` messages, joined)."""
        sent = await self.send(text, chat_id)
        chat = Chat(self.sim, self.user_id if chat_id is None else chat_id)
        return "\n".join(m["text"] for m in await wait_for_replies(chat, sent["message_id"], replies))

    async def press(self, chat_id: int, message_id: int, data: str) -> dict[str, Any]:
        reply = await self.sim.post(f"/sim/chats/{chat_id}/callbacks",
                                    json={"user_id": self.user_id, "message_id": message_id, "data": data})
        assert reply.status_code == 200, reply.text
        return reply.json()


async def wait_for_replies(chat: Chat, after_message_id: int, count: int = 1,
                           within_s: float = REPLY_WITHIN_S) -> list[dict[str, Any]]:
    """The bot's first ``count`` messages after ``after_message_id`` (and no reply arrives before they do)."""
    deadline = asyncio.get_running_loop().time() + within_s
    while True:
        found = await chat.bot_messages_after(after_message_id)
        if len(found) >= count:
            return found[:count]
        assert asyncio.get_running_loop().time() < deadline, f"no reply after message {after_message_id}: {found}"
        await asyncio.sleep(0.1)


@pytest.fixture
async def sim_http(tg_sim) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=tg_sim.url, timeout=30) as http:
        yield http


async def new_tg_user(sim: httpx.AsyncClient, first_name: str, username: str | None = None) -> TgUser:
    user_id = 10_000_000 + uuid.uuid4().int % 900_000_000
    body: dict[str, Any] = {"user_id": user_id, "first_name": first_name}
    if username:
        body["username"] = username
    reply = await sim.post("/sim/users", json=body)
    assert reply.status_code in (200, 201), reply.text
    return TgUser(sim, user_id, first_name, username)


@dataclass
class Person:
    """A Durabot user logged in to the dashboard (REST)."""

    user_id: str
    access: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.access}"}


async def new_person(gateway: Any) -> Person:
    body = await registered_and_logged_in(gateway.http, PASSWORD)
    return Person(body["user_id"], body["access_token"])


async def link_code(gateway: Any, person: Person) -> dict[str, Any]:
    reply = await gateway.http.post("/api/telegram/link-code", headers=person.headers)
    assert reply.status_code == 201, reply.text
    return reply.json()


async def linked(gateway: Any, person: Person, user: TgUser, chat_id: int | None = None) -> None:
    """Link ``user`` (in ``chat_id``, default their private chat) to ``person`` as the deep link would."""
    code = await link_code(gateway, person)
    answer = await user.ask(code["start_command"], chat_id)
    assert "Linked" in answer, answer
