"""Long polling driven by our own loop (not aiogram's ``start_polling``), so the offset is durable.

For each update: claim its ID (``services.telegram_updates``, a unique key) *before* acting, skip it if
it was claimed already, hand it to the dispatcher, then store the next offset. A bot stopped at any
point — between claim and answer, between answer and offset — answers no update twice when it comes
back: what Telegram delivers again is found claimed. A bot asked to stop finishes the update in hand
first; only one killed outright between a claim and its answer leaves that update unanswered (the
person sends the command again) — never answered twice.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

from aiogram import Bot, Dispatcher
from aiogram.exceptions import TelegramNetworkError, TelegramRetryAfter, TelegramServerError
from aiogram.types import Update

from services.telegram_updates import TelegramUpdates

log = logging.getLogger("durabot.telegram")

ALLOWED_UPDATES = ["message", "callback_query"]
POLL_TIMEOUT_S = 25
FIRST_PAUSE_S = 1.0
MOST_PAUSE_S = 30.0
# How long a stopping bot gives the update in hand to finish (an /ask waits for Grok).
STOP_GRACE_S = 30.0


class UpdateLoop:
    def __init__(self, bot: Bot, dispatcher: Dispatcher, updates: TelegramUpdates, *,
                 poll_timeout_s: int = POLL_TIMEOUT_S, heartbeat: Path | None = None) -> None:
        self.bot = bot
        self.dispatcher = dispatcher
        self.updates = updates
        self.poll_timeout_s = poll_timeout_s
        # Touched on every poll: `durabot up` reads its age as the bot's health.
        self.heartbeat = heartbeat

    async def process(self, update: Update) -> bool:
        """Handle one update unless it was claimed before; True when this call handled it."""
        claimed = await self.updates.claim(self.bot.id, update.update_id)
        if claimed:
            try:
                await self.dispatcher.feed_update(self.bot, update)
            except Exception:
                # A handler's failure must not stop the stream (DomainErrors answers the person already).
                log.exception("a Telegram update failed", extra={"fields": {"update_id": update.update_id}})
        else:
            log.info("update skipped: handled before", extra={"fields": {"update_id": update.update_id}})
        await self.updates.save_offset(self.bot.id, update.update_id + 1)
        return claimed

    async def run(self) -> None:
        """Poll until cancelled; Telegram's 429s, 5xx and network failures are waited out."""
        offset = await self.updates.offset(self.bot.id)
        pause = FIRST_PAUSE_S
        while True:
            self._beat()
            try:
                batch = await self.bot.get_updates(offset=offset, timeout=self.poll_timeout_s,
                                                   allowed_updates=ALLOWED_UPDATES,
                                                   request_timeout=self.poll_timeout_s + 10)
            except TelegramRetryAfter as exc:
                await asyncio.sleep(exc.retry_after)
                continue
            except (TelegramNetworkError, TelegramServerError) as exc:
                log.warning("getUpdates failed; trying again", extra={"fields": {"error": str(exc)[:200],
                                                                                 "pause_s": pause}})
                await asyncio.sleep(pause)
                pause = min(pause * 2, MOST_PAUSE_S)
                continue
            pause = FIRST_PAUSE_S
            try:
                for update in batch:
                    await self._finish(self.process(update))
                    offset = update.update_id + 1
            except Exception as exc:
                # The claim or the offset could not be stored (the database is away): the update stays
                # unconfirmed, so the next poll brings it again once the database answers.
                log.warning("an update could not be claimed; polling again", extra={"fields": {
                    "error": type(exc).__name__, "pause_s": pause}})
                await asyncio.sleep(pause)
                pause = min(pause * 2, MOST_PAUSE_S)

    @staticmethod
    async def _finish(work: Coroutine[Any, Any, bool]) -> None:
        """Run the handling of one update to its end even when the loop is stopped meanwhile (Ctrl-C, a
        restart): its claim is taken, so an update dropped half-way would never be answered."""
        task = asyncio.ensure_future(work)
        try:
            await asyncio.shield(task)
        except asyncio.CancelledError:
            try:
                await asyncio.wait_for(task, STOP_GRACE_S)
            except TimeoutError:
                log.warning("stopped in the middle of an update", extra={"fields": {}})
            raise

    def _beat(self) -> None:
        if self.heartbeat is not None:
            self.heartbeat.parent.mkdir(parents=True, exist_ok=True)
            self.heartbeat.write_text(str(int(time.time())))


def heartbeat_fresh(path: Path, within_s: float) -> bool:
    try:
        return time.time() - path.stat().st_mtime < within_s
    except OSError:
        return False
