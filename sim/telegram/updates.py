"""The bot's update queue with the Bot API server's rules (telegram-bot-api's ``do_get_updates`` over TDLib's
TQueue):

- update ids increase by one; a fresh queue starts at a random id (or the configured one);
- ``offset`` > 0 returns updates with ``update_id >= offset`` and forgets every older one for good;
  an offset more than 10 past the next id ("in the future", e.g. a bot's stored offset after the queue
  was reset) reads from the oldest kept update instead, forgetting nothing;
- ``offset`` 0 (or absent) reads from the oldest kept update; ``offset`` -N keeps only the newest N;
- ``limit`` is clamped into 1..100, ``timeout`` into 0..50 seconds;
- with no update to return and a timeout, the call waits (an asyncio event, not a loop) until an update
  arrives or the timeout ends; a second getUpdates while one waits ends the waiting one with
  409 "Conflict: terminated by other getUpdates request…";
- ``allowed_updates`` is remembered across calls and decides which kinds of updates are created from then on
  (an empty list means Telegram's default: all but chat_member, message_reaction, message_reaction_count).
"""

from __future__ import annotations

import asyncio
import random
from typing import Any

from sim.telegram.errors import poll_conflict

LONG_POLL_MAX_TIMEOUT_S = 50
FUTURE_SLACK = 10
BATCH_WAIT_S = 0.001  # after a wake-up Telegram waits a moment so updates arriving together come together
UPDATE_KINDS = ("message", "edited_message", "channel_post", "edited_channel_post", "business_connection",
                "business_message", "edited_business_message", "deleted_business_messages", "message_reaction",
                "message_reaction_count", "inline_query", "chosen_inline_result", "callback_query",
                "shipping_query", "pre_checkout_query", "purchased_paid_media", "poll", "poll_answer",
                "my_chat_member", "chat_member", "chat_join_request", "chat_boost", "removed_chat_boost")
DEFAULT_KINDS = frozenset(UPDATE_KINDS) - {"chat_member", "message_reaction", "message_reaction_count"}


class _Poll:
    def __init__(self) -> None:
        self.wake = asyncio.Event()
        self.conflict = False
        self.released = False


class UpdateQueue:
    def __init__(self, first_update_id: int | None) -> None:
        self.pending: list[dict[str, Any]] = []
        # Telegram starts a bot's queue at a random id (TQueue: 2,000,001 .. 2**30), never at 1.
        self.next_id = first_update_id if first_update_id is not None else random.randint(2_000_001, 2**30)
        self.allowed: frozenset[str] = DEFAULT_KINDS
        self.allowed_list: list[str] = []
        self._poll: _Poll | None = None

    def set_allowed(self, kinds: list[str]) -> None:
        known = [kind for kind in kinds if kind in UPDATE_KINDS]
        self.allowed_list = known
        self.allowed = frozenset(known) if known else DEFAULT_KINDS

    def push(self, kind: str, payload: dict[str, Any]) -> int | None:
        """Queue an update; its id, or None when ``allowed_updates`` excludes its kind (then none is made)."""
        if kind not in self.allowed:
            return None
        update_id = self.next_id
        self.next_id += 1
        self.pending.append({"update_id": update_id, kind: payload})
        if self._poll is not None:
            self._poll.wake.set()
        return update_id

    def drop_all(self) -> None:
        self.pending.clear()

    def release(self) -> None:
        """Answer a waiting long poll now, with what there is (a shutdown must not wait out its timeout)."""
        if self._poll is not None:
            self._poll.released = True
            self._poll.wake.set()

    def _start(self, offset: int) -> int:
        """The first update id to read for this offset; forgets what the offset confirms."""
        if offset < 0:
            self.pending = self.pending[len(self.pending) + offset:] if -offset < len(self.pending) else self.pending
        head = self.pending[0]["update_id"] if self.pending else self.next_id
        if offset <= 0 or offset > self.next_id + FUTURE_SLACK:
            return head
        return offset

    def _take(self, start: int, limit: int) -> list[dict[str, Any]]:
        self.pending = [u for u in self.pending if u["update_id"] >= start]
        return self.pending[:limit]

    async def get(self, offset: int, limit: int, wait_s: int) -> list[dict[str, Any]]:
        start = self._start(offset)
        updates = self._take(start, limit)
        if updates or wait_s <= 0:
            return updates
        if self._poll is not None:  # only one long poll at a time: the older one ends with 409
            self._poll.conflict = True
            self._poll.wake.set()
        poll = self._poll = _Poll()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait_s
        try:
            while True:
                remaining = deadline - loop.time()
                if remaining <= 0:
                    return self._take(start, limit)
                try:
                    await asyncio.wait_for(poll.wake.wait(), remaining)
                except TimeoutError:
                    return self._take(start, limit)
                if poll.conflict:
                    raise poll_conflict()
                if poll.released:
                    return self._take(start, limit)
                poll.wake.clear()
                await asyncio.sleep(BATCH_WAIT_S)
                updates = self._take(start, limit)
                if updates:
                    return updates
        finally:
            if self._poll is poll:
                self._poll = None

    def dump(self) -> dict[str, Any]:
        return {"pending": self.pending, "next_id": self.next_id, "allowed_updates": self.allowed_list}

    def load(self, state: dict[str, Any]) -> None:
        pending, next_id = list(state["pending"]), int(state["next_id"])
        self.set_allowed([str(kind) for kind in state["allowed_updates"]])
        self.pending, self.next_id = pending, next_id
