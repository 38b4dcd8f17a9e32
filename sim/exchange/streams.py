"""Market streams over WebSocket: ``/ws/<stream>`` (raw payloads) and ``/stream?streams=a/b``
(``{"stream": ..., "data": ...}``), live SUBSCRIBE / UNSUBSCRIBE / LIST_SUBSCRIPTIONS, connections
closed at the configured lifetime (wall time), and the drop-every-N fault.

Every connection has a bounded send queue: the clock's ``publish`` waits on full queues, which is
how a slow reader paces the market at speed ``max``."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable, Iterable
from typing import Any

from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from sim.exchange.clock import EventKind, MarketEvent
from sim.exchange.faults import Faults
from sim.exchange.formats import kline_event, opening_candle, trade_event

log = logging.getLogger(__name__)

DROPPED_CLOSE_CODE = 1011
LIFETIME_CLOSE_CODE = 1001


def kline_stream(symbol: str, interval: str) -> str:
    return f"{symbol.lower()}@kline_{interval}"


def trade_stream(symbol: str) -> str:
    return f"{symbol.lower()}@trade"


class StreamConnection:
    def __init__(self, websocket: WebSocket, combined: bool, queue_size: int) -> None:
        self.websocket = websocket
        self.combined = combined
        self.subscriptions: set[str] = set()
        self.queue: asyncio.Queue[tuple[str, bool]] = asyncio.Queue(maxsize=queue_size)
        self.closed = False
        self.data_sent = 0

    async def deliver(self, text: str, is_data: bool = True) -> None:
        if not self.closed:
            await self.queue.put((text, is_data))

    def shut(self) -> None:
        """Stop accepting messages and free any publisher blocked on this connection's queue."""
        self.closed = True
        while not self.queue.empty():
            self.queue.get_nowait()

    @property
    def wants_klines(self) -> bool:
        return any("@kline_" in s for s in self.subscriptions)


class StreamHub:
    def __init__(self, faults: Faults, *, queue_size: int, max_lifetime_s: float) -> None:
        self.faults = faults
        self.queue_size = queue_size
        self.max_lifetime_s = max_lifetime_s
        self.connections: set[StreamConnection] = set()
        self._kline_subscribers = asyncio.Event()
        self.connections_opened = 0
        self.connections_dropped = 0
        # Whether a stream name is a user-data stream (a live listen key); set by the app.
        self.is_user_stream: Callable[[str], bool] = lambda name: False

    async def wait_for_kline_subscribers(self) -> None:
        await self._kline_subscribers.wait()

    def _refresh(self) -> None:
        if any(c.wants_klines and not c.closed for c in self.connections):
            self._kline_subscribers.set()
        else:
            self._kline_subscribers.clear()

    async def publish(self, event: MarketEvent) -> None:
        if event.kind is EventKind.TRADE:
            assert event.trade is not None
            name, payload = trade_stream(event.symbol), trade_event(event.symbol, event.trade)
        else:
            assert event.candle is not None
            closed = event.kind is EventKind.KLINE_CLOSE
            candle = event.candle if closed else opening_candle(event.candle)
            name, payload = (
                kline_stream(event.symbol, event.interval),
                kline_event(candle, event.interval, event.time_ms, closed),
            )
        receivers = [c for c in self.connections if name in c.subscriptions and not c.closed]
        if not receivers:
            return
        raw = json.dumps(payload, separators=(",", ":"))
        combined = f'{{"stream":"{name}","data":{raw}}}'
        for connection in receivers:
            await connection.deliver(combined if connection.combined else raw)

    async def publish_raw(self, name: str, payload: dict[str, Any]) -> None:
        """Send a payload to the connections on stream ``name`` (user data: the listen key)."""
        raw = json.dumps(payload, separators=(",", ":"))
        for connection in [c for c in self.connections if name in c.subscriptions and not c.closed]:
            await connection.deliver(raw if not connection.combined else f'{{"stream":"{name}","data":{raw}}}')

    def _user_streams_in(self, streams: Iterable[str]) -> bool:
        return any(self.is_user_stream(s) for s in streams)

    async def drop_user_streams(self) -> None:
        """The ``user_stream_down`` fault: close every connection carrying a user-data stream."""
        for connection in [c for c in self.connections if self._user_streams_in(c.subscriptions)]:
            connection.shut()
            self.connections_dropped += 1
            try:
                await connection.websocket.close(code=DROPPED_CLOSE_CODE)
            except (RuntimeError, OSError):
                log.debug("sim exchange: user-data socket already gone while dropping it")

    async def serve(self, websocket: WebSocket, streams: list[str], combined: bool) -> None:
        if self.faults.user_stream_down and self._user_streams_in(streams):
            await websocket.close(code=DROPPED_CLOSE_CODE)  # before accept: the handshake is refused
            return
        await websocket.accept()
        connection = StreamConnection(websocket, combined, self.queue_size)
        connection.subscriptions.update(s.lower() for s in streams if s)
        self.connections.add(connection)
        self.connections_opened += 1
        self._refresh()
        writer = asyncio.create_task(self._write(connection))
        reader = asyncio.create_task(self._read(connection))
        try:
            done, _ = await asyncio.wait(
                {writer, reader}, timeout=self.max_lifetime_s, return_when=asyncio.FIRST_COMPLETED
            )
            dropped = (
                writer in done
                and not writer.cancelled()
                and writer.exception() is None
                and writer.result() == "dropped"
            )
            close_code = DROPPED_CLOSE_CODE if dropped else LIFETIME_CLOSE_CODE
        finally:
            connection.shut()
            self.connections.discard(connection)
            self._refresh()
            for task in (writer, reader):
                task.cancel()
            await asyncio.gather(writer, reader, return_exceptions=True)
        if (
            websocket.application_state is WebSocketState.CONNECTED
            and websocket.client_state is WebSocketState.CONNECTED
        ):
            try:
                await websocket.close(code=close_code)
            except (RuntimeError, OSError):
                log.debug("sim exchange: socket already gone while closing")

    async def close_all(self) -> None:
        for connection in list(self.connections):
            connection.shut()
            try:
                await connection.websocket.close(code=LIFETIME_CLOSE_CODE)
            except (RuntimeError, OSError):
                log.debug("sim exchange: socket already gone at shutdown")

    async def _write(self, connection: StreamConnection) -> str:
        while True:
            text, is_data = await connection.queue.get()
            await connection.websocket.send_text(text)
            if not is_data:
                continue
            connection.data_sent += 1
            every = self.faults.drop_ws_every
            if every is not None and connection.data_sent % every == 0:
                self.connections_dropped += 1
                return "dropped"

    async def _read(self, connection: StreamConnection) -> str:
        try:
            while True:
                text = await connection.websocket.receive_text()
                reply = self._handle_method(connection, text)
                await connection.deliver(json.dumps(reply, separators=(",", ":")), is_data=False)
        except WebSocketDisconnect:
            return "disconnected"

    def _handle_method(self, connection: StreamConnection, text: str) -> dict[str, Any]:
        try:
            request = json.loads(text)
        except json.JSONDecodeError as exc:
            return {"code": 3, "msg": f"Invalid JSON: {exc}", "id": None}
        if not isinstance(request, dict):
            return {"code": 2, "msg": "Invalid request: expected a JSON object", "id": None}
        request_id = request.get("id")
        if not (
            request_id is None
            or (isinstance(request_id, int) and not isinstance(request_id, bool))
            or isinstance(request_id, str)
        ):
            return {"code": 2, "msg": "Invalid request: request ID must be an unsigned integer", "id": None}
        method = request.get("method")
        params = request.get("params", [])
        if method in ("SUBSCRIBE", "UNSUBSCRIBE"):
            if not isinstance(params, list) or not all(isinstance(p, str) for p in params):
                return {
                    "code": 1,
                    "msg": "Invalid value type: expected an array of stream names",
                    "id": request_id,
                }
            names = {p.lower() for p in params}
            if method == "SUBSCRIBE":
                connection.subscriptions |= names
            else:
                connection.subscriptions -= names
            self._refresh()
            return {"result": None, "id": request_id}
        if method == "LIST_SUBSCRIPTIONS":
            return {"result": sorted(connection.subscriptions), "id": request_id}
        return {
            "code": 2,
            "msg": f"Invalid request: unknown variant {method!r}, expected one of SUBSCRIBE, "
            "UNSUBSCRIBE, LIST_SUBSCRIPTIONS",
            "id": request_id,
        }


def stream_routes(hub: StreamHub) -> list[WebSocketRoute]:
    async def raw(websocket: WebSocket) -> None:
        path = websocket.path_params.get("streams", "")
        await hub.serve(websocket, path.split("/") if path else [], combined=False)

    async def combined(websocket: WebSocket) -> None:
        streams = websocket.query_params.get("streams", "")
        await hub.serve(websocket, streams.split("/") if streams else [], combined=True)

    return [
        WebSocketRoute("/ws", raw),
        WebSocketRoute("/ws/{streams:path}", raw),
        WebSocketRoute("/stream", combined),
    ]
