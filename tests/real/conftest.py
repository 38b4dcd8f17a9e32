"""Fixtures of the real-trading tests: the sim exchange (the only exchange reachable here), a gateway
and the product's `real` worker on a unique task-queue prefix (real Temporal + SecantusDB), and users
with a futures API key provisioned on the sim and saved through the API."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from activities.binance.key_vault import new_master_key_text
from core.contracts import TASK_QUEUE_REAL, task_queue_name
from sim.exchange import SimExchangeServer
from tests.conftest import enrol_two_factor, record_histories, registered_and_logged_in, worker_running

PASSWORD = "correct horse battery staple"
SYMBOL = "BTCUSDT"


@pytest.fixture
async def sim(start_sim) -> SimExchangeServer:
    return await start_sim(max_candles_per_series=1500)


@pytest.fixture
def real_settings(settings, jwt_private_pem, sim):
    return settings.model_copy(update={
        "jwt_private_key": SecretStr(jwt_private_pem), "master_key": SecretStr(new_master_key_text()),
        "login_attempts_per_ip": 1000, "task_queue_prefix": f"real-{uuid.uuid4().hex[:10]}-",
        "exchange_rest_url": sim.rest_url, "exchange_futures_url": sim.rest_url,
        "exchange_futures_ws_url": sim.ws_url,
        "order_confirm_expiry_s": 30.0, "order_submit_timeout_s": 3.0, "order_request_timeout_s": 2.0,
        "order_protection_window_s": 3.0, "order_poll_interval_s": 0.5,
    })


RECORD_ENV = "DURABOT_RECORD_ORDER_HISTORIES"


@pytest.fixture
async def real_worker(real_settings, temporal_client, mongo_client) -> AsyncIterator[Any]:
    async with worker_running(temporal_client, real_settings, mongo_client[real_settings.mongo_database],
                              "real-test", TASK_QUEUE_REAL) as worker:
        yield worker
        # With DURABOT_RECORD_ORDER_HISTORIES=<dir>, every order workflow of the test is written there.
        queue = task_queue_name(TASK_QUEUE_REAL, real_settings.task_queue_prefix)
        ids = [w.id async for w in temporal_client.list_workflows(f"TaskQueue = '{queue}'")]
        await record_histories(temporal_client, sorted(set(ids)), RECORD_ENV)


@pytest.fixture
async def gateway(real_settings, run_gateway, real_worker) -> AsyncIterator[Any]:
    async with run_gateway(real_settings) as gw:
        yield gw


@dataclass
class Trader:
    user_id: str
    access: str
    key_id: str | None
    api_key: str
    api_secret: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.access}"}


async def sim_call(sim: SimExchangeServer, method: str, path: str, **kwargs: Any) -> Any:
    async with httpx.AsyncClient(base_url=sim.rest_url, timeout=10) as client:
        reply = await client.request(method, path, **kwargs)
    assert reply.status_code < 300, reply.text
    return reply.json()


async def order_requests(sim: SimExchangeServer) -> list[dict[str, Any]]:
    """Every order request the sim received (its request log), whatever it answered."""
    return [r for r in await sim_call(sim, "GET", "/sim/requests")
            if r["path"] in ("/fapi/v1/order", "/fapi/v1/algoOrder") and r["method"] in ("POST",)]


SignUp = Callable[..., Awaitable[Trader]]


async def new_trader(gateway: Any, sim: SimExchangeServer, *, two_factor: bool = True,
                     with_key: bool = True) -> Trader:
    """A user logged in (a human session); with ``two_factor``, enrolled and stepped up; with
    ``with_key``, a futures key provisioned on the sim and saved through the API."""
    body = await registered_and_logged_in(gateway.http, PASSWORD)
    headers = {"Authorization": f"Bearer {body['access_token']}"}
    key = await sim_call(sim, "POST", "/sim/keys", json={
        "enable_futures": True, "balances": {"USDT": "100000.00000000"}})
    key_id = None
    if two_factor:
        await enrol_two_factor(gateway.http, headers)
    if with_key:
        assert two_factor, "saving an exchange key needs a two-factor step-up"
        saved = await gateway.http.post("/api/settings/api-keys", headers=headers, json={
            "label": "futures", "api_key": key["api_key"], "api_secret": key["api_secret"]})
        assert saved.status_code == 201, saved.text
        key_id = saved.json()["key_id"]
    return Trader(body["user_id"], body["access_token"], key_id, key["api_key"], key["api_secret"])


@pytest.fixture
def sign_up(gateway, sim) -> SignUp:
    async def sign_up(*, two_factor: bool = True, with_key: bool = True) -> Trader:
        return await new_trader(gateway, sim, two_factor=two_factor, with_key=with_key)

    return sign_up
