"""The sim's Telegram as people use it: they register, write in chats, press buttons and block the bot, and
each of those becomes the update Telegram would queue for the bot. The state file keeps it all."""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path
from typing import Any

from sim.telegram.config import SimTelegramConfig
from sim.telegram.markup import callback_buttons
from sim.telegram.text import MAX_TEXT_UTF16, user_entities, utf16_len
from sim.telegram.updates import UpdateQueue
from sim.telegram.world import CallbackQuery, SimChat, SimUser, World, now_s

log = logging.getLogger(__name__)

STATE_FILE = "state.json"
MAX_USER_ID = 2**52  # Telegram's user ids fit in 52 bits


class ControlError(Exception):
    """A refused control request: ``status`` and a sentence saying why."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _optional_name(body: dict[str, Any], name: str, limit: int = 64) -> str | None:
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip() or len(value) > limit:
        raise ControlError(400, f"{name} must be a non-empty string of at most {limit} characters")
    return value.strip()


def _integer(body: dict[str, Any], name: str) -> int:
    value = body.get(name)
    if isinstance(value, str) and value.lstrip("-").isdigit():
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool):
        raise ControlError(400, f"{name} must be an integer")
    return value


class SimState:
    def __init__(self, config: SimTelegramConfig) -> None:
        self.config = config
        self.world = World(config.bot_id, config.bot_username, config.bot_first_name)
        self.updates = UpdateQueue(config.first_update_id)

    # People.
    def user(self, user_id: int) -> SimUser:
        user = self.world.users.get(user_id)
        if user is None:
            raise ControlError(404, f"no user {user_id}: create it with POST /sim/users")
        return user

    def add_user(self, body: dict[str, Any]) -> SimUser:
        """Create a person (or update their names); their private chat has their user id."""
        user_id = _integer(body, "user_id")
        if not 1 <= user_id < MAX_USER_ID or user_id == self.world.bot_id:
            raise ControlError(400, f"user_id must be between 1 and 2**52 - 1 and not the bot's id {self.world.bot_id}")
        first_name = _optional_name(body, "first_name")
        if first_name is None:
            raise ControlError(400, "first_name is required")
        names = {name: _optional_name(body, name) for name in ("username", "last_name")}
        language_code = _optional_name(body, "language_code", 35)
        if names["username"] is not None:
            names["username"] = names["username"].removeprefix("@")
        user = self.world.users.get(user_id)
        if user is None:
            user = self.world.users[user_id] = SimUser(user_id, first_name)
            self.world.chats[user_id] = SimChat(user_id)
        user.first_name, user.username, user.last_name = first_name, names["username"], names["last_name"]
        user.language_code = language_code
        return user

    def set_blocked(self, user_id: int, blocked: bool) -> SimUser:
        """The person blocks (or unblocks) the bot; Telegram tells the bot with a my_chat_member update."""
        user = self.user(user_id)
        if user.blocked != blocked:
            user.blocked = blocked
            statuses = ("member", "kicked") if blocked else ("kicked", "member")
            self._member_update(self.world.chats[user_id], user, *statuses)
        return user

    # Chats.
    def chat(self, chat_id: int) -> SimChat:
        chat = self.world.chats.get(chat_id)
        if chat is None:
            raise ControlError(404, f"no chat {chat_id}: a private chat comes with its user, a group with "
                                    "POST /sim/chats or its first message")
        return chat

    def add_group(self, chat_id: int, title: str | None, by_user: int) -> SimChat:
        """A group with the bot in it; adding the bot makes a my_chat_member update (left → member)."""
        if chat_id >= 0:
            raise ControlError(400, "a group chat has a negative chat_id (private chats are their user's id)")
        user = self.user(by_user)
        chat = self.world.chats.get(chat_id)
        if chat is None:
            chat = self.world.chats[chat_id] = SimChat(chat_id, title or f"Group {chat_id}")
            self._member_update(chat, user, "left", "member")
        elif title:
            chat.title = title
        return chat

    def _member_update(self, chat: SimChat, by: SimUser, old: str, new: str) -> int | None:
        bot = self.world.bot_user()
        new_member: dict[str, Any] = {"user": bot, "status": new}
        if new == "kicked":
            new_member["until_date"] = 0
        return self.updates.push("my_chat_member", {
            "chat": self.world.chat_json(chat), "from": by.telegram(), "date": now_s(),
            "old_chat_member": {"user": bot, "status": old, **({"until_date": 0} if old == "kicked" else {})},
            "new_chat_member": new_member,
        })

    # What people do in chats.
    def user_message(self, chat_id: int, body: dict[str, Any]) -> dict[str, Any]:
        user = self.user(_integer(body, "user_id"))
        text = body.get("text")
        if not isinstance(text, str) or not text.strip():
            raise ControlError(400, "text must be a non-empty string")
        if utf16_len(text) > MAX_TEXT_UTF16:
            raise ControlError(400, f"text is longer than Telegram's {MAX_TEXT_UTF16} characters")
        if chat_id > 0 and chat_id != user.user_id:
            raise ControlError(400, f"chat {chat_id} is the private chat of user {chat_id}; user {user.user_id} "
                                    "can't write in it")
        chat = self.world.chats.get(chat_id) or self.add_group(chat_id, None, user.user_id)
        reply_to = body.get("reply_to_message_id")
        if reply_to is not None:
            reply_to = _integer(body, "reply_to_message_id")
            if chat.message(reply_to) is None:
                raise ControlError(404, f"no message {reply_to} in chat {chat_id}")
        if chat.kind == "private":
            if user.blocked:  # writing to a blocked bot means pressing "Restart": it unblocks first
                self.set_blocked(user.user_id, False)
            user.started = True
        message = chat.add(user.user_id, text, entities=user_entities(text), reply_to_message_id=reply_to)
        update_id = None
        if self._bot_sees(chat, text, reply_to):
            update_id = self.updates.push("message", self.world.message_json(chat, message))
        return {"update_id": update_id, "message_id": message.message_id}

    def _bot_sees(self, chat: SimChat, text: str, reply_to: int | None) -> bool:
        """Privacy mode: in groups the bot gets commands (its own, or without a bot name) and replies to it."""
        if chat.kind == "private" or not self.config.privacy_mode:
            return True
        if reply_to is not None:
            replied = chat.message(reply_to)
            if replied is not None and replied.sender is None:
                return True
        first = text.split(maxsplit=1)[0] if text.split() else ""
        if not first.startswith("/") or len(first) < 2:
            return False
        _, at, bot_name = first.partition("@")
        return not at or bot_name.lower() == self.world.bot_username.lower()

    def press(self, chat_id: int, body: dict[str, Any]) -> dict[str, Any]:
        """A person presses a callback button of a bot message: a callback_query update."""
        user = self.user(_integer(body, "user_id"))
        chat = self.chat(chat_id)
        message_id = _integer(body, "message_id")
        data = body.get("data")
        if not isinstance(data, str):
            raise ControlError(400, "data must be the callback_data of one of the message's buttons")
        if chat.kind == "private" and chat_id != user.user_id:
            raise ControlError(400, f"only user {chat_id} can press buttons in their private chat")
        if chat.kind == "private" and user.blocked:
            raise ControlError(409, f"user {user.user_id} blocked the bot; unblock first")
        message = chat.message(message_id)
        if message is None or message.sender is not None:
            raise ControlError(404, f"no bot message {message_id} in chat {chat_id}")
        if data not in callback_buttons(message.reply_markup):
            raise ControlError(400, f"message {message_id} has no button with callback_data {data!r}")
        query_id = self.world.next_callback_query_id()
        self.world.callback_queries[query_id] = CallbackQuery(query_id, user.user_id, chat_id, message_id, data,
                                                              time.time())
        update_id = self.updates.push("callback_query", {
            "id": query_id, "from": user.telegram(), "message": self.world.message_json(chat, message),
            "chat_instance": str((chat_id * 7919 + self.world.bot_id) % 2**63), "data": data,
        })
        return {"update_id": update_id, "callback_query_id": query_id}

    # The state file.
    def save(self) -> None:
        state_dir = self.config.state_dir
        if state_dir is None:
            return
        state_dir.mkdir(parents=True, exist_ok=True)
        path = state_dir / STATE_FILE
        temporary = path.with_suffix(".tmp")
        temporary.write_text(json.dumps({"world": self.world.dump(), "updates": self.updates.dump()}))
        os.replace(temporary, path)

    def load(self) -> None:
        state_dir = self.config.state_dir
        path = state_dir / STATE_FILE if state_dir is not None else None
        if path is None or not path.is_file():
            return
        fresh_world = World(self.world.bot_id, self.world.bot_username, self.world.bot_first_name)
        fresh_updates = UpdateQueue(self.config.first_update_id)
        try:
            state = json.loads(Path(path).read_text())
            fresh_world.load(state["world"])
            fresh_updates.load(state["updates"])
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            # A damaged file must not keep the sim down: start empty, keep the file for a look.
            log.warning("sim telegram: ignoring unreadable %s (%s)", path, exc)
            return
        self.world, self.updates = fresh_world, fresh_updates
