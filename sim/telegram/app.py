"""Assembly of one sim Telegram: state, faults, request log, the Bot API endpoint, controls and the chat page."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from sim.telegram.botapi import BotApiEndpoint
from sim.telegram.config import SimTelegramConfig
from sim.telegram.control import control_routes
from sim.telegram.faults import Faults
from sim.telegram.ledger import RequestLog
from sim.telegram.methods import BotMethods
from sim.telegram.page import chat_page
from sim.telegram.state import SimState

log = logging.getLogger(__name__)


async def _not_found(request: Request, exc: Exception) -> Response:
    # Telegram answers any path that is not /bot<token>/<method> so.
    return JSONResponse({"ok": False, "error_code": 404, "description": "Not Found"}, status_code=404)


async def _home(request: Request) -> Response:
    return RedirectResponse("/chat")


class SimTelegram:
    """Everything one running sim holds; the instance itself is the ASGI app uvicorn serves."""

    def __init__(self, config: SimTelegramConfig) -> None:
        self.config = config
        self.state = SimState(config)
        self.state.load()
        self.faults = Faults()
        self.requests = RequestLog(config.max_logged_requests)
        self.methods = BotMethods(config, self.state)
        bot_api = BotApiEndpoint(config, self.methods, self.faults, self.requests)
        routes = [
            Route("/bot{token}/{method}", bot_api.handle, methods=["GET", "POST"]),
            *control_routes(self.state, self.faults, self.requests),
            Route("/chat", chat_page, methods=["GET"]),
            Route("/", _home, methods=["GET"]),
        ]
        self.starlette = Starlette(routes=routes, lifespan=self._lifespan,
                                   exception_handlers={404: _not_found})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.starlette(scope, receive, send)

    def release_polls(self) -> None:
        """End a waiting getUpdates now (with no updates), so a shutdown does not wait out its timeout."""
        self.state.updates.release()

    def save(self) -> None:
        self.state.save()

    @contextlib.asynccontextmanager
    async def _lifespan(self, app: Starlette) -> AsyncIterator[None]:
        log.info("sim telegram: bot @%s, %d users, %d chats, next update id %d", self.config.bot_username,
                 len(self.state.world.users), len(self.state.world.chats), self.state.updates.next_id)
        try:
            yield
        finally:
            self.save()
