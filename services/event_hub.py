"""Fan-out of the ``events`` collection to WebSocket clients.

One follower per gateway process reads a MongoDB change stream on ``events`` and hands each event
to the clients whose subscription matches. Its resume token is saved in ``system_config``, so a
restarted gateway continues from the last event it handled instead of losing what happened while
it was down. Each client has a bounded queue: a client that cannot keep up is disconnected with an
Error rather than slowing everyone else down.

Account events go only to connections authenticated as the event's ``user_id``; that filter lives
here, on the server, so a client never sees another user's event to discard. Every event frame
carries its change-stream position as ``cursor``: a reconnecting client hands back the last one it
saw and ``replay`` reads what it missed from a change stream opened at that position.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections import OrderedDict
from collections.abc import AsyncGenerator, Mapping
from dataclasses import dataclass, field
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import PyMongoError

from core import event_types as ev
from core.event_types import ACCOUNT_TYPES, PUBLIC_TYPES

log = logging.getLogger("durabot.gateway.ws")

CLIENT_QUEUE_SIZE = 1000
TOKEN_SAVE_EVERY_S = 1.0
# Keys of the events a connection was last handed. Duplicates only come from overlaps (a replay
# meeting the live stream, the follower re-reading up to a second after a stream error), which
# are at most a queue's worth of events apart.
SEEN_KEYS_KEPT = 2 * CLIENT_QUEUE_SIZE
REPLAY_MAX_EVENTS = 5000
CURSOR_PATTERN = re.compile(r"[0-9a-fA-F]{2,1024}")


class ReplayError(Exception):
    """A replay that could not start or finish; ``code`` is the Error code sent to the client."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(eq=False)
class Subscriber:
    """One WebSocket connection's interests. ``symbols`` None means every symbol.

    ``live`` is cleared while a replay is being sent so live events wait behind it in the queue.
    """

    user_id: str | None = None
    channels: set[str] = field(default_factory=set)
    symbols: set[str] | None = None
    queue: asyncio.Queue[dict[str, Any]] = field(default_factory=lambda: asyncio.Queue(CLIENT_QUEUE_SIZE))
    overflowed: bool = False
    live: asyncio.Event = field(default_factory=asyncio.Event)
    seen: OrderedDict[str, None] = field(default_factory=OrderedDict)

    def __post_init__(self) -> None:
        self.live.set()

    def wants(self, event: Mapping[str, Any]) -> bool:
        kind = event.get("type")
        if kind not in self.channels:
            return False
        if kind in ACCOUNT_TYPES and (self.user_id is None or event.get("user_id") != self.user_id):
            return False
        symbol = event.get("symbol")
        # Symbol-less events (PositionUpdate, BotStatusUpdate) concern the whole account.
        return self.symbols is None or symbol is None or symbol in self.symbols

    def has_seen(self, message: Mapping[str, Any]) -> bool:
        key = message.get("event_key") or message.get("event_id")
        return bool(key) and key in self.seen

    def first_sight(self, message: Mapping[str, Any]) -> bool:
        """Record the frame's event; False when this connection was already handed it."""
        key = message.get("event_key") or message.get("event_id")
        if not key:
            return True
        if key in self.seen:
            return False
        self.seen[key] = None
        if len(self.seen) > SEEN_KEYS_KEPT:
            self.seen.popitem(last=False)
        return True

    def offer(self, message: dict[str, Any]) -> bool:
        """Queue a live frame; False for a duplicate or a full queue (which sets ``overflowed``)."""
        if not self.first_sight(message):
            return False
        try:
            self.queue.put_nowait(message)
        except asyncio.QueueFull:
            self.overflowed = True
            return False
        return True


def market_time(event: Mapping[str, Any]) -> int | None:
    """The market time (ms) an event is about, when its data carries one."""
    data = event.get("data") or {}
    kind = event.get("type")
    value: Any = None
    if kind == ev.MARKET_DATA:
        value = data.get("time")
    elif kind == ev.CHART_UPDATE:
        value = (data.get("candle") or {}).get("close_time")
    elif kind == ev.TRADE_EXECUTED:
        value = ((data.get("position") or {}).get("entry_time") if data.get("action") == "open"
                 else (data.get("trade") or {}).get("exit_time"))
    elif kind == ev.AI_SIGNAL_RECEIVED:
        value = data.get("open_time")
    elif kind == ev.POSITION_UPDATE:
        value = data.get("time")
    return int(value) if isinstance(value, int | float) else None


def ws_message(event: Mapping[str, Any], token: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The frame sent for one ``events`` document (schema: docs/websocket.md)."""
    created = event.get("created_at")
    cursor = token.get("_data") if token else None
    return {
        "type": event["type"],
        "channel": event["type"],
        "symbol": event.get("symbol"),
        "data": event.get("data", {}),
        "event_key": event.get("event_key"),
        "event_id": str(event.get("_id", "")),
        "cursor": cursor if isinstance(cursor, str) else None,
        "timestamp": created.isoformat() if created is not None else None,
        "market_time": market_time(event),
    }


def stream_pipeline(channels: set[str] | frozenset[str], user_id: str | None = None,
                    every_user: bool = False) -> list[dict[str, Any]]:
    match: dict[str, Any] = {"operationType": "insert", "fullDocument.type": {"$in": sorted(channels)}}
    if not every_user:
        # Pushed to the server as well as checked by Subscriber.wants: a replay never reads others' events.
        allowed: list[dict[str, Any]] = [{"fullDocument.type": {"$in": sorted(PUBLIC_TYPES)}}]
        if user_id is not None:
            allowed.append({"fullDocument.user_id": user_id})
        match["$or"] = allowed
    return [{"$match": match}]


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

    def dispatch(self, event: Mapping[str, Any], token: Mapping[str, Any] | None = None) -> None:
        message: dict[str, Any] | None = None
        for sub in list(self.subscribers):
            if sub.overflowed or not sub.wants(event):
                continue
            message = message or ws_message(event, token)
            if sub.offer(message):
                self.delivered += 1

    async def replay(self, sub: Subscriber, cursor: object,
                     limit: int = REPLAY_MAX_EVENTS) -> AsyncGenerator[dict[str, Any]]:
        """Frames ``sub`` wants that follow ``cursor`` and it has not been handed, up to now.

        ``sub`` must already be registered (``add``), so whatever this stream has not reached when
        it catches up is in the live queue; ``first_sight`` drops the overlap. Raises ``ReplayError``.
        """
        if not isinstance(cursor, str) or not CURSOR_PATTERN.fullmatch(cursor):
            raise ReplayError("invalid_cursor", "since must be the cursor of an event frame")
        pipeline = stream_pipeline(sub.channels & (PUBLIC_TYPES | ACCOUNT_TYPES), sub.user_id)
        sent = 0
        try:
            stream = await self.db.events.watch(pipeline, resume_after={"_data": cursor}, max_await_time_ms=100)
            async with stream:
                # try_next returns None once the stream has caught up with the present.
                while (change := await stream.try_next()) is not None:
                    doc = change["fullDocument"]
                    if not sub.wants(doc):
                        continue
                    message = ws_message(doc, change["_id"])
                    if sub.has_seen(message):
                        continue
                    if sent == limit:
                        raise ReplayError("replay_truncated",
                                          f"more than {limit} events since the cursor; reload state over REST")
                    sub.first_sight(message)
                    sent += 1
                    yield message
        except PyMongoError as exc:
            raise ReplayError("invalid_cursor", f"cannot resume from this cursor: {str(exc)[:160]}") from None

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
                pipeline = stream_pipeline(PUBLIC_TYPES | ACCOUNT_TYPES, every_user=True)
                stream = await self.db.events.watch(pipeline, resume_after=token, max_await_time_ms=250)
                self._ready.set()
                last_saved = loop.time()
                saved: Mapping[str, Any] | None = token
                async with stream:
                    while True:
                        change = await stream.try_next()
                        if change is not None:
                            self.dispatch(change["fullDocument"], change["_id"])
                        # At most once a second, and only a position that moved: an idle stream
                        # returns every 250 ms, and a write each time would be the hub's main cost
                        # to the database.
                        position = stream.resume_token
                        if position and position != saved and loop.time() - last_saved >= TOKEN_SAVE_EVERY_S:
                            await self._save_token(position)
                            last_saved, saved = loop.time(), position
            except asyncio.CancelledError:
                raise
            except PyMongoError as exc:
                log.warning("event stream interrupted; resuming", extra={"fields": {"error": str(exc)[:200]}})
                self._ready.set()
                await asyncio.sleep(1)
