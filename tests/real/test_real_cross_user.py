"""Object-level authorisation of /api/real-trading (OWASP API1): user B aims every route that names an
object (an order ID, a position's symbol) at user A's, and nothing of A's is read, sent or changed.

Routes come from the OpenAPI schema, so a new route with a path parameter joins the suite by itself
(and fails it until the suite knows which of A's objects to aim it at)."""

from __future__ import annotations

import re
from typing import Any

from tests.conftest import with_key

from .conftest import SYMBOL, sim_call

PATH_PARAM = re.compile(r"\{([^}]+)\}")


async def _state(gateway, sim, user_id: str) -> tuple[list[dict[str, Any]], Any]:
    orders = [doc async for doc in gateway.db.real_orders.find({"user_id": user_id}, {"_id": 0})
              .sort("created_at_ms", 1)]
    return orders, await sim_call(sim, "GET", "/sim/positions")


async def test_no_user_reaches_another_users_orders_or_positions(gateway, sign_up, sim):
    alice, bob = await sign_up(), await sign_up()
    await sign_up()  # a bystander
    buy = {"symbol": SYMBOL, "side": "BUY", "order_type": "MARKET", "quantity": 0.01}
    filled = await gateway.http.post("/api/real-trading/orders", headers=with_key(alice.headers), json=buy)
    first = filled.json()
    done = await gateway.http.post(f"/api/real-trading/orders/{first['order']['order_id']}/confirm",
                                   headers=alice.headers, json={"token": first["confirmation_token"],
                                                                "terms_digest": first["order"]["terms_digest"]})
    assert done.json()["status"] == "FILLED", done.text
    waiting = (await gateway.http.post("/api/real-trading/orders", headers=with_key(alice.headers), json=buy)).json()
    ids = {"order_id": waiting["order"]["order_id"], "symbol": SYMBOL}
    bodies = {"confirm": {"token": waiting["confirmation_token"], "terms_digest": waiting["order"]["terms_digest"]},
              "cancel": {}, "sltp": {"stop_loss": round(done.json()["avg_price"] * 0.5, 1)}}

    schema = (await gateway.http.get("/openapi.json")).json()
    routes = sorted((method, path) for path, operations in schema["paths"].items()
                    if path.startswith("/api/real-trading") and PATH_PARAM.search(path)
                    for method in operations if method in ("get", "post", "put", "patch", "delete"))
    assert len(routes) >= 6, routes
    before = await _state(gateway, sim, alice.user_id)
    for method, path in routes:
        unknown = [p for p in PATH_PARAM.findall(path) if p not in ids]
        assert not unknown, f"{method.upper()} {path}: teach this suite which object {unknown} names"
        url = PATH_PARAM.sub(lambda m: ids[m.group(1)], path)
        body = bodies.get(path.rsplit("/", 1)[-1])
        reply = await gateway.http.request(method, url, headers=bob.headers, json=body)
        assert reply.status_code in (403, 404), (method, path, reply.status_code, reply.text)
        assert await _state(gateway, sim, alice.user_id) == before, f"{method.upper()} {path} changed A's state"

    # Positive controls: the owner's requests find the same objects (so B's 404s were about ownership);
    # closing the position goes last.
    for method, path in sorted(routes, key=lambda r: (r[1].endswith("/close"), r)):
        url = PATH_PARAM.sub(lambda m: ids[m.group(1)], path)
        reply = await gateway.http.request(method, url, headers=with_key(alice.headers),
                                           json=bodies.get(path.rsplit("/", 1)[-1]))
        assert reply.status_code not in (403, 404) and reply.status_code < 500, (method, path, reply.text)
