"""Fan-out of the ``events`` collection to WebSocket clients.

One follower per gateway process reads a MongoDB change stream on ``events`` and hands each event
to the clients whose subscription matches. Its resume token is saved in ``system_config``, so a
restarted gateway continues from the last event it handled instead of losing what happened while
it was down. Each client has a bounded queue: a client that cannot keep up is disconnected with an
Error rather than slowing everyone else down.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import PyMongoError

from activities.events import ACCOUNT_TYPES, PUBLIC_TYPES

log = logging.getLogger("durabot.gateway.ws")

CLIENT_QUEUE_SIZE = 1000
TOKEN_SAVE_EVERY_S = 1.0


@dataclass(eq=False)
class Subscriber:
    """One WebSocket connection's interests. Empty ``symbols`` means every symbol."""

    user_id: str | None = None
    channels: set[str] = field(default_factory=set)
    symbols: set[str] = field(default_factory=set)
    queue: asyncio.Queue[dict[str, Any]] = field(default_factory=lambda: asyncio.Queue(CLIENT_QUEUE_SIZE))
    overflowed: bool = False

    def wants(self, event: dict[str, Any]) -> bool:
        kind = event.get("type")
        if kind not in self.channels:
            return False
        if kind in ACCOUNT_TYPES and (self.user_id is None or event.get("user_id") != self.user_id):
            return False
        return not self.symbols or event.get("symbol") is None or event.get("symbol") in self.symbols


def ws_message(event: dict[str, Any]) -> dict[str, Any]:
    created = event.get("created_at")
    return {
        "type": event["type"],
        "data": event.get("data", {}),
        "event_id": str(event.get("_id", "")),
        "timestamp": created.isoformat() if created is not None else None,
    }


class EventHub:
    def __init__(self, db: AsyncDatabase, follower_id: str) -> None:
        self.db = db
        self.token_key = f"ws_resume_token:{follower_id}"
        self.subscribers: set[Subscriber] = set()
        self.delivered = 0
        self._task: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()

    async def start(self) -> None:
        self._task = asyncio.create_task(self._follow(), name="event-hub")
        await asyncio.wait_for(self._ready.wait(), timeout=10)

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass

    def add(self, sub: Subscriber) -> None:
        self.subscribers.add(sub)

    def remove(self, sub: Subscriber) -> None:
        self.subscribers.discard(sub)

    def dispatch(self, events: Iterable[dict[str, Any]]) -> None:
        for event in events:
            message: dict[str, Any] | None = None
            for sub in list(self.subscribers):
                if sub.overflowed or not sub.wants(event):
                    continue
                message = message or ws_message(event)
                try:
                    sub.queue.put_nowait(message)
                    self.delivered += 1
                except asyncio.QueueFull:
                    sub.overflowed = True

    async def _load_token(self) -> dict[str, Any] | None:
        doc = await self.db.system_config.find_one({"key": self.token_key})
        return doc["value"] if doc else None

    async def _save_token(self, token: Mapping[str, Any]) -> None:
        await self.db.system_config.update_one({"key": self.token_key}, {"$set": {"value": token}}, upsert=True)

    async def _follow(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            token = await self._load_token()
            try:
                pipeline = [{"$match": {"operationType": "insert",
                                        "fullDocument.type": {"$in": sorted(PUBLIC_TYPES | ACCOUNT_TYPES)}}}]
                stream = await self.db.events.watch(pipeline, resume_after=token, max_await_time_ms=250)
                self._ready.set()
                last_saved = loop.time()
                async with stream:
                    while True:
                        change = await stream.try_next()
                        if change is not None:
                            self.dispatch([change["fullDocument"]])
                        if stream.resume_token and (change is None or loop.time() - last_saved > TOKEN_SAVE_EVERY_S):
                            await self._save_token(stream.resume_token)
                            last_saved = loop.time()
            except asyncio.CancelledError:
                raise
            except PyMongoError as exc:
                log.warning("event stream interrupted; resuming", extra={"fields": {"error": str(exc)[:200]}})
                self._ready.set()
                await asyncio.sleep(1)
