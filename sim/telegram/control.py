"""The control API under ``/sim`` (not Telegram's): people and chats for tests and the web chat page, ground
truth (messages, callback answers, the request log, pending updates) and faults. JSON in, JSON out;
refusals are ``{"error": "…"}`` with 400, 404 or 409."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from sim.telegram.faults import Faults
from sim.telegram.ledger import RequestLog
from sim.telegram.state import ControlError, SimState

Handler = Callable[[Request], Awaitable[Any]]


async def _body(request: Request) -> dict[str, Any]:
    try:
        body = json.loads(await request.body() or b"{}")
    except ValueError:
        raise ControlError(400, "the body must be JSON") from None
    if not isinstance(body, dict):
        raise ControlError(400, "the body must be a JSON object")
    return body


def _path_int(request: Request, name: str) -> int:
    raw = request.path_params[name]
    try:
        return int(raw)
    except ValueError:
        raise ControlError(400, f"{name} must be an integer, got {raw!r}") from None


def _json(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        try:
            return JSONResponse(await handler(request))
        except ControlError as error:
            return JSONResponse({"error": error.message}, status_code=error.status)

    return endpoint


def control_routes(state: SimState, faults: Faults, log: RequestLog) -> list[Route]:
    async def health(request: Request) -> Any:
        return {"ok": True}

    async def users(request: Request) -> Any:
        if request.method == "POST":
            return state.add_user(await _body(request)).control()
        return [user.control() for user in state.world.users.values()]

    async def blocked(request: Request) -> Any:
        body = await _body(request)
        if not isinstance(body.get("blocked"), bool):
            raise ControlError(400, "blocked must be true or false")
        return state.set_blocked(_path_int(request, "user_id"), body["blocked"]).control()

    async def chats(request: Request) -> Any:
        if request.method == "POST":
            body = await _body(request)
            chat_id, user_id = body.get("chat_id"), body.get("user_id")
            if not isinstance(chat_id, int) or not isinstance(user_id, int):
                raise ControlError(400, "chat_id (negative) and user_id (who adds the bot) must be integers")
            title = body.get("title")
            if title is not None and (not isinstance(title, str) or not title.strip()):
                raise ControlError(400, "title must be a non-empty string")
            return state.world.chat_control(state.add_group(chat_id, title, user_id))
        return [state.world.chat_control(chat) for chat in state.world.chats.values()]

    async def chat(request: Request) -> Any:
        return state.world.chat_control(state.chat(_path_int(request, "chat_id")))

    async def messages(request: Request) -> Any:
        chat_id = _path_int(request, "chat_id")
        if request.method == "POST":
            return state.user_message(chat_id, await _body(request))
        include_deleted = request.query_params.get("include_deleted", "").lower() in ("1", "true", "yes")
        return [{**m.control(), **({"deleted": True} if m.deleted else {})}
                for m in state.chat(chat_id).messages if include_deleted or not m.deleted]

    async def callbacks(request: Request) -> Any:
        return state.press(_path_int(request, "chat_id"), await _body(request))

    async def callback_answers(request: Request) -> Any:
        return list(state.world.answers)

    async def fault_rules(request: Request) -> Any:
        if request.method == "POST":
            try:
                faults.add(await _body(request))
            except ValueError as exc:
                raise ControlError(400, str(exc)) from None
        elif request.method == "DELETE":
            faults.clear()
        return faults.as_list()

    async def requests(request: Request) -> Any:
        if request.method == "DELETE":
            log.clear()
        return list(log.entries)

    async def updates(request: Request) -> Any:
        return {"pending": state.updates.pending, "next_update_id": state.updates.next_id,
                "allowed_updates": state.updates.allowed_list}

    async def commands(request: Request) -> Any:
        return [{"scope": json.loads(key.split("|", 1)[0]), "language_code": key.split("|", 1)[1],
                 "commands": listed} for key, listed in state.world.commands.items()]

    routes: list[tuple[str, Handler, list[str]]] = [
        ("/sim/health", health, ["GET"]),
        ("/sim/users", users, ["GET", "POST"]),
        ("/sim/users/{user_id}/blocked", blocked, ["POST"]),
        ("/sim/chats", chats, ["GET", "POST"]),
        ("/sim/chats/{chat_id}", chat, ["GET"]),
        ("/sim/chats/{chat_id}/messages", messages, ["GET", "POST"]),
        ("/sim/chats/{chat_id}/callbacks", callbacks, ["POST"]),
        ("/sim/callback_answers", callback_answers, ["GET"]),
        ("/sim/faults", fault_rules, ["GET", "POST", "DELETE"]),
        ("/sim/requests", requests, ["GET", "DELETE"]),
        ("/sim/updates", updates, ["GET"]),
        ("/sim/commands", commands, ["GET"]),
    ]
    return [Route(path, _json(handler), methods=methods) for path, handler, methods in routes]
