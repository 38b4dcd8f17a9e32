"""Spot user-data events over the WebSocket API (``/ws-api/v3``), Binance's way since the spot
listenKey streams were retired (2026-02-20).

Requests are ``{"id", "method", "params"}``; replies ``{"id", "status", "result"}`` or ``{"id",
"status", "error": {"code", "msg"}}``. Methods: ``userDataStream.subscribe.signature`` (apiKey,
timestamp, signature = HMAC-SHA256 of the other params sorted by name as ``k=v&…``; optional
recvWindow), ``userDataStream.unsubscribe`` (optional subscriptionId), ``session.subscriptions``,
``ping``, ``time``. Events arrive as ``{"subscriptionId": n, "event": {...}}``; a subscription that
ends (unsubscribe, the server closing the connection) gets ``eventStreamTerminated``."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import itertools
import json
import logging
from typing import Any

from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from sim.exchange.account import DEFAULT_RECV_WINDOW_MS, MAX_RECV_WINDOW_MS, SimKeyStore, check_timestamp
from sim.exchange.errors import BinanceApiError, mandatory_missing
from sim.exchange.rest_common import wall_ms

log = logging.getLogger(__name__)


class _Session:
    def __init__(self, websocket: WebSocket) -> None:
        self.websocket = websocket
        self.subscriptions: dict[int, str] = {}  # subscription id -> api key
        self.ids = itertools.count()
        self.outbox: asyncio.Queue[str] = asyncio.Queue()

    def send(self, payload: dict[str, Any]) -> None:
        self.outbox.put_nowait(json.dumps(payload, separators=(",", ":")))

    def terminate(self, subscription_id: int, now_ms: int) -> None:
        self.subscriptions.pop(subscription_id, None)
        self.send({"subscriptionId": subscription_id, "event": {"e": "eventStreamTerminated", "E": now_ms}})


class SpotStreams:
    def __init__(self, keys: SimKeyStore) -> None:
        self.keys = keys
        self.sessions: set[_Session] = set()

    async def publish(self, events: list[tuple[str, dict[str, Any]]]) -> None:
        for api_key, event in events:
            for session in self.sessions:
                for subscription_id, subscribed in session.subscriptions.items():
                    if subscribed == api_key:
                        session.send({"subscriptionId": subscription_id, "event": event})

    async def serve(self, websocket: WebSocket) -> None:
        await websocket.accept()
        session = _Session(websocket)
        self.sessions.add(session)
        writer = asyncio.create_task(self._write(session))
        try:
            while True:
                session.send(self._answer(session, await websocket.receive_text()))
        except WebSocketDisconnect:
            pass
        finally:
            self.sessions.discard(session)
            writer.cancel()
            await asyncio.gather(writer, return_exceptions=True)

    async def close_all(self) -> None:
        """Server shutdown: every subscription ends with ``eventStreamTerminated``, then the socket."""
        sessions = list(self.sessions)
        for session in sessions:
            for subscription_id in list(session.subscriptions):
                session.terminate(subscription_id, wall_ms())
        for _ in range(50):  # let the writers flush the last events (at most half a second)
            if all(s.outbox.empty() for s in sessions):
                break
            await asyncio.sleep(0.01)
        for session in sessions:
            with contextlib.suppress(RuntimeError, OSError):
                await session.websocket.close(code=1001)

    @staticmethod
    async def _write(session: _Session) -> None:
        with contextlib.suppress(RuntimeError, OSError, WebSocketDisconnect):
            while True:
                await session.websocket.send_text(await session.outbox.get())

    def _answer(self, session: _Session, text: str) -> dict[str, Any]:
        try:
            request = json.loads(text)
        except json.JSONDecodeError:
            return {"id": None, "status": 400, "error": {"code": -1000, "msg": "Invalid JSON request."}}
        request_id = request.get("id") if isinstance(request, dict) else None
        try:
            if not isinstance(request, dict) or not isinstance(request.get("method"), str):
                raise BinanceApiError(-1102, "Mandatory parameter 'method' was not sent, was empty/null, or malformed.")
            params = request.get("params", {})
            if not isinstance(params, dict):
                raise BinanceApiError(-1130, "Data sent for parameter 'params' is not valid.")
            result = self._call(session, request["method"], params)
        except BinanceApiError as error:
            return {"id": request_id, "status": error.http_status, "error": {"code": error.code, "msg": error.msg}}
        return {"id": request_id, "status": 200, "result": result}

    def _call(self, session: _Session, method: str, params: dict[str, Any]) -> Any:
        if method == "userDataStream.subscribe.signature":
            api_key = self._verify(params)
            if api_key in session.subscriptions.values():
                raise BinanceApiError(-2035, "User Data Stream subscription already active.")
            subscription_id = next(session.ids)
            session.subscriptions[subscription_id] = api_key
            return {"subscriptionId": subscription_id}
        if method == "userDataStream.unsubscribe":
            wanted = params.get("subscriptionId")
            if wanted is not None and wanted not in session.subscriptions:
                raise BinanceApiError(-2036, "User Data Stream subscription not active.")
            for subscription_id in [wanted] if wanted is not None else list(session.subscriptions):
                session.terminate(subscription_id, wall_ms())
            return {}
        if method == "session.subscriptions":
            return [{"subscriptionId": i} for i in session.subscriptions]
        if method == "ping":
            return {}
        if method == "time":
            return {"serverTime": wall_ms()}
        raise BinanceApiError(-1100, f"Illegal characters found in parameter 'method'; unknown method '{method}'.")

    def _verify(self, params: dict[str, Any]) -> str:
        """The API key a signed subscription names, or the Binance error refusing it."""
        for name in ("apiKey", "timestamp", "signature"):
            if params.get(name) in (None, ""):
                raise mandatory_missing(name)
        key = self.keys.keys.get(str(params["apiKey"]))
        if key is None:
            raise BinanceApiError(-2015, "Invalid API-key, IP, or permissions for action.", http_status=401)
        recv_window = params.get("recvWindow", DEFAULT_RECV_WINDOW_MS)
        if not isinstance(params["timestamp"], int) or not isinstance(recv_window, int | float):
            raise BinanceApiError(-1100, "Illegal characters found in parameter 'timestamp'.")
        if recv_window > MAX_RECV_WINDOW_MS:
            raise BinanceApiError(-1131, "recvWindow must be less than 60000")
        payload = "&".join(f"{k}={_text(v)}" for k, v in sorted(params.items()) if k != "signature")
        expected = hmac.new(key.api_secret.encode(), payload.encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, str(params["signature"]).lower()):
            raise BinanceApiError(-1022, "Signature for this request is not valid.")
        check_timestamp(params["timestamp"], int(recv_window))
        return key.api_key


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def spot_stream_routes(streams: SpotStreams) -> list[WebSocketRoute]:
    async def ws_api(websocket: WebSocket) -> None:
        await streams.serve(websocket)

    return [WebSocketRoute("/ws-api/v3", ws_api)]
