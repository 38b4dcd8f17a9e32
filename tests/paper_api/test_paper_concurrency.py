"""A storm of concurrent writes through REST never wedges a session, and each session's journal says
exactly what it applied.

Twenty sessions take writes of every kind (start, stop, settings, symbols, interval, manual orders,
cancels, closes, resets, analysis on demand), at most 50 in flight, seeded, including exact duplicates
sent at the same time and keys reused with another body. Every request is answered within 30 s with a
success or a 4xx naming the field; no session's history has a failed workflow task; a repeat of an
applied write gets its first answer and changes nothing (a refused write applied nothing and is judged
again), a reused key with another body is refused; replaying a session's journal through the Engine
gives its state.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

from temporalio.api.enums.v1 import EventType

from activities.market_store import store_candles
from core.contracts import JournalEntry
from core.datafiles import load_candles
from trading.engine import Engine
from workflows import session_journal
from workflows.trading_session import TradingSessionWorkflow

from .conftest import BTC_ACCOUNT, CANDLES, SYMBOL, Account, feed

P = "/api/paper-trading"
SESSIONS = 20
WRITES_PER_KIND = 60  # ten kinds: 600 writes, plus the duplicates and the reused keys
IN_FLIGHT = 50
ANSWER_WITHIN_S = 30.0
SEED = 20261206
FED = 20  # candles per session before the storm, inside the warm-up (no signal ever trades)
OTHER = "LTCBTC"
KINDS = ("start", "stop", "settings", "symbols", "interval", "order", "cancel", "close", "reset", "analysis")
# How often each kind comes (per WRITES_PER_KIND): a reset wipes a session, so it is rarer; orders, which
# the cancels and closes need, more frequent.
SHARE = {"reset": 0.3, "order": 2.5, "start": 1.5}


@dataclass
class Sent:
    account: Account
    kind: str
    method: str
    path: str
    body: dict[str, Any] | None
    key: str
    status: int = 0
    answer: Any = None
    took: float = 0.0


@dataclass
class Known:
    """What one session's answers revealed: order and trade IDs to cancel and close."""

    orders: set[int] = field(default_factory=set)
    trades: set[int] = field(default_factory=set)


def request_for(kind: str, rng: random.Random, known: Known) -> tuple[str, str, dict[str, Any] | None]:
    if kind == "start":
        return "post", "/start", rng.choice([None, {"symbols": [SYMBOL]}, {"interval": "5m"}])
    if kind == "stop":
        return "post", "/stop", None
    if kind == "settings":
        return rng.choice([("put", "/basic-settings", {"leverage": rng.randint(1, 20)}),
                           ("put", "/strategy-settings", {"min_agree": rng.randint(1, 4)}),
                           ("put", "/settings", {"basic": {"stop_loss_pct": rng.choice([1.0, 2.0, 0.0])},
                                                 "expected_version": rng.randint(0, 30)})])
    if kind == "symbols":
        return "put", "/symbols", {"symbols": rng.choice([[SYMBOL], [SYMBOL, OTHER], [OTHER]])}
    if kind == "interval":
        return "put", "/signal-interval", {"interval": rng.choice(["5m", "15m"])}
    if kind == "order":
        order_type = rng.choice(["market", "market", "limit"])
        body: dict[str, Any] = {"symbol": rng.choice([SYMBOL, SYMBOL, OTHER]), "side": rng.choice(["long", "short"]),
                                "order_type": order_type, "quantity": rng.choice([0.5, 1.0, 2.0])}
        if order_type == "limit":
            body["limit_price"] = 0.01 if body["side"] == "long" else 10.0  # far away: it rests
        return "post", "/orders", body
    if kind == "cancel":
        return "delete", f"/pending-orders/{rng.choice(sorted(known.orders) or [999_999])}", None
    if kind == "close":
        return "post", f"/trades/{rng.choice(sorted(known.trades) or [999_999])}/close", None
    if kind == "reset":
        return "post", "/reset", None
    return "post", "/trigger-analysis", None


async def test_a_storm_of_concurrent_writes_never_wedges_a_session(gateway, sign_up, temporal_client):
    rng = random.Random(SEED)
    http = gateway.http
    accounts = [await sign_up() for _ in range(SESSIONS)]
    candles = {s: load_candles(CANDLES / f"{s}-5m-2018-01.csv.gz")[:FED] for s in (SYMBOL, OTHER)}
    await store_candles(gateway.db, candles[OTHER], "5m", "test")
    for account in accounts:
        started = await http.post(P + "/start", headers=account.headers, json={"symbols": [SYMBOL], "interval": "5m",
                                                                          "basic": BTC_ACCOUNT})
        assert started.status_code == 200, started.text
    await asyncio.gather(*(feed(gateway, temporal_client, a, candles[SYMBOL]) for a in accounts))
    before = {a.user_id: await temporal_client.get_workflow_handle(a.session_id).query(TradingSessionWorkflow.snapshot)
              for a in accounts}
    seq_before = {a.user_id: (await http.get(P + "/status", headers=a.headers)).json()["journal_seq"]
                  for a in accounts}

    known = {a.user_id: Known() for a in accounts}
    gate = asyncio.Semaphore(IN_FLIGHT)
    sent: list[Sent] = []
    duplicates: list[tuple[Sent, Sent]] = []

    async def send(item: Sent) -> None:
        began = time.monotonic()
        reply = await http.request(item.method, P + item.path, json=item.body,
                                   headers={**item.account.headers, "Idempotency-Key": item.key})
        item.took = time.monotonic() - began
        item.status, item.answer = reply.status_code, reply.json()
        if reply.status_code != 200:
            return
        mine = known[item.account.user_id]
        if item.kind == "reset":
            mine.orders.clear()
            mine.trades.clear()
        elif isinstance(item.answer.get("order"), dict):
            mine.orders.add(item.answer["order"]["id"])
        elif item.kind == "order" and item.answer.get("fills"):
            opened = await http.get(P + "/trades/open", headers=item.account.headers)
            if opened.status_code == 200:
                mine.trades |= {p["trade_id"] for p in opened.json()}

    async def write(account: Account, kind: str, twin: bool) -> None:
        """One write, built when its turn comes so cancels and closes name what the session holds;
        ``twin``: the same request (key and body) goes out twice at once, as a client retrying."""
        async with gate:
            method, path, body = request_for(kind, rng, known[account.user_id])
            item = Sent(account, kind, method, path, body, f"storm-{uuid.uuid4().hex}")
            sent.append(item)
            if not twin:
                await send(item)
                return
            again = Sent(account, kind, method, path, body, item.key)
            duplicates.append((item, again))
            await asyncio.gather(send(item), send(again))

    plan = [(rng.choice(accounts), kind, rng.random() < 0.1) for kind in KINDS
            for _ in range(round(WRITES_PER_KIND * SHARE.get(kind, 1.0)))]
    rng.shuffle(plan)
    await asyncio.gather(*(write(account, kind, twin) for account, kind, twin in plan))

    # Keys reused with another body, once the first use was applied.
    reused: list[tuple[Sent, Sent]] = []
    for first in [s for s in sent if s.status == 200 and s.kind in ("order", "settings", "symbols")][:30]:
        method, path, body = request_for(first.kind, rng, known[first.account.user_id])
        if path != first.path or body == first.body:
            continue
        again = Sent(first.account, first.kind, method, path, body, first.key)
        await send(again)
        reused.append((first, again))

    everything = sent + [twin for _, twin in duplicates] + [again for _, again in reused]
    assert len(sent) >= 500
    counts = Counter((s.kind, s.status) for s in everything)
    for s in everything:
        assert s.took < ANSWER_WITHIN_S, (s.kind, s.path, s.took)
        assert s.status in (200, 404, 409, 422), (s.kind, s.path, s.status, s.answer)
        if s.status in (409, 422):
            assert s.answer["detail"]["field"], (s.kind, s.path, s.answer)
        elif s.status == 404:
            assert s.answer["detail"].startswith("no "), s.answer
    for kind in KINDS:
        assert counts[(kind, 200)] > 0, f"no {kind} succeeded: {counts}"
    for first, twin in duplicates:
        # A refused write applied nothing and is not remembered (its twin is judged on its own, as
        # Stripe does); two that went through are the same write, answered alike.
        if first.status == twin.status == 200:
            assert twin.answer == first.answer, (first.kind, first.answer, twin.answer)
    assert any(f.status == t.status == 200 for f, t in duplicates), "no duplicate went through twice"
    assert reused, "no key was reused"
    for _, again in reused:
        assert again.status == 422 and again.answer["detail"]["field"] == "Idempotency-Key", again.answer

    # Nothing wedged, and each journal replays to its session's state.
    # A key applies once: a write refused first and then applied by its twin counts once too.
    applied: dict[str, set[str]] = defaultdict(set)
    for s in everything:
        if s.status == 200:
            applied[s.account.user_id].add(s.key)
    for account in accounts:
        handle = temporal_client.get_workflow_handle(account.session_id)
        history = await handle.fetch_history()
        failed = [e for e in history.events if e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED]
        assert not failed, failed[0].workflow_task_failed_event_attributes.failure.message
        deadline = time.monotonic() + 60
        while (status := await handle.query(TradingSessionWorkflow.status)).pending_writes:
            assert time.monotonic() < deadline, status
            await asyncio.sleep(0.2)
        docs = await gateway.db.session_journal.find(
            {"session_id": account.session_id, "seq": {"$gt": seq_before[account.user_id]}},
            {"_id": 0, "user_id": 0, "session_id": 0, "created_at": 0}).sort("seq", 1).to_list()
        entries = [JournalEntry(**d) for d in docs]
        assert [e.seq for e in entries] == list(range(seq_before[account.user_id] + 1, status.journal_seq + 1))
        assert len(entries) == len(applied[account.user_id]), "a write applied twice, or not journaled"
        after = await handle.query(TradingSessionWorkflow.snapshot)
        replayed = session_journal.replay(Engine.from_state(before[account.user_id].engine), entries)
        assert json.dumps(replayed.to_state(), sort_keys=True) == json.dumps(after.engine, sort_keys=True)
