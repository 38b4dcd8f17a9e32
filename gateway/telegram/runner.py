"""``durabot telegram``: the bot process. It builds the application layer as the gateway does (Temporal,
MongoDB, the auth kit, ``Services.build``), announces its commands and polls until stopped."""

from __future__ import annotations

import asyncio
import logging
import socket
from pathlib import Path

from activities.db import ensure_schema
from core.connect import connect_mongo, connect_temporal
from core.settings import Settings
from gateway.telegram.bot import announce_commands, build_bot, build_dispatcher
from gateway.telegram.polling import UpdateLoop
from services.auth.kit import AuthServices
from services.container import Services
from services.event_hub import EventHub

log = logging.getLogger("durabot.telegram")


def heartbeat_path(settings: Settings) -> Path:
    return settings.var_dir / "telegram" / "heartbeat"


async def run_bot(settings: Settings, token: str) -> None:
    temporal = await connect_temporal(settings, retry_budget_s=settings.gateway_dependency_timeout_s)
    mongo = await connect_mongo(settings, selection_timeout_s=settings.gateway_dependency_timeout_s)
    try:
        db = mongo[settings.mongo_database]
        await ensure_schema(db)
        auth = await AuthServices.start(settings)
        # The bot fans out no events: the hub is built for the services' sake and never started.
        hub = EventHub(db, follower_id=f"telegram:{socket.gethostname()}")
        services = Services.build(settings, temporal, mongo, auth, hub)
        bot = build_bot(settings, token)
        try:
            await announce_commands(bot)
            me = await bot.me()
            log.info("telegram bot polling", extra={"fields": {"bot": me.username, "api": settings.telegram_api_url}})
            await UpdateLoop(bot, build_dispatcher(services), services.telegram_updates,
                             heartbeat=heartbeat_path(settings)).run()
        finally:
            await bot.session.close()
    finally:
        await mongo.close()


def run_until_interrupted(settings: Settings, token: str) -> None:
    try:
        asyncio.run(run_bot(settings, token))
    except KeyboardInterrupt:
        log.info("telegram bot stopped")
