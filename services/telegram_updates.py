"""The bot's durable place in Telegram's update stream: each update it handled, and where to go on.

Telegram keeps an update until a ``getUpdates`` call confirms it by offset; a bot that restarts between
handling an update and confirming it receives it again. So the bot claims each update ID here (a unique
key) *before* acting on it, and skips one it finds claimed; after acting it stores the next offset,
where a restarted bot resumes. An update is therefore answered at most once, whatever the restarts.
Writes it makes also carry an idempotency key derived from its ID, so even a handler run twice (two
bot processes polling one token) would act once.
"""

from __future__ import annotations

from datetime import UTC, datetime

from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError


class TelegramUpdates:
    def __init__(self, db: AsyncDatabase) -> None:
        self.db = db

    async def claim(self, bot_id: int, update_id: int) -> bool:
        """True for the first claim of an update by this bot; False when it was claimed before."""
        try:
            await self.db.telegram_updates.insert_one(
                {"bot_id": bot_id, "update_id": update_id, "claimed_at": datetime.now(UTC)})
        except DuplicateKeyError:
            return False
        return True

    async def offset(self, bot_id: int) -> int | None:
        """The offset to poll from (the update after the last one handled); None before the first."""
        doc = await self.db.telegram_offsets.find_one({"bot_id": bot_id})
        return int(doc["offset"]) if doc else None

    async def save_offset(self, bot_id: int, offset: int) -> None:
        """Move the stored offset forward (never back: a late write of an older one changes nothing)."""
        await self.db.telegram_offsets.update_one(
            {"bot_id": bot_id}, {"$max": {"offset": offset}, "$set": {"updated_at": datetime.now(UTC)}}, upsert=True)
