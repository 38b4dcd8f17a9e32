"""Connecting to Temporal and MongoDB, with errors a person can act on."""

from __future__ import annotations

import asyncio

from pymongo import AsyncMongoClient
from pymongo.errors import ConfigurationError, PyMongoError
from temporalio.client import Client, RetryConfig

from core.settings import Settings


def mongo_client(uri: str, timeout_s: float) -> AsyncMongoClient:
    ms = int(timeout_s * 1000)
    return AsyncMongoClient(uri, serverSelectionTimeoutMS=ms, connectTimeoutMS=ms, tz_aware=True)


class DependencyError(RuntimeError):
    """A dependency is misconfigured or out of reach; the message is one line for the operator."""


async def connect_temporal(settings: Settings, *, retry_budget_s: float | None = None) -> Client:
    """A client of the configured Temporal. ``retry_budget_s`` bounds how long a call that cannot reach
    the server is retried (the SDK's default is 10 s); the gateway answers 503 after it rather than
    holding a request that long."""
    target = settings.temporal_target
    retry = None if retry_budget_s is None else RetryConfig(max_elapsed_time_millis=int(retry_budget_s * 1000))
    deadline = asyncio.get_running_loop().time() + settings.connect_timeout_s
    last: Exception | None = None
    while asyncio.get_running_loop().time() < deadline:
        try:
            return await asyncio.wait_for(
                Client.connect(target, namespace=settings.temporal_namespace, retry_config=retry),
                timeout=settings.connect_timeout_s,
            )
        except Exception as exc:  # the SDK raises bare RuntimeError for connection failures
            last = exc
            await asyncio.sleep(0.5)
    raise DependencyError(
        f"cannot reach Temporal at {target} within {settings.connect_timeout_s:g}s "
        f"(setting DURABOT_TEMPORAL_ADDRESS): {str(last).splitlines()[0] if last else 'timed out'}"
    )


async def connect_mongo(settings: Settings, *, selection_timeout_s: float | None = None) -> AsyncMongoClient:
    """A client of the configured MongoDB, waiting up to ``connect_timeout_s`` for it to answer.
    ``selection_timeout_s`` bounds how long each later operation waits for an unreachable server
    (default: ``connect_timeout_s``); the gateway answers 503 after it."""
    try:
        client = mongo_client(settings.mongo_target, selection_timeout_s or settings.connect_timeout_s)
    except (ConfigurationError, ValueError) as exc:
        raise DependencyError(f"invalid MongoDB URI (setting DURABOT_MONGO_URI): {exc}") from None
    deadline = asyncio.get_running_loop().time() + settings.connect_timeout_s
    while True:
        try:
            await client.admin.command("ping")
            return client
        except PyMongoError as exc:
            if asyncio.get_running_loop().time() >= deadline:
                await client.close()
                raise DependencyError(
                    f"cannot reach MongoDB at {_hostinfo(settings.mongo_target)} within "
                    f"{settings.connect_timeout_s:g}s (setting DURABOT_MONGO_URI): {type(exc).__name__}"
                ) from None
            await asyncio.sleep(0.5)


def _hostinfo(uri: str) -> str:
    # Never echo credentials: keep only what follows the '@' (or the whole netloc when none).
    netloc = uri.split("://", 1)[-1].split("/", 1)[0]
    return netloc.rsplit("@", 1)[-1]
