"""Order fault injection (``POST /sim/order_faults``): what can go wrong between an order request and
its reply. Each fault applies to the next ``count`` order submissions it matches (by ``symbol``,
``path``, ``reduce_only``, ``algo``). See README "Order faults" for the bodies."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from typing import Any, TypeVar

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from sim.exchange.errors import BinanceApiError

BEFORE_ACCEPT = ("reject_before_accept", "refuse_protective")
AFTER_ACCEPT = (
    "unknown_after_accept",
    "timeout_after_accept",
    "drop_after_accept",
    "hold_reply",
    "false_not_found",
    "lose_protective",
)
# Not a submission fault: it slows the replies of order lookups (GET /fapi/v1/order).
LOOKUP = ("late_lookup_reply",)
KINDS = BEFORE_ACCEPT + AFTER_ACCEPT + LOOKUP
ORDER_PATHS = ("/fapi/v1/order", "/fapi/v1/algoOrder", "/api/v3/order")
UNKNOWN_MSG = "Unknown error, please check your request or try again later."
Booked = TypeVar("Booked")
TIMEOUT_MSG = "Timeout waiting for response from backend server. Send status unknown; execution status unknown."


@dataclass
class OrderFault:
    kind: str
    count: int = 1
    symbol: str | None = None
    path: str | None = None
    reduce_only: bool | None = None
    algo: bool | None = None
    code: int | None = None
    msg: str | None = None
    seconds: float = 5.0
    status: str = "CANCELED"
    http_status: int | None = None

    def matches(self, path: str, symbol: str, reduce_only: bool) -> bool:
        algo = path == "/fapi/v1/algoOrder"
        wants_algo = True if self.kind in ("refuse_protective", "lose_protective") else self.algo
        return (
            self.count > 0
            and (self.symbol is None or self.symbol == symbol)
            and (self.path is None or self.path == path)
            and (self.reduce_only is None or self.reduce_only == reduce_only)
            and (wants_algo is None or wants_algo == algo)
        )

    def error(self) -> BinanceApiError:
        """The refusal of a before-accept fault."""
        if self.kind == "refuse_protective":
            return BinanceApiError(
                self.code or -2021,
                self.msg
                or (
                    "Order would immediately trigger."
                    if self.code in (None, -2021)
                    else "An unknown error occured while processing the request."
                ),
            )
        return BinanceApiError(
            self.code or -1000,
            self.msg or "An unknown error occured while processing the request.",
            self.http_status or 400,
        )


def parse_fault(body: Any) -> OrderFault:
    """A fault from a JSON body; anything unknown or ill-typed raises ``ValueError``."""
    if not isinstance(body, dict):
        raise ValueError("the body must be a JSON object")
    known = {f for f in OrderFault.__dataclass_fields__}
    unknown = set(body) - known
    if unknown:
        raise ValueError(f"unknown field(s) {', '.join(sorted(unknown))}; known: {', '.join(sorted(known))}")
    if body.get("kind") not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(KINDS)}")
    checks: dict[str, tuple[type | tuple[type, ...], str]] = {
        "count": (int, "a positive integer"),
        "symbol": (str, "a symbol"),
        "path": (str, "an order path"),
        "reduce_only": (bool, "a boolean"),
        "algo": (bool, "a boolean"),
        "code": (int, "a negative integer"),
        "msg": (str, "a string"),
        "seconds": ((int, float), "a non-negative number"),
        "status": (str, "CANCELED or EXPIRED"),
        "http_status": (int, "an HTTP status"),
    }
    for name, (kind, what) in checks.items():
        value = body.get(name)
        if value is None:
            continue
        if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
            raise ValueError(f"{name} must be {what}")
    fault = OrderFault(**body)
    if fault.count < 1:
        raise ValueError("count must be a positive integer")
    if fault.path is not None and fault.path not in ORDER_PATHS:
        raise ValueError(f"path must be one of {', '.join(ORDER_PATHS)}")
    if fault.kind == "reject_before_accept" and (fault.code is None or fault.code >= 0):
        raise ValueError("reject_before_accept needs a negative Binance error code, e.g. -2019")
    if fault.code is not None and fault.code >= 0:
        raise ValueError("code must be a negative integer")
    if fault.seconds < 0:
        raise ValueError("seconds must be a non-negative number")
    if fault.status not in ("CANCELED", "EXPIRED"):
        raise ValueError("status must be CANCELED or EXPIRED")
    if fault.kind == "timeout_after_accept" and fault.http_status not in (None, 408, 503):
        raise ValueError("http_status of timeout_after_accept must be 408 or 503")
    if fault.http_status is not None and not 400 <= fault.http_status <= 599:
        raise ValueError("http_status must be between 400 and 599")
    return fault


@dataclass
class HeldReply:
    hold_id: int
    client_id: str
    path: str
    held_since_ms: int
    released: asyncio.Event = field(default_factory=asyncio.Event)

    def view(self) -> dict[str, Any]:
        return {
            "hold_id": self.hold_id,
            "client_id": self.client_id,
            "path": self.path,
            "held_since_ms": self.held_since_ms,
        }


class OrderFaults:
    def __init__(self) -> None:
        self.faults: list[OrderFault] = []
        self.held: dict[int, HeldReply] = {}
        self.hidden_until: dict[str, float] = {}  # client id -> wall time (s) until lookups answer -2013
        self._hold_ids = itertools.count(1)

    def match(self, path: str, symbol: str, reduce_only: bool) -> OrderFault | None:
        return next((f for f in self.faults if f.kind not in LOOKUP and f.matches(path, symbol, reduce_only)), None)

    async def answer_lookup(self, path: str, symbol: str, answer: Callable[[], Response]) -> Response:
        """A lookup answered as the order stands now; under ``late_lookup_reply`` the answer (or the
        refusal) reaches the client ``seconds`` later, as a reply slow in transit would."""
        fault = next((f for f in self.faults if f.kind in LOOKUP and f.matches(path, symbol, False)), None)
        if fault is None:
            return answer()
        self.consume(fault)
        try:
            return answer()
        finally:
            await asyncio.sleep(fault.seconds)

    def consume(self, fault: OrderFault) -> None:
        fault.count -= 1
        if fault.count <= 0 and fault in self.faults:
            self.faults.remove(fault)

    def hide_too(self, fault: OrderFault, path: str, symbol: str, reduce_only: bool, client_id: str) -> None:
        """A pending ``false_not_found`` joins the submission another after-accept fault answers (a lost
        or unknown reply, then lookups that deny the order: the case it exists for) instead of waiting
        for a submission of its own, which a plain reply would make harmless."""
        if fault.kind not in AFTER_ACCEPT or fault.kind == "false_not_found":
            return
        joined = next((f for f in self.faults if f.kind == "false_not_found" and f.matches(path, symbol, reduce_only)),
                      None)
        if joined is not None:
            self.consume(joined)
            self.hidden_until[client_id] = time.time() + joined.seconds

    def hidden(self, client_id: str) -> bool:
        return self.hidden_until.get(client_id, 0.0) > time.time()

    async def hold(self, request: Request, client_id: str, path: str) -> None:
        """Wait until released (``POST /sim/order_faults/release``) or the client goes away."""
        held = HeldReply(next(self._hold_ids), client_id, path, int(time.time() * 1000))
        self.held[held.hold_id] = held
        released = asyncio.ensure_future(held.released.wait())
        gone = asyncio.ensure_future(_disconnected(request))
        try:
            await asyncio.wait({released, gone}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (released, gone):
                task.cancel()
            self.held.pop(held.hold_id, None)

    def release(self, client_id: str | None) -> int:
        chosen = [h for h in self.held.values() if client_id is None or h.client_id == client_id]
        for held in chosen:
            held.released.set()
        return len(chosen)

    def view(self) -> dict[str, Any]:
        return {
            "pending": [asdict(f) for f in self.faults],
            "held": [h.view() for h in self.held.values()],
            "hidden_client_ids": sorted(c for c in self.hidden_until if self.hidden(c)),
        }

    async def submit(
        self,
        request: Request,
        target: tuple[str, str, bool, str],
        place: Callable[[], Booked],
        commit: Callable[[], Awaitable[None]],
        view: Callable[[Booked], dict[str, Any]],
        lose: Callable[[Booked, OrderFault], None] | None = None,
    ) -> Response:
        """An order submission under the faults matching ``target`` (path, symbol, reduce-only, client
        ID): refused before ``place`` (which books or raises), or booked and then answered as the
        fault says. ``lose`` takes the ``lose_protective`` fault of an accepted algo order."""
        path, symbol, reduce_only, client_id = target
        fault = self.match(path, symbol, reduce_only)
        if fault is not None and fault.kind in BEFORE_ACCEPT:
            self.consume(fault)
            raise fault.error()
        booked = place()
        await commit()
        reply = JSONResponse(view(booked))
        if fault is None:
            return reply
        self.consume(fault)
        self.hide_too(fault, path, symbol, reduce_only, client_id)
        if fault.kind == "lose_protective" and lose is not None:
            lose(booked, fault)
        return await self.reply_after_accept(fault, request, client_id, reply)

    async def reply_after_accept(
        self, fault: OrderFault, request: Request, client_id: str, reply: Response
    ) -> Response:
        """The reply an accepted and booked order gets under an after-accept fault."""
        if fault.kind == "unknown_after_accept":
            return JSONResponse({"code": -1000, "msg": fault.msg or UNKNOWN_MSG}, status_code=503)
        if fault.kind == "timeout_after_accept":
            return JSONResponse({"code": -1007, "msg": fault.msg or TIMEOUT_MSG}, status_code=fault.http_status or 408)
        if fault.kind == "drop_after_accept":
            # The REST guard closes the connection instead of sending this reply.
            request.scope["sim.reply_control"]["drop"] = True
        elif fault.kind == "hold_reply":
            await self.hold(request, client_id, request.url.path)
        elif fault.kind == "false_not_found":
            self.hidden_until[client_id] = time.time() + fault.seconds
        return reply


async def _disconnected(request: Request) -> None:
    while (await request.receive())["type"] != "http.disconnect":
        pass
