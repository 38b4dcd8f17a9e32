"""The gateway over a real socket, in front of the real Temporal dev server and SecantusDB."""

from __future__ import annotations

import asyncio
import json

from core.logs import redact
from gateway.app import REQUEST_ID_HEADER
from tests.conftest import running_all
from worker.main import build_workers


async def test_health_reports_each_dependency_with_latency(
    settings, temporal_client, mongo_client, task_queue, run_gateway
):
    settings = settings.model_copy(update={"task_queue_prefix": task_queue})
    async with run_gateway(settings) as gw:
        http = gw.http
        without_workers = (await http.get("/api/health")).json()
        assert without_workers["status"] == "degraded"
        assert without_workers["dependencies"]["workers"]["status"] == "error"
        assert "no worker polling" in without_workers["dependencies"]["workers"]["detail"]

        workers = build_workers(temporal_client, settings, mongo_client[settings.mongo_database], identity="gw-test")
        async with running_all(workers):
            # A worker shows as a poller once its first poll reaches the server.
            for _ in range(100):
                reply = await http.get("/api/health", params={"deep": "true"})
                if reply.json()["status"] == "ok":
                    break
                await asyncio.sleep(0.1)
    assert reply.status_code == 200
    body = reply.json()
    assert body["status"] == "ok"
    deps = body["dependencies"]
    assert set(deps) == {"temporal", "mongodb", "workers", "feed", "ai", "workflow_probe"}
    for dep in deps.values():
        assert dep["status"] == "ok", dep
        assert dep["latency_ms"] > 0
    assert deps["workflow_probe"]["detail"].startswith("executed on:")


async def test_health_is_503_when_mongodb_goes_down(settings, spawn_mongo, run_gateway):
    mongo = spawn_mongo()
    settings = settings.model_copy(update={"mongo_uri": mongo.uri, "connect_timeout_s": 2})
    async with run_gateway(settings) as gw:
        http = gw.http
        assert (await http.get("/api/health")).json()["dependencies"]["mongodb"]["status"] == "ok"
        mongo.stop()
        reply = await http.get("/api/health")
    assert reply.status_code == 503
    body = reply.json()
    assert body["status"] == "degraded"
    assert body["dependencies"]["mongodb"]["status"] == "error"
    assert body["dependencies"]["temporal"]["status"] == "ok"


async def test_request_ids_are_echoed_or_minted_and_logged(settings, run_gateway):
    async with run_gateway(settings) as gw:
        echoed = await gw.http.get("/api/health", headers={REQUEST_ID_HEADER: "trace-123"})
        minted = await gw.http.get("/api/health")
        logged = gw.logs.getvalue()
    assert echoed.headers[REQUEST_ID_HEADER] == "trace-123"
    assert len(minted.headers[REQUEST_ID_HEADER]) == 32
    records = [json.loads(line) for line in logged.splitlines()]
    # The root logger may also carry a request of another gateway still winding down in this process:
    # only ours are checked, each logged exactly once.
    ours = {"trace-123", minted.headers[REQUEST_ID_HEADER]}
    requests = [r for r in records if r["msg"] == "request" and r["logger"] == "durabot.gateway"
                and r["request_id"] in ours]
    assert sorted(r["request_id"] for r in requests) == sorted(ours)
    assert all(r["path"] == "/api/health" and r["status"] == 200 and r["ms"] >= 0 for r in requests)


async def test_openapi_and_docs_are_served_with_error_statuses_declared(settings, run_gateway):
    async with run_gateway(settings) as gw:
        http = gw.http
        docs = await http.get("/docs")
        schema = (await http.get("/openapi.json")).json()
    assert docs.status_code == 200 and "swagger" in docs.text.lower()
    assert set(schema["paths"]["/api/health"]["get"]["responses"]) >= {"200", "503"}


def test_log_redaction_hides_secrets():
    line = redact(
        'login password=hunter2 Authorization: Bearer abc.def.ghi api_key="K3Y" '
        "mongodb://user:pw@host:27017/db eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiIxMjM0NTYifQ.c2lnbmF0dXJl"
    )
    for secret in ("hunter2", "abc.def.ghi", "K3Y", ":pw@", "eyJzdWIiOiIxMjM0NTYifQ"):
        assert secret not in line, line
    assert "[REDACTED]" in line
