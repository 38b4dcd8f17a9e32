"""Running the sim: ``serve`` for the CLI and ``durabot up``, ``SimExchangeServer`` for tests."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Iterator
from types import TracebackType

import uvicorn

from sim.exchange.app import SimExchange
from sim.exchange.config import SimExchangeConfig


def _uvicorn_config(sim: SimExchange) -> uvicorn.Config:
    config = sim.config
    return uvicorn.Config(
        sim.asgi,
        host=config.host,
        port=config.port,
        log_level="warning",
        ws="websockets-sansio",
        ws_ping_interval=config.ws_ping_interval_s,
        ws_ping_timeout=config.ws_ping_timeout_s,
        lifespan="on",
        timeout_graceful_shutdown=2,
    )


class _EmbeddedServer(uvicorn.Server):
    """A uvicorn server that leaves Ctrl-C and SIGTERM to the process hosting it."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


async def serve(config: SimExchangeConfig) -> None:
    """Serve until cancelled (Ctrl-C under the CLI)."""
    sim = SimExchange(config)
    await uvicorn.Server(_uvicorn_config(sim)).serve()


class SimExchangeServer:
    """An in-process sim on a real socket; ``port=0`` in the config picks a free port.

    It serves from the caller's event loop, so talk to it with async clients only (a blocking call
    from the same loop would wait for a server that cannot run)::

        async with SimExchangeServer(config) as sim, httpx.AsyncClient() as http:
            await http.get(sim.rest_url + "/api/v3/ping")
    """

    def __init__(self, config: SimExchangeConfig) -> None:
        self.config = config
        self.sim: SimExchange | None = None
        self._server: _EmbeddedServer | None = None
        self._task: asyncio.Task[None] | None = None
        self._socket: socket.socket | None = None
        self.port = config.port

    @property
    def rest_url(self) -> str:
        return f"http://{self._url_host}:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://{self._url_host}:{self.port}"

    @property
    def _url_host(self) -> str:
        return f"[{self.config.host}]" if ":" in self.config.host else self.config.host

    @property
    def exchange(self) -> SimExchange:
        if self.sim is None:
            raise RuntimeError("the sim exchange is not running")
        return self.sim

    async def start(self) -> None:
        if self._task is not None:
            raise RuntimeError("the sim exchange is already running")
        self.sim = await asyncio.to_thread(SimExchange, self.config)
        # IPPROTO_TCP explicitly: asyncio sets TCP_NODELAY on accepted sockets only when the listening
        # socket names it, and without it every reply waits ~40 ms on Nagle plus delayed ACKs.
        family = socket.AF_INET6 if ":" in self.config.host else socket.AF_INET
        self._socket = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._socket.bind((self.config.host, self.config.port))
        self.port = self._socket.getsockname()[1]
        self._server = _EmbeddedServer(_uvicorn_config(self.sim))
        self._task = asyncio.create_task(self._server.serve(sockets=[self._socket]))
        while not self._server.started:
            if self._task.done():
                await self._task
                raise RuntimeError("the sim exchange stopped while starting")
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

    async def __aenter__(self) -> SimExchangeServer:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()
