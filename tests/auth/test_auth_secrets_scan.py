"""After a scripted session (register, log in, turn two-factor on, save an exchange key, test it,
with workers running a workflow), the key and secret, the TOTP secret and the recovery codes appear
nowhere: not in any MongoDB collection, not in the gateway's logs, not in any Temporal workflow
history of the namespace."""

from __future__ import annotations

import asyncio

import bson

from tests.conftest import enrol_two_factor, running_all
from worker.main import build_workers

from .conftest import provision_sim_key


async def test_exchange_keys_never_reach_mongodb_logs_or_temporal(
    auth_settings, temporal_client, mongo_client, task_queue, sim, run_gateway
):
    settings = auth_settings.model_copy(update={"task_queue_prefix": task_queue, "exchange_rest_url": sim.rest_url})
    key = await provision_sim_key(sim, enable_withdrawals=True)
    secrets = (key["api_key"], key["api_secret"])
    password = "a passphrase that is longer than seventy-two bytes, which bcrypt alone would cut off"
    async with run_gateway(settings) as gw:
        http = gw.http
        assert (await http.post("/api/auth/register", json={"email": "scan@example.com", "password": password}))\
            .status_code == 201
        tokens = (await http.post("/api/auth/login", json={"email": "scan@example.com", "password": password})).json()
        headers = {"Authorization": f"Bearer {tokens['access_token']}"}
        totp = await enrol_two_factor(http, headers)  # saving a key needs a step-up; enrolling is one
        secrets += (totp.secret, *totp.recovery)
        saved = await http.post("/api/settings/api-keys", headers=headers,
                                json={"label": "scan", "api_key": key["api_key"], "api_secret": key["api_secret"]})
        assert saved.status_code == 201
        tested = await http.post(f"/api/settings/api-keys/{saved.json()['key_id']}/test", headers=headers)
        assert tested.status_code == 200 and tested.json()["ok"] is True
        # Workers and a workflow run meanwhile, so there are histories to scan.
        workers = build_workers(temporal_client, settings, mongo_client[settings.mongo_database], identity="scan")
        async with running_all(workers):
            for _ in range(100):
                health = (await http.get("/api/health", params={"deep": "true"})).json()
                if health["status"] == "ok":
                    break
                await asyncio.sleep(0.1)
        assert health["dependencies"]["workflow_probe"]["status"] == "ok", health
        logs = gw.logs.getvalue()

    assert '"/api/settings/api-keys' in logs  # the capture did see the session
    for secret in secrets:
        assert secret not in logs

    db = mongo_client[settings.mongo_database]
    dumped = 0
    for name in await db.list_collection_names():
        async for doc in db[name].find():
            raw = bson.encode(doc)
            dumped += 1
            for secret in secrets:
                assert secret.encode() not in raw and secret not in repr(doc), f"{secret[:4]}… found in {name}"
    assert dumped >= 5

    histories = 0
    async for execution in temporal_client.list_workflows():
        history = await temporal_client.get_workflow_handle(execution.id, run_id=execution.run_id).fetch_history()
        # Raw event bytes: payloads are stored as-is there (the JSON form would hide them in base64).
        raw = b"".join(event.SerializeToString() for event in history.events)
        histories += 1
        for secret in secrets:
            assert secret.encode() not in raw, f"key material in the history of {execution.id}"
    assert histories >= 1
