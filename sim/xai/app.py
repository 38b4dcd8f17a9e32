"""Assembly of one sim xAI: faults, ledger, the chat endpoint and the Starlette routes."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.types import Receive, Scope, Send

from sim.xai.chat import PATH as CHAT_PATH
from sim.xai.chat import ChatEndpoint
from sim.xai.config import SimXaiConfig
from sim.xai.control import control_routes
from sim.xai.faults import Faults
from sim.xai.ledger import Ledger
from sim.xai.models import model_routes

log = logging.getLogger(__name__)


class SimXai:
    """Everything one running sim holds; the instance itself is the ASGI app uvicorn serves."""

    def __init__(self, config: SimXaiConfig) -> None:
        self.config = config
        self.faults = Faults()
        self.ledger = Ledger(config.max_logged_requests)
        if config.state_dir is not None:
            self.ledger.load(config.state_dir)
        self.chat = ChatEndpoint(config, self.faults, self.ledger)
        routes = [*model_routes(config, self.ledger), *control_routes(self.faults, self.ledger)]
        self.starlette = Starlette(routes=routes, lifespan=self._lifespan)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> object | None:
        if scope["type"] == "http" and scope["path"] == CHAT_PATH:
            return await self.chat(scope, receive, send)
        await self.starlette(scope, receive, send)
        return None

    def save(self) -> None:
        if self.config.state_dir is not None:
            self.ledger.save(self.config.state_dir)

    @contextlib.asynccontextmanager
    async def _lifespan(self, app: Starlette) -> AsyncIterator[None]:
        log.info("sim xai: models %s, %d logged requests", ", ".join(self.config.models), len(self.ledger.entries))
        try:
            yield
        finally:
            self.save()
