"""Chaos: hundreds of real orders while the sim answers ambiguously and the worker is SIGKILLed.

The product's worker runs as a `durabot worker` subprocess (the gateway and the sim in-process). A
seeded plan requests orders for a few users, mostly MARKET buys and sells (so positions move both
ways) and some reduce-only closes, several in flight at once; before chosen orders it queues an order
fault: every ambiguous reply (503 "unknown", -1007 as 408 and as 503, a dropped connection) several
times, a few refusals, and rounds of ``hold_reply`` in which the worker is SIGKILLed while the sim
holds the reply, restarted, and the held replies released. Judged from the sim's order log: no
client order ID booked twice, every order final and in the exchange's state (NOT_PLACED, REJECTED or
EXPIRED exactly when the exchange has no such order), each user's position equal to the exchange's.

DURABOT_CHAOS_SEED=<seed printed by the test> repeats a plan; DURABOT_CHAOS_ORDERS sets its size
(default 200) and DURABOT_CHAOS_KILLS its kill rounds (default 10, at most 25). On 2 CPUs, 200 orders
take about 35 s without kills and each kill round adds about 7 s (a restart of 3-5 s, and the workflow
tasks the dead worker held wait out their timeouts).
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import httpx
from pydantic import SecretStr

from tests.conftest import durabot_env, stop_process

from .conftest import SYMBOL, Trader, new_trader, sim_call

ORDERS = "/api/real-trading/orders"
FINAL = ("FILLED", "CANCELED", "REJECTED", "EXPIRED", "NOT_PLACED")
NEVER_BOOKED = ("NOT_PLACED", "REJECTED", "EXPIRED")
USERS = 4
IN_FLIGHT = 12
MAX_KILLS = 25
QUANTITIES = ("0.002", "0.004", "0.006", "0.010")
# Each a fault one submission gets; the ambiguous ones are resolved only by a lookup.
AMBIGUOUS = {
    "unknown_after_accept": {"kind": "unknown_after_accept"},
    "timeout_408": {"kind": "timeout_after_accept", "http_status": 408},
    "timeout_503": {"kind": "timeout_after_accept", "http_status": 503},
    "drop_after_accept": {"kind": "drop_after_accept"},
}
REFUSAL = {"kind": "reject_before_accept", "code": -2019, "msg": "Margin is insufficient."}


@dataclass
class PlannedOrder:
    index: int
    user: int
    body: dict[str, Any]
    fault: str | None = None  # a key of AMBIGUOUS, "hidden", "refusal" or "hold": queued before this order
    hide_s: float = 0.0
    order_id: str | None = None
    final: dict[str, Any] | None = None
    confirms: int = 0


@dataclass
class Plan:
    seed: int
    orders: list[PlannedOrder]
    hold_rounds: int


def chaos_plan(seed: int, count: int, kills: int) -> Plan:
    rng = random.Random(seed)
    orders = []
    for index in range(count):
        body: dict[str, Any] = {"symbol": SYMBOL, "side": rng.choice(("BUY", "SELL")), "order_type": "MARKET",
                                "quantity": float(rng.choice(QUANTITIES))}
        if rng.random() < 0.15:
            body["reduce_only"] = True  # a close: fills, partly fills (EXPIRED rest) or is refused (-2022)
        orders.append(PlannedOrder(index, rng.randrange(USERS), body))
    each = max(3, count // 25)
    faults = [kind for kind in (*AMBIGUOUS, "hidden") for _ in range(each)]
    faults += ["refusal"] * max(2, count // 50) + ["hold"] * kills
    # The last orders in flight have nothing after them to take a fault left over.
    assert len(faults) <= count - IN_FLIGHT, f"{count} orders are too few for {len(faults)} faults"
    slots = rng.sample(range(count - IN_FLIGHT), len(faults))
    for slot, kind in zip(slots, faults, strict=True):
        orders[slot].fault = kind
        # Shorter than the protection window: the order is found before it could be called NOT_PLACED.
        orders[slot].hide_s = round(rng.uniform(1.0, 2.5), 2)
    return Plan(seed, orders, kills)


class WorkerProcess:
    """The product's `durabot worker` as a subprocess, restarted after each SIGKILL."""

    def __init__(self, env: dict[str, str], workdir: Path) -> None:
        self.env = env
        self.workdir = workdir
        self.proc: subprocess.Popen | None = None
        self.lives = 0
        self.kills = 0
        self.restart_s: list[float] = []

    @property
    def log(self) -> Path:
        return self.workdir / f"worker-{self.lives}.log"

    def _spawn(self) -> None:
        self.lives += 1
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen([sys.executable, "-m", "durabot", "worker"], env=self.env, cwd=self.workdir,
                                         stdout=subprocess.DEVNULL, stderr=out)

    async def start(self, within_s: float = 60) -> None:
        began = time.monotonic()
        self._spawn()
        assert self.proc is not None
        while b'"worker started"' not in self.log.read_bytes():
            assert self.proc.poll() is None, f"the worker exited: {self.tail()}"
            assert time.monotonic() - began < within_s, f"the worker did not start in {within_s}s: {self.tail()}"
            await asyncio.sleep(0.05)
        self.restart_s.append(time.monotonic() - began)

    def kill(self) -> None:
        assert self.proc is not None and self.proc.poll() is None, "the worker died on its own"
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait()
        self.kills += 1

    def stop(self) -> None:
        if self.proc is not None:
            stop_process(self.proc, grace=20)

    def tail(self, chars: int = 3000) -> str:
        return "\n" + self.log.read_text(errors="replace")[-chars:]


def worker_env(settings: Any) -> dict[str, str]:
    values = {k: (v.get_secret_value() if isinstance(v, SecretStr) else v) for k, v in settings.model_dump().items()}
    return durabot_env(**{f"DURABOT_{k.upper()}": str(v) for k, v in values.items() if v is not None})


@dataclass
class Chaos:
    """Queues the faults of the plan and runs the hold rounds: one at a time, the worker is SIGKILLed
    while the sim holds an order's reply, restarted, and the held replies released."""

    sim: Any
    worker: WorkerProcess
    applied: Counter[str] = field(default_factory=Counter)
    rounds: asyncio.Queue[int] = field(default_factory=asyncio.Queue)
    held_at_kill: list[int] = field(default_factory=list)
    missed_rounds: int = 0

    async def before(self, order: PlannedOrder) -> None:
        if order.fault is None:
            return
        if order.fault == "hold":
            await self.rounds.put(order.index)
            return
        if order.fault == "hidden":
            # An ambiguous reply, then lookups that deny the order for a while (a false -2013).
            await self.queue("unknown_after_accept", AMBIGUOUS["unknown_after_accept"])
            await self.queue("false_not_found", {"kind": "false_not_found", "seconds": order.hide_s})
        else:
            await self.queue(order.fault, REFUSAL if order.fault == "refusal" else AMBIGUOUS[order.fault])

    async def queue(self, name: str, body: dict[str, Any]) -> None:
        await sim_call(self.sim, "POST", "/sim/order_faults", json={**body, "symbol": SYMBOL})
        self.applied[name] += 1

    async def run_rounds(self) -> None:
        while True:
            await self.rounds.get()
            await self.queue("hold", {"kind": "hold_reply"})
            held = await self._held_reply(within_s=20)
            if not held:
                self.missed_rounds += 1
                continue
            # Killed at once: the worker's own request timeout would give up on the held reply soon.
            self.worker.kill()
            self.held_at_kill.append(len(held))
            await self.worker.start()
            await sim_call(self.sim, "POST", "/sim/order_faults/release", json={})

    async def _held_reply(self, within_s: float) -> list[dict[str, Any]]:
        deadline = time.monotonic() + within_s
        while time.monotonic() < deadline:
            held = (await sim_call(self.sim, "GET", "/sim/order_faults"))["held"]
            if held:
                return held
            await asyncio.sleep(0.02)
        return []


async def answered(call: Any, what: str, within_s: float = 60) -> httpx.Response:
    """The gateway's answer, asked again while Temporal has no worker to answer (503) or the request times out."""
    deadline = time.monotonic() + within_s
    while True:
        try:
            reply = await call()
            if reply.status_code != 503:
                return reply
        except httpx.TimeoutException:
            pass
        assert time.monotonic() < deadline, f"{what}: no answer in {within_s}s"
        await asyncio.sleep(0.3)


async def place(http: httpx.AsyncClient, trader: Trader, order: PlannedOrder, chaos: Chaos) -> None:
    """Request, confirm (again only if the confirmation did not reach the order) and follow to a final state."""
    idempotency = {**trader.headers, "Idempotency-Key": f"chaos-{uuid.uuid4().hex}"}
    await chaos.before(order)
    # Repeating the request with its key finds the same order and shows the same secret.
    asked = await answered(lambda: http.post(ORDERS, headers=idempotency, json=order.body), "request")
    assert asked.status_code == 201, asked.text
    view, token = asked.json()["order"], asked.json()["confirmation_token"]
    order.order_id = view["order_id"]
    url = f"{ORDERS}/{order.order_id}"
    while view["status"] == "AWAITING_CONFIRMATION":
        order.confirms += 1
        assert order.confirms <= 10, f"order {order.order_id} never took its confirmation: {view}"
        try:
            done = await http.post(f"{url}/confirm", headers=trader.headers,
                                   json={"token": token, "terms_digest": view["terms_digest"]})
        except httpx.TimeoutException:
            done = None
        if done is not None and done.status_code == 200:
            break
        assert done is None or done.status_code in (503, 422), done.text
        view = (await answered(lambda: http.get(url, headers=trader.headers), "read")).json()
    deadline = time.monotonic() + 120
    while True:
        view = (await answered(lambda: http.get(url, headers=trader.headers), "read")).json()
        if view["status"] in FINAL:
            order.final = view
            return
        assert time.monotonic() < deadline, f"order {order.order_id} stuck: {view}"
        await asyncio.sleep(0.25)


def order_param(request: dict[str, Any], name: str) -> str:
    """A parameter of a logged order request (signed requests carry theirs in the query)."""
    return parse_qs(request["query"]).get(name, [""])[0]


def fault_name(fault: dict[str, Any]) -> str:
    return next((name for name, body in AMBIGUOUS.items()
                 if all(fault.get(k) == v for k, v in body.items())), fault["kind"])


def signed(side: str, quantity: Any) -> Decimal:
    return Decimal(str(quantity)) * (1 if side == "BUY" else -1)


@dataclass
class ExchangeTruth:
    """The sim's own record: its order log, positions, request log and the faults it still holds back."""

    log: dict[str, Any]
    positions: list[dict[str, Any]]
    requests: list[dict[str, Any]]
    pending: Counter[str]

    @classmethod
    async def read(cls, sim: Any) -> ExchangeTruth:
        pending = Counter(fault_name(f) for f in (await sim_call(sim, "GET", "/sim/order_faults"))["pending"])
        return cls(await sim_call(sim, "GET", "/sim/orders"), await sim_call(sim, "GET", "/sim/positions"),
                   [r for r in await sim_call(sim, "GET", "/sim/requests") if r["path"] == "/fapi/v1/order"], pending)

    @property
    def booked(self) -> dict[str, dict[str, Any]]:
        return {o["clientOrderId"]: o for o in self.log["orders"]}

    @property
    def falsely_denied(self) -> set[str]:
        """Orders the exchange had booked yet answered -2013 when looked up: the false "not found" seen."""
        return {order_param(r, "origClientOrderId") for r in self.requests
                if r["method"] == "GET" and r["status"] == 400} & set(self.booked)

    def judge(self, plan: Plan, traders: list[Trader], stored: list[list[dict[str, Any]]]) -> None:
        assert self.log["duplicates"] == 0, self.log["duplicate_client_ids"]
        sends = Counter(order_param(r, "newClientOrderId") for r in self.requests if r["method"] == "POST")
        assert max(sends.values()) == 1, [c for c, n in sends.items() if n > 1]  # each order sent once
        booked, ours = self.booked, {o.order_id: o for o in plan.orders}
        assert set(booked) <= set(ours), "the exchange has orders nobody requested"
        masks = {"****" + t.api_key[-4:]: n for n, t in enumerate(traders)}
        assert len(masks) == USERS
        for user, rows in enumerate(stored):
            assert sorted(r["order_id"] for r in rows) == sorted(o.order_id for o in plan.orders if o.user == user)
            for row in rows:
                final = ours[row["order_id"]].final
                assert final is not None and row["status"] == final["status"], (row, final)
                on_exchange = booked.get(row["order_id"])
                if on_exchange is None:
                    assert row["status"] in NEVER_BOOKED, row
                    continue
                assert masks[on_exchange["api_key"]] == user
                assert (row["status"], Decimal(str(row["executed_qty"]))) == (
                    on_exchange["status"], Decimal(on_exchange["executedQty"])), (row, on_exchange)
            ours_net = sum((signed(r["terms"]["side"], r["executed_qty"]) for r in rows), Decimal(0))
            fills_net = sum((signed(o["side"], o["executedQty"]) for o in booked.values()
                             if masks[o["api_key"]] == user), Decimal(0))
            shown = sum((Decimal(p["positionAmt"]) for p in self.positions if masks[p["api_key"]] == user), Decimal(0))
            assert ours_net == fills_net == shown, (user, ours_net, fills_net, shown)


async def test_hundreds_of_orders_survive_ambiguous_replies_and_worker_kills(sim, real_settings, run_gateway,
                                                                              tmp_path):
    seed = int(os.environ.get("DURABOT_CHAOS_SEED") or random.SystemRandom().randrange(2**32))
    count = int(os.environ.get("DURABOT_CHAOS_ORDERS") or 200)
    kills = int(os.environ.get("DURABOT_CHAOS_KILLS") or 10)
    assert 1 <= kills <= MAX_KILLS, f"DURABOT_CHAOS_KILLS is 1 to {MAX_KILLS}"
    print(f"chaos seed {seed} (DURABOT_CHAOS_SEED={seed} DURABOT_CHAOS_ORDERS={count} DURABOT_CHAOS_KILLS={kills} "
          "repeats the plan)")
    plan = chaos_plan(seed, count, kills)
    assert max(o.hide_s for o in plan.orders) < real_settings.order_protection_window_s
    settings = real_settings.model_copy(update={"feed_autostart": False, "order_confirm_expiry_s": 120.0,
                                                "exchange_ws_url": sim.ws_url, "log_level": "INFO"})
    worker = WorkerProcess(worker_env(settings), tmp_path)
    await worker.start()
    try:
        async with run_gateway(settings) as gateway:
            traders = [await new_trader(gateway, sim) for _ in range(USERS)]
            chaos = Chaos(sim, worker)
            rounds = asyncio.create_task(chaos.run_rounds())
            slots = asyncio.Semaphore(IN_FLIGHT)

            async def one(order: PlannedOrder) -> None:
                async with slots:
                    await place(gateway.http, traders[order.user], order, chaos)

            began = time.monotonic()
            try:
                await asyncio.gather(*(one(o) for o in plan.orders))
            finally:
                rounds.cancel()
            wall_s = time.monotonic() - began
            await sim_call(sim, "POST", "/sim/order_faults/release", json={})
            stored = [(await gateway.http.get(ORDERS, headers=t.headers, params={"limit": 500})).json()
                      for t in traders]
    finally:
        worker.stop()

    truth = await ExchangeTruth.read(sim)
    statuses = Counter(o.final["status"] for o in plan.orders if o.final)
    sent = {order_param(r, "newClientOrderId") for r in truth.requests if r["method"] == "POST"}
    unsent = sum(o.final["status"] == "NOT_PLACED" and o.order_id not in sent for o in plan.orders if o.final)
    print(f"chaos seed {seed}: {count} orders in {wall_s:.1f}s ({count / wall_s:.2f}/s), {worker.kills} kills "
          f"(restarts {', '.join(f'{s:.1f}' for s in worker.restart_s[1:])}s), faults queued {dict(chaos.applied)}, "
          f"left pending {dict(truth.pending)}, missed hold rounds {chaos.missed_rounds}, statuses {dict(statuses)}, "
          f"re-confirmed {sum(o.confirms > 1 for o in plan.orders)}, falsely denied {len(truth.falsely_denied)}, "
          f"NOT_PLACED never sent {unsent} (killed before the send)")

    truth.judge(plan, traders, stored)
    for kind in AMBIGUOUS:
        assert chaos.applied[kind] - truth.pending[kind] >= 3, (kind, truth.pending)
    assert len(truth.falsely_denied) >= 3, truth.falsely_denied
    assert 1 <= worker.kills <= MAX_KILLS
    assert chaos.missed_rounds == 0 and len(chaos.held_at_kill) == plan.hold_rounds == worker.kills
    # The wall time (the issue asks for 200 orders within 4 minutes) is printed above, not asserted:
    # speed is a figure to report, and a loaded CI machine must not turn it into a flaky failure.
