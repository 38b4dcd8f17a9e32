"""Telegram links: which Telegram user speaks for which Durabot user, and in which chat.

A person asks the dashboard for a one-time link code (10 minutes, one use; only its SHA-256 is stored)
and sends it to the bot as ``/start CODE`` (or opens the deep link ``https://t.me/<bot>?start=CODE``,
which makes Telegram send exactly that). The link binds the Telegram *user* (``from.id``) and the chat
the code was sent in: only that user, in that chat, is obeyed (anyone in a group chat can type, and
press a button). Wrong, expired and reused codes are refused, each refusal audited, and so is every
message the bot does not obey. Either side may unlink.

A linked user acts as a human principal on channel ``telegram`` with no login session: whatever needs
a fresh two-factor step-up is refused until Telegram has a step-up of its own.
"""

from __future__ import annotations

import logging
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, cast

import httpx
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from core.settings import Settings
from services.auth.audit import record_audit
from services.auth.step_up import policy_requires, read_policy, two_factor_of
from services.auth.tokens import token_digest
from services.errors import Forbidden, Rejected
from services.principal import Principal

log = logging.getLogger("durabot.telegram")

CODE_TTL_S = 600
# A used or expired code is kept this long past its expiry, so presenting it again reads as "reused" or
# "expired" (and is audited so) rather than "wrong".
CODE_KEPT_S = 86_400
# A deep link's start parameter is 1-64 of A-Z a-z 0-9 _ - (Telegram's rule); ours are 16 of them.
CODE_BYTES = 12
CODE_ALPHABET = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-")
BOT_NAME_CACHE_S = 300.0
BOT_NAME_RETRY_S = 30.0
Mode = Literal["paper", "real"]
MODES: tuple[Mode, ...] = ("paper", "real")
LinkRefusal = Literal["wrong_code", "expired_code", "reused_code"]


# sim/telegram's default bot token (``sim.telegram.config.DEFAULT_TOKEN``; services do not import the sim).
SIM_DEFAULT_TOKEN = "123456:SIM-telegram-token-000000000000000"


def bot_token(settings: Settings) -> str | None:
    """The bot's token: the one set, else — offline, with the local sim/telegram — the sim's default, so
    `durabot up` runs a bot a person can try at the sim's web chat; None: no bot."""
    if settings.telegram_bot_token is not None:
        return settings.telegram_bot_token.get_secret_value()
    return SIM_DEFAULT_TOKEN if settings.telegram_is_local_sim else None


@dataclass(frozen=True)
class LinkCode:
    code: str  # shown once, to its owner
    expires_at: datetime
    deep_link: str | None  # None while the bot's username cannot be read (the code still works typed)


@dataclass(frozen=True)
class TelegramUser:
    """Who sent an update, as Telegram says (untrusted: IDs are checked, names only shown)."""

    user_id: int
    chat_id: int
    username: str | None = None
    first_name: str | None = None


@dataclass(frozen=True)
class Link:
    user_id: str
    telegram_user_id: int
    chat_id: int
    username: str | None
    first_name: str | None
    linked_at: datetime
    mode: Mode

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> Link:
        linked_at = doc["linked_at"]
        return cls(user_id=doc["user_id"], telegram_user_id=int(doc["telegram_user_id"]), chat_id=int(doc["chat_id"]),
                   username=doc.get("username"), first_name=doc.get("first_name"),
                   linked_at=linked_at.replace(tzinfo=UTC) if linked_at.tzinfo is None else linked_at,
                   mode=cast(Mode, doc.get("mode", "paper")))


@dataclass(frozen=True)
class LinkStatus:
    linked: bool
    link: Link | None
    bot_configured: bool
    bot_username: str | None
    web_chat_url: str | None  # the local Telegram stand-in's chat page, when the bot talks to it


class LinkRefused(Rejected):
    def __init__(self, why: LinkRefusal, reason: str) -> None:
        super().__init__("code", reason)
        self.why = why


@dataclass(frozen=True)
class Access:
    """What the bot may do for one sender in one chat: act as ``principal``, or nothing (``refusal``)."""

    link: Link | None
    principal: Principal | None
    refusal: str | None  # why not, for the audit log (None when the sender may act)


def _code_refusal(doc: dict[str, Any] | None) -> LinkRefused:
    if doc is None:
        return LinkRefused("wrong_code", "this link code is not valid: get a new one in the dashboard "
                                         "(Settings → Telegram)")
    if doc.get("used_at") is not None:
        return LinkRefused("reused_code", "this link code was used already: get a new one in the dashboard")
    return LinkRefused("expired_code", "this link code expired (codes last 10 minutes): get a new one in the "
                                       "dashboard")


class TelegramLinks:
    def __init__(self, settings: Settings, db: AsyncDatabase) -> None:
        self.settings = settings
        self.db = db
        self._bot_name: tuple[float, str | None] = (0.0, None)

    # -- the bot -----------------------------------------------------------------------------------
    @property
    def bot_configured(self) -> bool:
        return self._token() is not None

    def _token(self) -> str | None:
        return bot_token(self.settings)

    @property
    def web_chat_url(self) -> str | None:
        if not self.settings.telegram_is_local_sim:
            return None
        return f"{self.settings.telegram_api_url.rstrip('/')}/chat"

    async def bot_username(self) -> str | None:
        """The bot's @username (getMe), for deep links; None while Telegram cannot be asked."""
        read_at, name = self._bot_name
        # A name is kept a while; so is a failure, briefly, so the dashboard never waits on every read.
        if time.monotonic() - read_at < (BOT_NAME_CACHE_S if name is not None else BOT_NAME_RETRY_S):
            return name
        token = self._token()
        if token is None:
            return None
        url = f"{self.settings.telegram_api_url.rstrip('/')}/bot{token}/getMe"
        try:
            async with httpx.AsyncClient(timeout=5.0) as http:
                reply = await http.get(url)
            found = reply.json().get("result") or {}
            name = found.get("username") if reply.status_code == 200 else None
        except (httpx.HTTPError, ValueError, AttributeError):
            name = None
        found_name = name if isinstance(name, str) and name else None
        self._bot_name = (time.monotonic(), found_name)
        if found_name is None:
            log.warning("the bot's username could not be read (getMe failed)")
        return found_name

    # -- the dashboard side ------------------------------------------------------------------------
    async def issue_code(self, principal: Principal) -> LinkCode:
        """A new one-time link code for the caller (a person in the dashboard); earlier unused codes of
        theirs stop working, so only the newest one shown is valid."""
        self._require_person(principal)
        code = secrets.token_urlsafe(CODE_BYTES)
        now = datetime.now(UTC)
        expires_at = now + timedelta(seconds=CODE_TTL_S)
        await self.db.telegram_link_codes.delete_many({"user_id": principal.user_id, "used_at": None})
        await self.db.telegram_link_codes.insert_one({
            "code_hash": token_digest(code), "user_id": principal.user_id, "created_at": now,
            "expires_at": expires_at, "purge_at": expires_at + timedelta(seconds=CODE_KEPT_S), "used_at": None})
        name = await self.bot_username()
        return LinkCode(code, expires_at, f"https://t.me/{name}?start={code}" if name else None)

    async def status(self, principal: Principal) -> LinkStatus:
        doc = await self.db.telegram_links.find_one({"user_id": principal.user_id}, {"_id": 0})
        link = Link.from_doc(doc) if doc else None
        return LinkStatus(linked=link is not None, link=link, bot_configured=self.bot_configured,
                          bot_username=await self.bot_username() if self.bot_configured else None,
                          web_chat_url=self.web_chat_url)

    async def unlink(self, principal: Principal) -> LinkStatus:
        """End the caller's link (from the dashboard); without one, nothing changes."""
        self._require_person(principal)
        doc = await self.db.telegram_links.find_one_and_delete({"user_id": principal.user_id})
        if doc is not None:
            await self._audit_unlinked(doc, "dashboard", principal.ip)
        return await self.status(principal)

    # -- the Telegram side -------------------------------------------------------------------------
    async def link(self, sender: TelegramUser, code: str) -> Link:
        """Link ``sender`` in their chat to the owner of ``code``; a wrong, expired or used code is refused
        and audited. A Telegram user linked to another account before is moved to this one (the code
        proves the new owner's consent, the message the Telegram user's)."""
        now = datetime.now(UTC)
        digest = token_digest(code) if code and len(code) <= 64 and set(code) <= CODE_ALPHABET else None
        used = None
        if digest is not None:
            used = await self.db.telegram_link_codes.find_one_and_update(
                {"code_hash": digest, "used_at": None, "expires_at": {"$gt": now}},
                {"$set": {"used_at": now, "used_by": sender.user_id}})
        if used is None:
            found = await self.db.telegram_link_codes.find_one({"code_hash": digest}) if digest else None
            refused = _code_refusal(found)
            await record_audit(self.db, "telegram_link_refused", user_id=found["user_id"] if found else None,
                               details={"why": refused.why, **self._sender_details(sender)})
            raise refused
        user_id = used["user_id"]
        doc = {"user_id": user_id, "telegram_user_id": sender.user_id, "chat_id": sender.chat_id,
               "username": sender.username, "first_name": sender.first_name, "linked_at": now, "mode": "paper"}
        for earlier in await self.db.telegram_links.find(
                {"$or": [{"user_id": user_id}, {"telegram_user_id": sender.user_id}]}).to_list():
            removed = await self.db.telegram_links.delete_one({"_id": earlier["_id"]})
            if removed.deleted_count and earlier["user_id"] != user_id:
                await self._audit_unlinked(earlier, "relinked", None)
        try:
            await self.db.telegram_links.insert_one(doc)
        except DuplicateKeyError:
            # Two codes of the same person (or for the same Telegram user) used at once: one link wins.
            raise Rejected("code", "another link was made at the same moment: try again with a new code") from None
        await record_audit(self.db, "telegram_linked", user_id=user_id, details=self._sender_details(sender))
        return Link.from_doc(doc)

    async def access(self, sender: TelegramUser) -> Access:
        """Whether ``sender`` may act in their chat, and as whom. Only the linked Telegram user, in the
        linked chat, of a user that still exists and may log in, is obeyed."""
        doc = await self.db.telegram_links.find_one({"telegram_user_id": sender.user_id}, {"_id": 0})
        if doc is None:
            return Access(None, None, "not_linked")
        link = Link.from_doc(doc)
        if link.chat_id != sender.chat_id:
            return Access(link, None, "other_chat")
        user = await self.db.users.find_one({"user_id": link.user_id})
        if user is None or user.get("disabled"):
            return Access(link, None, "user_gone")
        two_factor = two_factor_of(user) is not None
        if not two_factor and policy_requires(await read_policy(self.db), user["role"]):
            return Access(link, None, "two_factor_required")
        # The role stays "user": nothing an admin does belongs in a chat.
        principal = Principal(user_id=link.user_id, channel="telegram", human=True, tier="critical",
                              session_id=None, two_factor=two_factor)
        return Access(link, principal, None)

    async def refuse(self, sender: TelegramUser, why: str, command: str | None) -> None:
        """Audit a message the bot did not obey, under the user whose chat it came from (if any)."""
        owner = await self.db.telegram_links.find_one({"chat_id": sender.chat_id}, {"user_id": 1})
        own = await self.db.telegram_links.find_one({"telegram_user_id": sender.user_id}, {"user_id": 1})
        user_id = (owner or own or {}).get("user_id")
        await record_audit(self.db, "telegram_refused", user_id=user_id,
                           details={"why": why, "command": (command or "")[:40], **self._sender_details(sender)})

    async def unlink_telegram(self, principal: Principal) -> bool:
        """End the link of a linked Telegram user (``/unlink``)."""
        doc = await self.db.telegram_links.find_one_and_delete({"user_id": principal.user_id})
        if doc is not None:
            await self._audit_unlinked(doc, "telegram", None)
        return doc is not None

    async def set_mode(self, principal: Principal, mode: str) -> Link:
        """Which session the link's commands address (``paper`` or ``real``)."""
        if mode not in MODES:
            raise Rejected("mode", "the mode is paper or real")
        doc = await self.db.telegram_links.find_one_and_update(
            {"user_id": principal.user_id}, {"$set": {"mode": mode}}, projection={"_id": 0}, return_document=True)
        if doc is None:
            raise Forbidden("this chat is not linked any more")
        return Link.from_doc(doc)

    # -- helpers -----------------------------------------------------------------------------------
    async def _audit_unlinked(self, doc: dict[str, Any], by: str, ip: str | None) -> None:
        await record_audit(self.db, "telegram_unlinked", user_id=doc["user_id"], ip=ip,
                           details={"by": by, "telegram_user_id": doc["telegram_user_id"], "chat_id": doc["chat_id"]})

    @staticmethod
    def _sender_details(sender: TelegramUser) -> dict[str, Any]:
        return {"telegram_user_id": sender.user_id, "chat_id": sender.chat_id,
                "telegram_username": (sender.username or "")[:64]}

    @staticmethod
    def _require_person(principal: Principal) -> None:
        if not principal.human or principal.channel not in ("rest", "ws", "cli"):
            raise Forbidden("Telegram is linked and unlinked by the account's owner in the dashboard")
