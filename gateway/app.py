"""The FastAPI gateway: REST, /ws and the dashboard, adapters over the application layer (``services``).

The lifespan builds the clients and the services once; routers reach only the services, and every
domain error becomes its HTTP answer in ``gateway.errors``.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from pymongo.errors import ConnectionFailure

from activities.db import ensure_schema
from core.connect import connect_mongo, connect_temporal
from core.logs import request_id_var
from core.settings import Settings, get_settings
from gateway import errors
from gateway.mcp.server import serving_mcp
from gateway.routers import (
    agent_tokens,
    ai,
    ai_training,
    auth,
    backtests,
    health,
    market,
    oauth,
    paper_trading,
    real_account,
    real_session,
    real_trading,
    settings_export,
    system,
    telegram,
    tuning,
    two_factor,
    ws,
)
from gateway.routers import settings as settings_router
from gateway.static import mount_dashboard
from services.auth.kit import AuthServices
from services.container import Services
from services.event_hub import EventHub

log = logging.getLogger("durabot.gateway")

REQUEST_ID_HEADER = "X-Request-ID"
DATABASE_UNREACHABLE = "the database could not answer; try again shortly"


class UnavailableOut(BaseModel):
    detail: str


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        temporal = await connect_temporal(settings, retry_budget_s=settings.gateway_dependency_timeout_s)
        mongo = await connect_mongo(settings, selection_timeout_s=settings.gateway_dependency_timeout_s)
        try:
            db = mongo[settings.mongo_database]
            await ensure_schema(db)
            auth_services = await AuthServices.start(settings)
            # Stable per host and port, so a restarted gateway resumes its own change stream.
            hub = EventHub(db, follower_id=f"{socket.gethostname()}:{settings.gateway_port}")
            await hub.start()
            services = Services.build(settings, temporal, mongo, auth_services, hub)
            app.state.services = services
            live_sessions = asyncio.create_task(services.accounts.live_sessions.run(), name="live-sessions")
            log.info("gateway ready", extra={"fields": {"url": settings.gateway_url}})
            try:
                async with serving_mcp(services):
                    yield
            finally:
                live_sessions.cancel()
                await asyncio.gather(live_sessions, return_exceptions=True)
                await hub.stop()
        finally:
            await mongo.close()

    app = FastAPI(
        title="Durabot API",
        version="0.1.0",
        description="Crypto trading on durable Temporal workflows: REST and WebSocket gateway.",
        lifespan=lifespan,
        responses={503: {"model": UnavailableOut, "description": "A dependency (Temporal or MongoDB) is unreachable"}},
    )

    errors.install(app)

    @app.exception_handler(ConnectionFailure)
    async def database_unreachable(request: Request, exc: ConnectionFailure) -> JSONResponse:
        # A database outage is the server's temporary state, not the caller's fault and not a bug.
        log.warning("database unreachable", extra={"fields": {"path": request.url.path, "error": type(exc).__name__}})
        return JSONResponse({"detail": DATABASE_UNREACHABLE}, status_code=503, headers={"Retry-After": "5"})

    @app.middleware("http")
    async def request_context(request: Request, call_next) -> Response:
        # Accept a caller's ID so one request can be traced across services; otherwise mint one.
        incoming = request.headers.get(REQUEST_ID_HEADER, "")
        rid = incoming if 0 < len(incoming) <= 64 and incoming.isprintable() else uuid.uuid4().hex
        token = request_id_var.set(rid)
        start = time.perf_counter()
        try:
            response = await call_next(request)
        finally:
            request_id_var.reset(token)
        response.headers[REQUEST_ID_HEADER] = rid
        log.info(
            "request",
            extra={"fields": {"request_id": rid, "method": request.method, "path": request.url.path,
                              "status": response.status_code,
                              "ms": round((time.perf_counter() - start) * 1000, 2)}},
        )
        return response

    app.include_router(health.router)
    app.include_router(market.router)
    app.include_router(ws.router)
    app.include_router(auth.router)
    app.include_router(two_factor.router)
    app.include_router(settings_router.router)
    app.include_router(paper_trading.router)
    app.include_router(settings_export.router)
    app.include_router(backtests.router)
    app.include_router(system.router)
    app.include_router(tuning.router)
    app.include_router(real_trading.router)
    app.include_router(real_account.router)
    app.include_router(real_session.router)
    app.include_router(agent_tokens.router)
    app.include_router(oauth.router)
    app.include_router(ai.router)
    app.include_router(ai_training.router)
    app.include_router(telegram.router)
    mount_dashboard(app)
    return app
