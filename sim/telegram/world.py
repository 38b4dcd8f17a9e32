"""What the sim's Telegram holds: people, chats with their messages, callback queries and the bot's commands,
with the Bot API's JSON views of them and a plain-dict form for the state file."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any

CHAT_ACTION_S = 5.0  # a chat action shows for 5 s or until the bot's next message, as in Telegram's apps
SUPERGROUP_BELOW = -1_000_000_000_000  # supergroup ids are -100xxxxxxxxxx; other negative ids are basic groups


def now_s() -> int:
    return int(time.time())


@dataclass
class SimUser:
    user_id: int
    first_name: str
    username: str | None = None
    last_name: str | None = None
    language_code: str | None = None
    blocked: bool = False  # the person blocked the bot: sending to their private chat answers 403
    started: bool = False  # the person has written to the bot; before that the bot can't message them

    def telegram(self) -> dict[str, Any]:
        user: dict[str, Any] = {"id": self.user_id, "is_bot": False, "first_name": self.first_name}
        for name in ("last_name", "username", "language_code"):
            if getattr(self, name) is not None:
                user[name] = getattr(self, name)
        return user

    def control(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class SimMessage:
    message_id: int
    chat_id: int
    sender: int | None  # the person's user id; None: the bot
    text: str
    date: int
    entities: list[dict[str, Any]] = field(default_factory=list)
    reply_markup: dict[str, Any] | None = None  # an inline keyboard: part of the message, pressable
    other_markup: dict[str, Any] | None = None  # a reply keyboard, its removal or force_reply, as sent
    reply_to_message_id: int | None = None
    edits: list[str] = field(default_factory=list)  # earlier texts, oldest first
    edit_date: int | None = None
    deleted: bool = False

    def control(self) -> dict[str, Any]:
        return {"message_id": self.message_id, "from": "bot" if self.sender is None else self.sender,
                "text": self.text, "entities": self.entities, "reply_markup": self.reply_markup,
                "other_markup": self.other_markup, "reply_to_message_id": self.reply_to_message_id,
                "edits": list(self.edits), "date": self.date, "edit_date": self.edit_date}


@dataclass
class SimChat:
    chat_id: int
    title: str | None = None  # groups only; a private chat shows its person
    messages: list[SimMessage] = field(default_factory=list)
    next_message_id: int = 1
    action: str | None = None
    action_until: float = 0.0

    @property
    def kind(self) -> str:
        if self.chat_id > 0:
            return "private"
        return "supergroup" if self.chat_id < SUPERGROUP_BELOW else "group"

    def message(self, message_id: int) -> SimMessage | None:
        for message in reversed(self.messages):
            if message.message_id == message_id:
                return None if message.deleted else message
        return None

    def add(self, sender: int | None, text: str, **extra: Any) -> SimMessage:
        message = SimMessage(self.next_message_id, self.chat_id, sender, text, now_s(), **extra)
        self.next_message_id += 1
        self.messages.append(message)
        if sender is None:
            self.action = None
        return message

    def current_action(self) -> str | None:
        return self.action if self.action is not None and time.time() < self.action_until else None


@dataclass
class CallbackQuery:
    query_id: str
    user_id: int
    chat_id: int
    message_id: int
    data: str
    created: float
    answer: dict[str, Any] | None = None


class World:
    def __init__(self, bot_id: int, bot_username: str, bot_first_name: str) -> None:
        self.bot_id = bot_id
        self.bot_username = bot_username
        self.bot_first_name = bot_first_name
        self.users: dict[int, SimUser] = {}
        self.chats: dict[int, SimChat] = {}
        self.callback_queries: dict[str, CallbackQuery] = {}
        self.answers: list[dict[str, Any]] = []
        self.commands: dict[str, list[dict[str, str]]] = {}  # "<scope JSON>|<language code>" → commands
        self.callback_seq = 0

    def bot_user(self) -> dict[str, Any]:
        return {"id": self.bot_id, "is_bot": True, "first_name": self.bot_first_name, "username": self.bot_username}

    def chat_json(self, chat: SimChat) -> dict[str, Any]:
        if chat.kind == "private":
            user = self.users[chat.chat_id]
            shown: dict[str, Any] = {"id": chat.chat_id, "type": "private", "first_name": user.first_name}
            for name in ("last_name", "username"):
                if getattr(user, name) is not None:
                    shown[name] = getattr(user, name)
            return shown
        return {"id": chat.chat_id, "type": chat.kind, "title": chat.title or f"Group {chat.chat_id}"}

    def message_json(self, chat: SimChat, message: SimMessage, *, with_reply: bool = True) -> dict[str, Any]:
        """The Bot API ``Message`` object."""
        sender = self.bot_user() if message.sender is None else self.users[message.sender].telegram()
        shown: dict[str, Any] = {"message_id": message.message_id, "from": sender, "chat": self.chat_json(chat),
                                 "date": message.date}
        if message.reply_to_message_id is not None and with_reply:
            replied = chat.message(message.reply_to_message_id)
            if replied is not None:
                shown["reply_to_message"] = self.message_json(chat, replied, with_reply=False)
        if message.edit_date is not None:
            shown["edit_date"] = message.edit_date
        shown["text"] = message.text
        if message.entities:
            shown["entities"] = message.entities
        if message.reply_markup is not None:
            shown["reply_markup"] = message.reply_markup
        return shown

    def chat_control(self, chat: SimChat) -> dict[str, Any]:
        live = [m for m in chat.messages if not m.deleted]
        return {"chat_id": chat.chat_id, "type": chat.kind, "title": self.chat_json(chat).get("title"),
                "user_id": chat.chat_id if chat.kind == "private" else None, "message_count": len(live),
                "last_message_id": live[-1].message_id if live else None, "action": chat.current_action()}

    def next_callback_query_id(self) -> str:
        # Telegram's ids are 64-bit numbers as strings; this one is unique per bot and restart-proof.
        self.callback_seq += 1
        return str((self.bot_id % 2**31) * 2**32 + self.callback_seq)

    # The state file.
    def dump(self) -> dict[str, Any]:
        return {
            "users": [asdict(u) for u in self.users.values()],
            "chats": [{**{k: v for k, v in asdict(c).items() if k not in ("action", "action_until")}}
                      for c in self.chats.values()],
            "callback_queries": [asdict(q) for q in self.callback_queries.values()],
            "answers": self.answers, "commands": self.commands, "callback_seq": self.callback_seq,
        }

    def load(self, state: dict[str, Any]) -> None:
        users = {int(u["user_id"]): SimUser(**u) for u in state["users"]}
        chats = {}
        for raw in state["chats"]:
            messages = [SimMessage(**m) for m in raw["messages"]]
            chats[int(raw["chat_id"])] = SimChat(raw["chat_id"], raw["title"], messages, raw["next_message_id"])
        queries = {q["query_id"]: CallbackQuery(**q) for q in state["callback_queries"]}
        answers, commands = list(state["answers"]), dict(state["commands"])
        self.users, self.chats, self.callback_queries = users, chats, queries
        self.answers, self.commands, self.callback_seq = answers, commands, int(state["callback_seq"])
