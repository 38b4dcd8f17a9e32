"""Running the sim: ``serve`` for the CLI and ``durabot up``, ``SimTelegramServer`` for tests."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Iterator
from types import TracebackType

import uvicorn

from sim.telegram.app import SimTelegram
from sim.telegram.config import SimTelegramConfig


class _Server(uvicorn.Server):
    """uvicorn waits for open requests before it stops; a long poll would hold it for its whole timeout."""

    def __init__(self, config: uvicorn.Config, sim: SimTelegram) -> None:
        super().__init__(config)
        self.sim = sim

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        self.sim.release_polls()
        await super().shutdown(sockets)


class _EmbeddedServer(_Server):
    """A server that leaves Ctrl-C and SIGTERM to the process hosting it."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def _uvicorn_config(sim: SimTelegram) -> uvicorn.Config:
    return uvicorn.Config(sim, host=sim.config.host, port=sim.config.port, log_level="warning", lifespan="on",
                          proxy_headers=False, timeout_graceful_shutdown=2)


async def serve(config: SimTelegramConfig) -> None:
    """Serve until cancelled (Ctrl-C or SIGTERM under the CLI); the state is saved on the way out."""
    sim = SimTelegram(config)
    await _Server(_uvicorn_config(sim), sim).serve()


class SimTelegramServer:
    """An in-process sim on a real socket; ``port=0`` in the config picks a free port. It serves from the
    caller's event loop, so talk to it with async clients only::

        async with SimTelegramServer(SimTelegramConfig(port=0)) as server:
            bot = Bot(server.config.token, session=AiohttpSession(api=TelegramAPIServer.from_base(server.url)))
    """

    def __init__(self, config: SimTelegramConfig) -> None:
        self.config = config
        self.sim = SimTelegram(config)
        self.port = config.port
        self._server: _EmbeddedServer | None = None
        self._task: asyncio.Task[None] | None = None
        self._socket: socket.socket | None = None

    @property
    def url(self) -> str:
        """The Bot API base URL (``DURABOT_TELEGRAM_API_URL``); the controls are under ``/sim`` of it."""
        host = f"[{self.config.host}]" if ":" in self.config.host else self.config.host
        return f"http://{host}:{self.port}"

    @property
    def token(self) -> str:
        return self.config.token

    async def start(self) -> None:
        if self._task is not None:
            raise RuntimeError("the sim telegram is already running")
        # IPPROTO_TCP explicitly: asyncio sets TCP_NODELAY on accepted sockets only when the listening
        # socket names it, and without it every reply waits ~40 ms on Nagle plus delayed ACKs.
        family = socket.AF_INET6 if ":" in self.config.host else socket.AF_INET
        self._socket = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._socket.bind((self.config.host, self.config.port))
        self.port = self._socket.getsockname()[1]
        self._server = _EmbeddedServer(_uvicorn_config(self.sim), self.sim)
        self._task = asyncio.create_task(self._server.serve(sockets=[self._socket]))
        while not self._server.started:
            if self._task.done():
                await self._task
                raise RuntimeError("the sim telegram stopped while starting")
            await asyncio.sleep(0.01)

    async def stop(self) -> None:
        if self._server is None or self._task is None:
            return
        self._server.should_exit = True
        try:
            await self._task
        finally:
            if self._socket is not None:
                self._socket.close()
            self._server = self._task = self._socket = None

    async def __aenter__(self) -> SimTelegramServer:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()
