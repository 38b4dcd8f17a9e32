"""The Bot API methods the sim serves, each checking what Telegram checks, in Telegram's order and words.

Method names are case-insensitive, as on Telegram. A method the sim lacks answers 404 "Not Found".
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Awaitable, Callable
from typing import Any

from sim.telegram.config import SimTelegramConfig
from sim.telegram.errors import (
    bad_request,
    blocked,
    cant_initiate,
    chat_not_found,
    not_found,
    not_modified,
    query_too_old,
)
from sim.telegram.markup import Markup, parse_reply_markup
from sim.telegram.params import Params, to_integer
from sim.telegram.state import SimState
from sim.telegram.text import check_length, formatted_text
from sim.telegram.world import CHAT_ACTION_S, SimChat, SimMessage, now_s

CHAT_ACTIONS = frozenset({"typing", "upload_photo", "record_video", "upload_video", "record_voice", "upload_voice",
                          "upload_document", "choose_sticker", "find_location", "record_video_note",
                          "upload_video_note"})
COMMAND_SCOPES = frozenset({"default", "all_private_chats", "all_group_chats", "all_chat_administrators", "chat",
                            "chat_administrators", "chat_member"})
_COMMAND_NAME = re.compile(r"^[a-z0-9_]{1,32}$")
MAX_COMMANDS = 100
REPEAT_POLL_WINDOW_S = 3.0  # telegram-bot-api: the same offset again within 3 s waits at least 3 s
REPEAT_POLL_LIMIT_WINDOW_S = 0.5  # … and within 0.5 s gets at most one update

Method = Callable[[Params], Awaitable[Any]]


class BotMethods:
    def __init__(self, config: SimTelegramConfig, state: SimState) -> None:
        self.config = config
        self.state = state
        self._previous_poll_offset: int | None = None
        self._previous_poll_start = 0.0
        self.table: dict[str, Method] = {
            "getme": self.get_me, "getupdates": self.get_updates, "deletewebhook": self.delete_webhook,
            "getwebhookinfo": self.get_webhook_info, "setmycommands": self.set_my_commands,
            "getmycommands": self.get_my_commands, "deletemycommands": self.delete_my_commands,
            "sendmessage": self.send_message, "editmessagetext": self.edit_message_text,
            "editmessagereplymarkup": self.edit_message_reply_markup, "deletemessage": self.delete_message,
            "answercallbackquery": self.answer_callback_query, "sendchataction": self.send_chat_action,
        }

    def knows(self, method: str) -> bool:
        return method.lower() in self.table

    async def call(self, method: str, params: Params) -> Any:
        handler = self.table.get(method.lower())
        if handler is None:
            raise not_found()
        return await handler(params)

    # Shared checks.
    def _chat(self, params: Params) -> SimChat:
        raw = params.text("chat_id").strip()
        if raw == "":
            raise bad_request("chat_id is empty")
        chat = self.state.world.chats.get(to_integer(raw)) if not raw.startswith("@") else None
        if chat is None:
            raise chat_not_found()
        return chat

    def _check_writable(self, chat: SimChat) -> None:
        """Telegram's 403s for a private chat: the person blocked the bot, or never wrote to it."""
        if chat.kind != "private":
            return
        user = self.state.world.users[chat.chat_id]
        if user.blocked:
            raise blocked()
        if not user.started:
            raise cant_initiate()

    def _text(self, params: Params) -> tuple[str, list[dict[str, Any]]]:
        return formatted_text(params.text("text"), params.text("parse_mode"), params.text("entities"))

    def _markup(self, params: Params) -> Markup:
        return parse_reply_markup(params.json("reply_markup", "reply keyboard markup"))

    def _message_to_edit(self, params: Params) -> tuple[SimChat, SimMessage]:
        if not params.has("chat_id") and not params.has("message_id"):
            if params.has("inline_message_id"):
                raise bad_request("MESSAGE_ID_INVALID")  # the sim has no inline mode, so no inline messages
            raise bad_request("message identifier is not specified")
        chat = self._chat(params)
        message_id = params.integer("message_id")
        message = chat.message(message_id) if message_id > 0 else None
        if message is None:
            raise bad_request("message to edit not found")
        if message.sender is not None:
            raise bad_request("message can't be edited")
        self._check_writable(chat)
        return chat, message

    def _edited(self, chat: SimChat, message: SimMessage) -> dict[str, Any]:
        message.edit_date = now_s()
        return self.state.world.message_json(chat, message)

    # Methods.
    async def get_me(self, params: Params) -> dict[str, Any]:
        return {**self.state.world.bot_user(), "can_join_groups": True,
                "can_read_all_group_messages": not self.config.privacy_mode, "supports_inline_queries": False,
                "can_connect_to_business": False, "has_main_web_app": False}

    async def get_updates(self, params: Params) -> list[dict[str, Any]]:
        offset = params.integer("offset", 0)
        limit = params.integer("limit", 100, 1, 100)
        timeout = params.integer("timeout", 0, 0, 50)
        if params.has("allowed_updates"):
            kinds = params.json("allowed_updates", "allowed updates")
            if isinstance(kinds, list):
                self.state.updates.set_allowed([kind for kind in kinds if isinstance(kind, str)])
        now = time.monotonic()
        if self.config.throttle_repeated_polls and offset == self._previous_poll_offset:
            if timeout < 3 and now < self._previous_poll_start + REPEAT_POLL_WINDOW_S:
                timeout = 3
            if now < self._previous_poll_start + REPEAT_POLL_LIMIT_WINDOW_S:
                limit = 1
        self._previous_poll_offset, self._previous_poll_start = offset, now
        return await self.state.updates.get(offset, limit, timeout)

    async def delete_webhook(self, params: Params) -> bool:
        if params.boolean("drop_pending_updates"):
            self.state.updates.drop_all()
        return True

    async def get_webhook_info(self, params: Params) -> dict[str, Any]:
        info: dict[str, Any] = {"url": "", "has_custom_certificate": False,
                                "pending_update_count": len(self.state.updates.pending)}
        if self.state.updates.allowed_list:
            info["allowed_updates"] = self.state.updates.allowed_list
        return info

    def _commands_key(self, params: Params) -> str:
        scope = params.json("scope", "BotCommandScope")
        if scope is None:
            scope = {"type": "default"}
        if not isinstance(scope, dict) or scope.get("type") not in COMMAND_SCOPES:
            raise bad_request("unsupported bot command scope type")
        if scope["type"] in ("chat", "chat_administrators", "chat_member"):
            if str(scope.get("chat_id", "")).strip() == "":
                raise bad_request("chat_id is empty")
            if self.state.world.chats.get(to_integer(str(scope["chat_id"]))) is None:
                raise chat_not_found()
            member = to_integer(str(scope.get("user_id", "")))
            if scope["type"] == "chat_member" and member not in self.state.world.users:
                raise bad_request("user not found")
        language = params.text("language_code")
        if language and not re.fullmatch(r"[a-z]{2}", language):
            raise bad_request("invalid language code specified")
        canonical = {key: scope[key] for key in ("type", "chat_id", "user_id") if key in scope}
        return json.dumps(canonical, sort_keys=True) + "|" + language

    async def set_my_commands(self, params: Params) -> bool:
        raw = params.json("commands", "commands")
        commands = [] if raw is None else raw
        if not isinstance(commands, list):
            raise bad_request("expected an Array of BotCommand")
        checked = []
        for command in commands:
            if not isinstance(command, dict):
                raise bad_request("can't parse BotCommand: expected an Object")
            for field in ("command", "description"):
                if not isinstance(command.get(field), str):
                    raise bad_request(f'can\'t parse BotCommand: Field "{field}" must be of type String')
            name = command["command"].strip().removeprefix("/")
            description = command["description"].strip()
            if not name:
                raise bad_request("command must be non-empty")
            if len(name) > 32:
                raise bad_request("command length must not exceed 32")
            if not _COMMAND_NAME.match(name):
                raise bad_request("BOT_COMMAND_INVALID")
            if not description:
                raise bad_request("command description must be non-empty")
            if len(description) > 256:
                raise bad_request("command description length must not exceed 256")
            checked.append({"command": name, "description": description})
        if len(checked) > MAX_COMMANDS:
            raise bad_request("BOT_COMMANDS_TOO_MUCH")
        key = self._commands_key(params)
        if checked:
            self.state.world.commands[key] = checked
        else:
            self.state.world.commands.pop(key, None)
        return True

    async def get_my_commands(self, params: Params) -> list[dict[str, str]]:
        return list(self.state.world.commands.get(self._commands_key(params), []))

    async def delete_my_commands(self, params: Params) -> bool:
        self.state.world.commands.pop(self._commands_key(params), None)
        return True

    def _reply_to(self, chat: SimChat, params: Params) -> int | None:
        reply = params.json("reply_parameters", "reply parameters")
        if isinstance(reply, dict):
            message_id = to_integer(str(reply.get("message_id", "")))
            allow_missing = reply.get("allow_sending_without_reply") is True
        elif params.has("reply_to_message_id"):
            message_id = params.integer("reply_to_message_id")
            allow_missing = params.boolean("allow_sending_without_reply")
        else:
            return None
        if message_id > 0 and chat.message(message_id) is not None:
            return message_id
        if allow_missing:
            return None
        raise bad_request("message to be replied not found")

    async def send_message(self, params: Params) -> dict[str, Any]:
        text, entities = self._text(params)
        markup = self._markup(params)
        chat = self._chat(params)
        self._check_writable(chat)
        reply_to = self._reply_to(chat, params)
        check_length(text)
        message = chat.add(None, text, entities=entities, reply_markup=markup.inline, other_markup=markup.other,
                           reply_to_message_id=reply_to)
        return self.state.world.message_json(chat, message)

    async def edit_message_text(self, params: Params) -> dict[str, Any]:
        text, entities = self._text(params)
        markup = self._markup(params)
        if markup.other is not None:
            raise bad_request("inline keyboard expected")
        chat, message = self._message_to_edit(params)
        check_length(text)
        # Without reply_markup an edit removes the inline keyboard, as on Telegram.
        if (text, entities, markup.inline) == (message.text, message.entities, message.reply_markup):
            raise not_modified()
        if text != message.text:
            message.edits.append(message.text)
        message.text, message.entities, message.reply_markup = text, entities, markup.inline
        return self._edited(chat, message)

    async def edit_message_reply_markup(self, params: Params) -> dict[str, Any]:
        markup = self._markup(params)
        if markup.other is not None:
            raise bad_request("inline keyboard expected")
        chat, message = self._message_to_edit(params)
        if markup.inline == message.reply_markup:
            raise not_modified()
        message.reply_markup = markup.inline
        return self._edited(chat, message)

    async def delete_message(self, params: Params) -> bool:
        chat = self._chat(params)
        message_id = params.integer("message_id")
        message = chat.message(message_id) if message_id > 0 else None
        if message is None:
            raise bad_request("message to delete not found")
        message.deleted = True
        return True

    async def answer_callback_query(self, params: Params) -> bool:
        raw_id = params.text("callback_query_id").strip()
        query = self.state.world.callback_queries.get(str(to_integer(raw_id))) if raw_id else None
        ttl = self.config.callback_query_ttl_s
        if query is None or query.answer is not None or (ttl is not None and time.time() > query.created + ttl):
            raise query_too_old()
        query.answer = {"callback_query_id": query.query_id, "text": params.text("text") or None,
                        "show_alert": params.boolean("show_alert"), "url": params.text("url") or None,
                        "cache_time": params.integer("cache_time", 0, 0, 24 * 30 * 60 * 60),
                        "user_id": query.user_id, "chat_id": query.chat_id, "message_id": query.message_id,
                        "data": query.data, "answered_at": time.time()}
        self.state.world.answers.append(query.answer)
        return True

    async def send_chat_action(self, params: Params) -> bool:
        chat = self._chat(params)
        self._check_writable(chat)
        action = params.text("action").strip()
        if action not in CHAT_ACTIONS:
            raise bad_request("wrong parameter action in request")
        chat.action, chat.action_until = action, time.time() + CHAT_ACTION_S
        return True

