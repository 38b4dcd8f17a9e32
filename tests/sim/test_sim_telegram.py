"""The sim Telegram Bot API over real HTTP (httpx) and through aiogram 3's own Bot and Dispatcher: update ids and
offsets, long polling, Telegram's limits and error texts, callback queries, groups, faults, blocking, the
request log, a restart from the state file, and the web chat page."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import pytest
from aiogram import Bot, Dispatcher, F
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.exceptions import (
    TelegramBadRequest,
    TelegramConflictError,
    TelegramForbiddenError,
    TelegramNotFound,
    TelegramRetryAfter,
    TelegramServerError,
    TelegramUnauthorizedError,
)
from aiogram.filters import Command, CommandObject, CommandStart
from aiogram.types import BotCommand, CallbackQuery, Message
from aiogram.utils.keyboard import InlineKeyboardBuilder

ANN, BOB = 1001, 1002
GROUP = -4001
KEYBOARD = {"inline_keyboard": [[{"text": "Yes", "callback_data": "yes"}, {"text": "No", "callback_data": "no"}]]}


class Sim:
    """httpx views of one sim: ``api`` calls the Bot API as a bot would, the rest act as people do."""

    def __init__(self, server: Any, http: httpx.AsyncClient) -> None:
        self.server = server
        self.http = http

    async def api(self, method: str, **params: Any) -> httpx.Response:
        return await self.http.post(f"/bot{self.server.token}/{method}", json=params)

    async def ok(self, method: str, **params: Any) -> Any:
        reply = await self.api(method, **params)
        body = reply.json()
        assert reply.status_code == 200 and body["ok"] is True, body
        return body["result"]

    async def refused(self, method: str, status: int, description: str, **params: Any) -> dict[str, Any]:
        reply = await self.api(method, **params)
        body = reply.json()
        assert (reply.status_code, body["ok"], body["error_code"]) == (status, False, status), body
        assert body["description"] == description, body
        return body

    async def control(self, verb: str, path: str, body: Any = None, status: int = 200) -> Any:
        reply = await self.http.request(verb, path, json=body)
        assert reply.status_code == status, reply.text
        return reply.json()

    async def user(self, user_id: int, first_name: str, *, says: str | None = "/start") -> dict[str, Any]:
        user = await self.control("POST", "/sim/users", {"user_id": user_id, "first_name": first_name,
                                                         "username": first_name.lower()})
        if says is not None:
            await self.say(user_id, user_id, says)
        return user

    async def say(self, chat_id: int, user_id: int, text: str, **extra: Any) -> dict[str, Any]:
        return await self.control("POST", f"/sim/chats/{chat_id}/messages", {"user_id": user_id, "text": text, **extra})

    async def press(self, chat_id: int, user_id: int, message_id: int, data: str) -> dict[str, Any]:
        return await self.control("POST", f"/sim/chats/{chat_id}/callbacks",
                                  {"user_id": user_id, "message_id": message_id, "data": data})

    async def messages(self, chat_id: int) -> list[dict[str, Any]]:
        return await self.control("GET", f"/sim/chats/{chat_id}/messages")


@pytest.fixture
async def sim(start_sim_telegram):
    server = await start_sim_telegram()
    async with httpx.AsyncClient(base_url=server.url, timeout=15) as http:
        yield Sim(server, http)


def aiogram_bot(server: Any, token: str | None = None) -> Bot:
    return Bot(token or server.token, session=AiohttpSession(api=TelegramAPIServer.from_base(server.url)))


async def test_the_bot_api_answers_in_telegrams_envelope_and_checks_the_token(sim):
    me = await sim.ok("getMe")
    assert me == {"id": 123456, "is_bot": True, "first_name": "Durabot (sim)", "username": "durabot_sim_bot",
                  "can_join_groups": True, "can_read_all_group_messages": False, "supports_inline_queries": False,
                  "can_connect_to_business": False, "has_main_web_app": False}
    # GET with a query string, a form body and a method name in any case work as on Telegram.
    assert (await sim.http.get(f"/bot{sim.server.token}/GETME")).json()["result"]["id"] == 123456
    form = await sim.http.post(f"/bot{sim.server.token}/getUpdates", data={"timeout": "0", "limit": "5"})
    assert form.json() == {"ok": True, "result": []}

    wrong = await sim.http.get("/bot123456:not-the-token/getMe")
    assert wrong.status_code == 401 and wrong.json() == {"ok": False, "error_code": 401, "description": "Unauthorized"}
    await sim.refused("sendPhoto", 404, "Not Found")
    assert (await sim.http.get("/getMe")).json()["error_code"] == 404


async def test_updates_get_increasing_ids_and_an_offset_forgets_the_older_ones(sim):
    await sim.user(ANN, "Ann", says=None)
    sent = [await sim.say(ANN, ANN, f"message {n}") for n in range(4)]
    ids = [s["update_id"] for s in sent]
    assert ids == list(range(1000, 1004)) and [s["message_id"] for s in sent] == [1, 2, 3, 4]

    updates = await sim.ok("getUpdates")
    assert [u["update_id"] for u in updates] == ids
    message = updates[0]["message"]
    assert message["from"] == {"id": ANN, "is_bot": False, "first_name": "Ann", "username": "ann"}
    assert message["chat"] == {"id": ANN, "type": "private", "first_name": "Ann", "username": "ann"}
    assert message["text"] == "message 0" and isinstance(message["date"], int)

    assert [u["update_id"] for u in await sim.ok("getUpdates", offset=ids[2], limit=1)] == [ids[2]]
    # Confirmed by that offset, the first two are gone for good, even for offset 0.
    assert [u["update_id"] for u in await sim.ok("getUpdates", offset=0)] == ids[2:]
    assert [u["update_id"] for u in await sim.ok("getUpdates", offset=-1)] == ids[3:]
    # An offset far ahead of the queue (a stored offset after a reset) reads from the oldest kept update.
    assert [u["update_id"] for u in await sim.ok("getUpdates", offset=ids[3] + 500)] == ids[3:]
    assert await sim.ok("getUpdates", offset=ids[3] + 1) == []
    assert (await sim.control("GET", "/sim/updates"))["pending"] == []

    # limit is clamped into 1..100, as the Bot API server does.
    more = [(await sim.say(ANN, ANN, f"again {n}"))["update_id"] for n in range(3)]
    assert [u["update_id"] for u in await sim.ok("getUpdates", offset=more[0], limit=0)] == more[:1]
    assert len(await sim.ok("getUpdates", offset=more[0], limit=500, timeout=0)) == 1  # 0.5 s repeat: limit 1


async def test_long_polling_waits_for_an_update_and_a_second_poller_ends_the_first(sim):
    await sim.user(ANN, "Ann", says=None)
    started = time.monotonic()
    assert await sim.ok("getUpdates", timeout=1) == []
    assert 0.9 <= time.monotonic() - started < 2.5

    poll = asyncio.create_task(sim.ok("getUpdates", offset=0, timeout=10))
    await asyncio.sleep(0.2)
    assert not poll.done()
    started = time.monotonic()
    queued = await sim.say(ANN, ANN, "wake up")
    updates = await asyncio.wait_for(poll, 2)
    assert [u["update_id"] for u in updates] == [queued["update_id"]] and time.monotonic() - started < 1

    offset = queued["update_id"] + 1
    first = asyncio.create_task(sim.api("getUpdates", offset=offset, timeout=10))
    await asyncio.sleep(0.2)
    second = asyncio.create_task(sim.ok("getUpdates", offset=offset, timeout=10))
    ended = (await asyncio.wait_for(first, 2)).json()
    assert ended["error_code"] == 409 and ended["description"].startswith("Conflict: terminated by other getUpdates")
    assert not second.done()
    woken = await sim.say(ANN, ANN, "for the second poller")
    assert [u["update_id"] for u in await asyncio.wait_for(second, 2)] == [woken["update_id"]]

    # Polling again with the same offset right away waits (Telegram's brake on busy loops) instead of
    # answering at once: the update that comes 0.3 s later is in the answer of a timeout-0 call.
    offset = woken["update_id"] + 1
    assert await sim.ok("getUpdates", offset=offset, timeout=0) == []
    later = asyncio.create_task(sim.ok("getUpdates", offset=offset, timeout=0))
    await asyncio.sleep(0.3)
    assert not later.done()
    follow = await sim.say(ANN, ANN, "follow-up")
    assert [u["update_id"] for u in await asyncio.wait_for(later, 4)] == [follow["update_id"]]


async def test_send_message_applies_telegrams_limits_and_words(sim):
    await sim.user(ANN, "Ann")
    await sim.control("POST", "/sim/users", {"user_id": BOB, "first_name": "Bob"})
    await sim.refused("sendMessage", 403, "Forbidden: bot can't initiate conversation with a user", chat_id=BOB,
                      text="hi")
    await sim.refused("sendMessage", 400, "Bad Request: chat not found", chat_id=999, text="hi")
    await sim.refused("sendMessage", 400, "Bad Request: chat_id is empty", text="hi")
    await sim.refused("sendMessage", 400, "Bad Request: message text is empty", chat_id=ANN, text="")
    await sim.refused("sendMessage", 400, "Bad Request: text must be non-empty", chat_id=ANN, text=" \n ")

    assert (await sim.ok("sendMessage", chat_id=ANN, text="x" * 4096))["text"] == "x" * 4096
    # 4095 letters and one emoji are 4097 UTF-16 code units.
    await sim.refused("sendMessage", 400, "Bad Request: message is too long", chat_id=ANN, text="x" * 4095 + "😀")
    # The limit counts the text after markup is parsed.
    assert await sim.ok("sendMessage", chat_id=ANN, text="<b>" + "x" * 4096 + "</b>", parse_mode="HTML")

    html = await sim.ok("sendMessage", chat_id=ANN, parse_mode="HTML",
                        text='<b>Profit</b> &lt;5%&gt; <a href="https://example.com">see</a> <code>id=7</code>')
    assert html["text"] == "Profit <5%> see id=7"
    assert html["entities"] == [{"type": "bold", "offset": 0, "length": 6},
                                {"type": "text_link", "offset": 12, "length": 3, "url": "https://example.com/"},
                                {"type": "code", "offset": 16, "length": 4}]
    cant = "Bad Request: can't parse entities: "
    await sim.refused("sendMessage", 400, cant + 'Unsupported start tag "table" at byte offset 0', chat_id=ANN,
                      text="<table>x</table>", parse_mode="HTML")
    await sim.refused("sendMessage", 400, cant + 'Can\'t find end tag corresponding to start tag "b"', chat_id=ANN,
                      text="<b>open", parse_mode="HTML")
    await sim.refused("sendMessage", 400, cant + 'Unmatched end tag at byte offset 7, expected "</i>", found "</b>"',
                      chat_id=ANN, text="<b><i>x</b></i>", parse_mode="HTML")
    await sim.refused("sendMessage", 400, cant + 'Unsupported start tag "" at byte offset 2', chat_id=ANN,
                      text="1 < 2", parse_mode="HTML")
    await sim.refused("sendMessage", 400, cant + "Character '.' is reserved and must be escaped with the preceding "
                      "'\\'", chat_id=ANN, text="Profit 1.5%", parse_mode="MarkdownV2")
    v2 = await sim.ok("sendMessage", chat_id=ANN, text="*Profit* 1\\.5%", parse_mode="MarkdownV2")
    assert v2["text"] == "Profit 1.5%" and v2["entities"] == [{"type": "bold", "offset": 0, "length": 6}]
    await sim.refused("sendMessage", 400, "Bad Request: unsupported parse_mode", chat_id=ANN, text="x",
                      parse_mode="BBCode")

    long_data = {"inline_keyboard": [[{"text": "Go", "callback_data": "x" * 65}]]}
    await sim.refused("sendMessage", 400, "Bad Request: BUTTON_DATA_INVALID", chat_id=ANN, text="x",
                      reply_markup=long_data)
    # 64 bytes of UTF-8 are fine even when fewer characters: "é" is two bytes.
    assert await sim.ok("sendMessage", chat_id=ANN, text="x",
                        reply_markup={"inline_keyboard": [[{"text": "Go", "callback_data": "é" * 32}]]})
    await sim.refused("sendMessage", 400, "Bad Request: BUTTON_DATA_INVALID", chat_id=ANN, text="x",
                      reply_markup={"inline_keyboard": [[{"text": "Go", "callback_data": "é" * 32 + "x"}]]})
    await sim.refused("sendMessage", 400, "Bad Request: can't parse inline keyboard button: Text buttons are "
                      "unallowed in the inline keyboard", chat_id=ANN, text="x",
                      reply_markup={"inline_keyboard": [[{"text": "Go"}]]})
    await sim.refused("sendMessage", 400, "Bad Request: BUTTON_TEXT_INVALID", chat_id=ANN, text="x",
                      reply_markup={"inline_keyboard": [[{"text": " ", "callback_data": "go"}]]})
    await sim.refused("sendMessage", 400, "Bad Request: reply markup is too long", chat_id=ANN, text="x",
                      reply_markup={"inline_keyboard": [[{"text": "b", "callback_data": str(n)}] for n in range(101)]})

    ids = [m["message_id"] for m in await sim.messages(ANN)]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)


async def test_buttons_callbacks_and_edits_behave_as_on_telegram(sim):
    await sim.user(ANN, "Ann")
    sent = await sim.ok("sendMessage", chat_id=ANN, text="Close all?", reply_markup=KEYBOARD)
    assert sent["reply_markup"] == KEYBOARD and sent["from"]["is_bot"] is True

    pressed = await sim.press(ANN, ANN, sent["message_id"], "yes")
    updates = await sim.ok("getUpdates", offset=pressed["update_id"])
    query = updates[0]["callback_query"]
    assert query["id"] == pressed["callback_query_id"] and query["data"] == "yes"
    assert query["from"]["id"] == ANN and query["message"]["message_id"] == sent["message_id"]
    assert query["message"]["reply_markup"] == KEYBOARD and query["chat_instance"]
    await sim.control("POST", f"/sim/chats/{ANN}/callbacks", {"user_id": ANN, "message_id": sent["message_id"],
                                                              "data": "maybe"}, status=400)

    assert await sim.ok("answerCallbackQuery", callback_query_id=query["id"], text="Closing…") is True
    await sim.refused("answerCallbackQuery", 400, "Bad Request: query is too old and response timeout expired or "
                      "query ID is invalid", callback_query_id=query["id"])
    answers = await sim.control("GET", "/sim/callback_answers")
    assert [(a["callback_query_id"], a["text"], a["show_alert"]) for a in answers] == [(query["id"], "Closing…",
                                                                                         False)]

    not_modified = ("Bad Request: message is not modified: specified new message content and reply markup are "
                    "exactly the same as a current content and reply markup of the message")
    await sim.refused("editMessageText", 400, not_modified, chat_id=ANN, message_id=sent["message_id"],
                      text="Close all?", reply_markup=KEYBOARD)
    # An edit without reply_markup drops the keyboard, as on Telegram.
    edited = await sim.ok("editMessageText", chat_id=ANN, message_id=sent["message_id"], text="Closed 2 trades")
    assert edited["text"] == "Closed 2 trades" and "reply_markup" not in edited and edited["edit_date"] > 0
    again = await sim.ok("editMessageReplyMarkup", chat_id=ANN, message_id=sent["message_id"], reply_markup=KEYBOARD)
    assert again["reply_markup"] == KEYBOARD
    await sim.refused("editMessageReplyMarkup", 400, not_modified, chat_id=ANN, message_id=sent["message_id"],
                      reply_markup=KEYBOARD)
    await sim.refused("editMessageText", 400, "Bad Request: message to edit not found", chat_id=ANN, message_id=99,
                      text="x")
    await sim.refused("editMessageText", 400, "Bad Request: message can't be edited", chat_id=ANN, message_id=1,
                      text="x")

    shown = [m for m in await sim.messages(ANN) if m["message_id"] == sent["message_id"]][0]
    assert shown["from"] == "bot" and shown["text"] == "Closed 2 trades" and shown["edits"] == ["Close all?"]
    assert shown["reply_markup"] == KEYBOARD
    assert (await sim.messages(ANN))[0]["from"] == ANN

    assert await sim.ok("deleteMessage", chat_id=ANN, message_id=sent["message_id"]) is True
    await sim.refused("deleteMessage", 400, "Bad Request: message to delete not found", chat_id=ANN,
                      message_id=sent["message_id"])
    assert [m["message_id"] for m in await sim.messages(ANN)] == [1]


async def test_in_a_group_anyone_can_press_and_the_bot_sees_commands_only(sim):
    await sim.user(ANN, "Ann", says=None)
    await sim.user(BOB, "Bob", says=None)
    added = await sim.control("POST", "/sim/chats", {"chat_id": GROUP, "title": "Traders", "user_id": ANN})
    assert added["type"] == "group" and added["title"] == "Traders"
    joined = (await sim.ok("getUpdates"))[-1]["my_chat_member"]
    assert joined["new_chat_member"]["status"] == "member" and joined["chat"]["id"] == GROUP

    assert (await sim.say(GROUP, BOB, "hello everyone"))["update_id"] is None  # privacy mode
    assert (await sim.say(GROUP, BOB, "/status@other_bot"))["update_id"] is None
    command = await sim.say(GROUP, ANN, "/status@durabot_sim_bot")
    update = (await sim.ok("getUpdates", offset=command["update_id"]))[0]["message"]
    assert update["chat"] == {"id": GROUP, "type": "group", "title": "Traders"}
    assert update["entities"] == [{"type": "bot_command", "offset": 0, "length": 23}]

    sent = await sim.ok("sendMessage", chat_id=GROUP, text="Approve?", reply_markup=KEYBOARD)
    replied = await sim.say(GROUP, BOB, "why?", reply_to_message_id=sent["message_id"])
    assert replied["update_id"] is not None  # a reply to the bot reaches it
    presses = [await sim.press(GROUP, user, sent["message_id"], "yes") for user in (ANN, BOB)]
    updates = await sim.ok("getUpdates", offset=replied["update_id"])
    assert updates[0]["message"]["reply_to_message"]["message_id"] == sent["message_id"]
    pressers = [(u["callback_query"]["from"]["id"], u["callback_query"]["id"]) for u in updates[1:]]
    assert pressers == [(ANN, presses[0]["callback_query_id"]), (BOB, presses[1]["callback_query_id"])]
    await sim.control("POST", f"/sim/chats/{ANN}/messages", {"user_id": BOB, "text": "hi"}, status=400)


async def test_faults_blocking_and_the_request_log(sim):
    await sim.user(ANN, "Ann")
    for rule in ({"method": "sendMessage", "kind": "too_many_requests", "retry_after": 7},
                 {"method": "sendMessage", "kind": "blocked"}, {"method": "sendMessage", "kind": "server_error"},
                 {"method": "sendMessage", "kind": "bad_gateway"}):
        await sim.control("POST", "/sim/faults", rule)
    await sim.control("POST", "/sim/faults", {"method": "sendMessage", "kind": "flood"}, status=400)
    limited = await sim.api("sendMessage", chat_id=ANN, text="hi")
    assert limited.status_code == 429 and limited.headers["retry-after"] == "7"
    assert limited.json() == {"ok": False, "error_code": 429, "description": "Too Many Requests: retry after 7",
                              "parameters": {"retry_after": 7}}
    await sim.refused("sendMessage", 403, "Forbidden: bot was blocked by the user", chat_id=ANN, text="hi")
    await sim.refused("sendMessage", 500, "Internal Server Error", chat_id=ANN, text="hi")
    gateway = await sim.api("sendMessage", chat_id=ANN, text="hi")
    assert gateway.status_code == 502 and gateway.headers["content-type"].startswith("text/html")
    assert await sim.ok("sendMessage", chat_id=ANN, text="hi")
    await sim.control("POST", "/sim/faults", {"method": "*", "kind": "server_error", "count": 5})
    assert len(await sim.control("DELETE", "/sim/faults")) == 0
    assert await sim.ok("getMe")

    await sim.control("POST", f"/sim/users/{ANN}/blocked", {"blocked": True})
    await sim.refused("sendMessage", 403, "Forbidden: bot was blocked by the user", chat_id=ANN, text="hi")
    await sim.refused("sendChatAction", 403, "Forbidden: bot was blocked by the user", chat_id=ANN, action="typing")
    kicked = (await sim.ok("getUpdates"))[-1]
    member = kicked["my_chat_member"]
    assert (member["from"]["id"], member["new_chat_member"]["status"]) == (ANN, "kicked")
    await sim.say(ANN, ANN, "/start")  # writing to the bot again unblocks it, as "Restart" does
    back = await sim.ok("getUpdates", offset=kicked["update_id"] + 1)
    assert back[0]["my_chat_member"]["new_chat_member"]["status"] == "member" and back[1]["message"]["text"] == "/start"
    assert await sim.ok("sendChatAction", chat_id=ANN, action="typing") is True
    assert (await sim.control("GET", f"/sim/chats/{ANN}"))["action"] == "typing"
    await sim.refused("sendChatAction", 400, "Bad Request: wrong parameter action in request", chat_id=ANN,
                      action="dancing")

    log = await sim.control("GET", "/sim/requests")
    faulted = [(r["method"], r["status"], r["fault"]) for r in log if r["fault"]]
    assert faulted == [("sendMessage", 429, "too_many_requests"), ("sendMessage", 403, "blocked"),
                       ("sendMessage", 500, "server_error"), ("sendMessage", 502, "bad_gateway")]
    assert log[0]["params"] == {"chat_id": str(ANN), "text": "hi"} and sim.server.token not in str(log)
    assert [r["seq"] for r in log] == sorted(r["seq"] for r in log)
    assert await sim.control("DELETE", "/sim/requests") == []


async def test_commands_are_checked_and_kept_per_scope(sim):
    commands = [{"command": "status", "description": "Open trades"}, {"command": "help", "description": "Help"}]
    assert await sim.ok("setMyCommands", commands=commands) is True
    assert await sim.ok("getMyCommands") == commands
    assert await sim.ok("getMyCommands", scope={"type": "all_private_chats"}) == []
    await sim.refused("setMyCommands", 400, "Bad Request: BOT_COMMAND_INVALID",
                      commands=[{"command": "Status", "description": "x"}])
    await sim.refused("setMyCommands", 400, "Bad Request: command description must be non-empty",
                      commands=[{"command": "status", "description": " "}])
    assert await sim.ok("deleteMyCommands") is True and await sim.ok("getMyCommands") == []
    assert await sim.ok("deleteWebhook", drop_pending_updates=True) is True
    assert (await sim.ok("getWebhookInfo"))["url"] == ""


async def test_a_restarted_sim_keeps_people_chats_and_update_ids(start_sim_telegram, tmp_path):
    state_dir = tmp_path / "kept"
    first = await start_sim_telegram(state_dir=state_dir)
    async with httpx.AsyncClient(base_url=first.url) as http:
        sim = Sim(first, http)
        await sim.user(ANN, "Ann")
        await sim.ok("sendMessage", chat_id=ANN, text="Hello", reply_markup=KEYBOARD)
        pending = await sim.say(ANN, ANN, "/status")
    await first.stop()
    second = await start_sim_telegram(state_dir=state_dir, first_update_id=1)
    async with httpx.AsyncClient(base_url=second.url) as http:
        sim = Sim(second, http)
        assert [m["text"] for m in await sim.messages(ANN)] == ["/start", "Hello", "/status"]
        assert [u["update_id"] for u in await sim.ok("getUpdates")] == [pending["update_id"] - 1,
                                                                        pending["update_id"]]
        assert (await sim.say(ANN, ANN, "next"))["update_id"] == pending["update_id"] + 1
        assert (await sim.ok("sendMessage", chat_id=ANN, text="x"))["message_id"] == 5


async def test_the_web_chat_page_is_one_self_contained_page(sim):
    page = await sim.http.get("/chat")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    for needle in ('id="userSelect"', 'id="messages"', 'id="send"', "/sim/chats/", "/callbacks", "textContent"):
        assert needle in page.text
    assert "innerHTML" not in page.text and "<script src" not in page.text
    assert (await sim.http.get("/", follow_redirects=False)).headers["location"] == "/chat"


async def test_aiogram_talks_to_the_sim_and_maps_every_error(sim):
    await sim.user(ANN, "Ann", says=None)
    bot = aiogram_bot(sim.server)
    try:
        me = await bot.get_me()
        assert (me.id, me.username, me.is_bot) == (123456, "durabot_sim_bot", True)
        assert await bot.set_my_commands([BotCommand(command="status", description="Open trades")])
        assert [c.command for c in await bot.get_my_commands()] == ["status"]

        said = await sim.say(ANN, ANN, "/start LINK-CODE")
        updates = await bot.get_updates(offset=0, timeout=1)
        assert [u.update_id for u in updates] == [said["update_id"]]
        assert updates[0].message.text == "/start LINK-CODE" and updates[0].message.from_user.id == ANN

        keyboard = InlineKeyboardBuilder()
        keyboard.button(text="Yes", callback_data="confirm:7")
        keyboard.button(text="No", callback_data="cancel:7")
        sent = await bot.send_message(ANN, "<b>Close</b> trade 7?", parse_mode="HTML",
                                      reply_markup=keyboard.as_markup())
        assert sent.text == "Close trade 7?" and sent.entities[0].type == "bold"
        assert [b.callback_data for b in sent.reply_markup.inline_keyboard[0]] == ["confirm:7", "cancel:7"]

        poll = asyncio.create_task(bot.get_updates(offset=said["update_id"] + 1, timeout=5))
        await asyncio.sleep(0.2)
        pressed = await sim.press(ANN, ANN, sent.message_id, "confirm:7")
        query = (await asyncio.wait_for(poll, 3))[0].callback_query
        assert (query.id, query.data, query.from_user.id) == (pressed["callback_query_id"], "confirm:7", ANN)
        assert query.message.message_id == sent.message_id
        assert await bot.answer_callback_query(query.id, text="Closing")
        with pytest.raises(TelegramBadRequest, match="query is too old"):
            await bot.answer_callback_query(query.id)
        edited = await bot.edit_message_text("Trade 7 closed", chat_id=ANN, message_id=sent.message_id)
        assert edited.text == "Trade 7 closed" and edited.reply_markup is None and edited.edit_date
        with pytest.raises(TelegramBadRequest, match="message is not modified"):
            await bot.edit_message_text("Trade 7 closed", chat_id=ANN, message_id=sent.message_id)
        with pytest.raises(TelegramBadRequest, match="message is too long"):
            await bot.send_message(ANN, "x" * 4097)
        with pytest.raises(TelegramBadRequest, match="can't parse entities"):
            await bot.send_message(ANN, "<b>open", parse_mode="HTML")

        await sim.control("POST", "/sim/faults", {"method": "sendMessage", "kind": "too_many_requests",
                                                  "retry_after": 3})
        with pytest.raises(TelegramRetryAfter) as flood:
            await bot.send_message(ANN, "hi")
        assert flood.value.retry_after == 3
        await sim.control("POST", "/sim/faults", {"method": "sendMessage", "kind": "server_error"})
        with pytest.raises(TelegramServerError):
            await bot.send_message(ANN, "hi")
        await sim.control("POST", f"/sim/users/{ANN}/blocked", {"blocked": True})
        with pytest.raises(TelegramForbiddenError, match="bot was blocked by the user"):
            await bot.send_message(ANN, "hi")
        with pytest.raises(TelegramNotFound):
            await bot.session.make_request(bot, _UnknownMethod())

        offset = (await sim.control("GET", "/sim/updates"))["next_update_id"]  # past the block's my_chat_member
        first = asyncio.create_task(bot.get_updates(offset=offset, timeout=5))
        await asyncio.sleep(0.2)
        second = asyncio.create_task(bot.get_updates(offset=offset, timeout=5))
        with pytest.raises(TelegramConflictError):
            await asyncio.wait_for(first, 3)
        await sim.say(ANN, ANN, "hello again")  # unblocks first: a my_chat_member update, then the message
        woken = await asyncio.wait_for(second, 3)
        assert woken[0].my_chat_member.new_chat_member.status == "member"
    finally:
        await bot.session.close()
    stranger = aiogram_bot(sim.server, token="123456:wrong-token")
    try:
        with pytest.raises(TelegramUnauthorizedError):
            await stranger.get_me()
    finally:
        await stranger.session.close()


class _UnknownMethod:
    """A method the sim (and Telegram) does not have, sent through aiogram's own session."""

    __api_method__ = "sendHologram"
    __returning__ = bool

    def model_dump(self, **_: Any) -> dict[str, Any]:
        return {}


async def test_an_aiogram_dispatcher_polls_the_sim_and_handles_commands_and_buttons(sim):
    await sim.user(ANN, "Ann", says=None)
    bot = aiogram_bot(sim.server)
    dispatcher = Dispatcher()

    @dispatcher.message(CommandStart())
    async def start(message: Message, command: CommandObject) -> None:
        keyboard = InlineKeyboardBuilder()
        keyboard.button(text="Link", callback_data=f"link:{command.args}")
        await message.answer(f"Link with code {command.args}?", reply_markup=keyboard.as_markup())

    @dispatcher.message(Command("status"))
    async def status(message: Message) -> None:
        await message.answer("<b>No open trades</b>", parse_mode="HTML")

    @dispatcher.callback_query(F.data.startswith("link:"))
    async def link(query: CallbackQuery) -> None:
        await query.answer("Linked")
        await query.message.edit_text("Linked ✔")

    polling = asyncio.create_task(dispatcher.start_polling(bot, polling_timeout=1, handle_signals=False,
                                                           close_bot_session=False))

    async def wait_for(predicate, what: str) -> list[dict[str, Any]]:
        deadline = time.monotonic() + 8
        while time.monotonic() < deadline:
            shown = await sim.messages(ANN)
            if predicate(shown):
                return shown
            await asyncio.sleep(0.05)
        raise AssertionError(f"timed out waiting for {what}: {shown}")

    try:
        await sim.say(ANN, ANN, "/start ABC123")
        shown = await wait_for(lambda m: len(m) == 2, "the bot's question")
        question = shown[1]
        assert question["from"] == "bot" and question["text"] == "Link with code ABC123?"
        pressed = await sim.press(ANN, ANN, question["message_id"], "link:ABC123")
        await wait_for(lambda m: m[1]["text"] == "Linked ✔", "the edit")
        answers = await sim.control("GET", "/sim/callback_answers")
        assert [(a["callback_query_id"], a["text"]) for a in answers] == [(pressed["callback_query_id"], "Linked")]
        await sim.say(ANN, ANN, "/status")
        shown = await wait_for(lambda m: len(m) == 4, "the status answer")
        assert shown[3]["text"] == "No open trades" and shown[3]["entities"][0]["type"] == "bold"
        calls = [r["method"] for r in await sim.control("GET", "/sim/requests")]
        assert {"getMe", "getUpdates", "sendMessage", "answerCallbackQuery", "editMessageText"} <= set(calls)
    finally:
        await dispatcher.stop_polling()
        await asyncio.wait_for(polling, 5)
        await bot.session.close()
