"""Running the sim: ``serve`` for the CLI and ``durabot up``, ``SimXaiServer`` for tests."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Iterator
from types import TracebackType

import uvicorn

from sim.xai.app import SimXai
from sim.xai.chat import DROPPED
from sim.xai.config import SimXaiConfig


class _QuietDrops(logging.Filter):
    """uvicorn reports an endpoint's non-None return as an error; the drop fault returns one on purpose."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (isinstance(record.args, tuple) and DROPPED in record.args)


def _quiet_drops() -> None:
    logger = logging.getLogger("uvicorn.error")
    if not any(isinstance(f, _QuietDrops) for f in logger.filters):
        logger.addFilter(_QuietDrops())


def _uvicorn_config(sim: SimXai) -> uvicorn.Config:
    config = uvicorn.Config(sim, host=sim.config.host, port=sim.config.port, log_level="warning", lifespan="on",
                            proxy_headers=False, timeout_graceful_shutdown=2)
    _quiet_drops()  # after Config: it (re)configures uvicorn's loggers
    return config


class _EmbeddedServer(uvicorn.Server):
    """A uvicorn server that leaves Ctrl-C and SIGTERM to the process hosting it."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


async def serve(config: SimXaiConfig) -> None:
    """Serve until cancelled (Ctrl-C or SIGTERM under the CLI); the ledger is saved on the way out."""
    sim = SimXai(config)
    await uvicorn.Server(_uvicorn_config(sim)).serve()


class SimXaiServer:
    """An in-process sim on a real socket; ``port=0`` in the config picks a free port. It serves from
    the caller's event loop, so talk to it with async clients only::

        async with SimXaiServer(SimXaiConfig(port=0)) as server:
            client = AsyncOpenAI(base_url=server.base_url, api_key="any", max_retries=0)
    """

    def __init__(self, config: SimXaiConfig) -> None:
        self.config = config
        self.sim = SimXai(config)
        self.port = config.port
        self._server: _EmbeddedServer | None = None
        self._task: asyncio.Task[None] | None = None
        self._socket: socket.socket | None = None

    @property
    def url(self) -> str:
        host = f"[{self.config.host}]" if ":" in self.config.host else self.config.host
        return f"http://{host}:{self.port}"

    @property
    def base_url(self) -> str:
        """What the OpenAI SDK's ``base_url`` (and ``DURABOT_XAI_BASE_URL``) takes."""
        return f"{self.url}/v1"

    async def start(self) -> None:
        if self._task is not None:
            raise RuntimeError("the sim xai is already running")
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
                raise RuntimeError("the sim xai stopped while starting")
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

    async def __aenter__(self) -> SimXaiServer:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()
