"""Account channels on /ws over real sockets: isolation between users, channel and symbol filters,
the frame schema, bounded delivery time, no duplicates, and resuming from a cursor after a reconnect.

Events come from the real producers (``session_store.trade_events`` for a step's commit,
``save_session_settings`` for BotStatusUpdate, ``events.publish``). "Nothing else arrived" is shown by
publishing a marker the socket does want afterwards: the change stream keeps insertion order, so a
filtered event inserted before the marker would have arrived before it.
"""

from __future__ import annotations

import time
from typing import Any

from activities import events
from activities.real_orders import order_event
from activities.session_store import SessionStoreActivities, trade_events
from core.contracts import SessionCommit, SessionSettingsRecord
from core.order_contracts import OrderTerms, OrderView
from services.event_hub import EventHub, Subscriber, ws_message

ACCOUNT = sorted(events.ACCOUNT_TYPES)
FRAME_KEYS = {"type", "channel", "symbol", "data", "event_key", "event_id", "cursor", "timestamp", "market_time"}
T0 = 1_672_531_200_000  # 2023-01-01T00:00Z, market time
BAR = 300_000


def step(user_id: str, session: str, seq: int, *, symbol: str = "BTCUSDT", opened: bool = False,
         closed: bool = False, signal: bool = False) -> list[dict[str, Any]]:
    """The events the session's commit activity publishes for one step."""
    now = T0 + seq * BAR
    commit = SessionCommit(
        session_id=session, user_id=user_id, time=now, sequence=seq, symbol=symbol,
        account={"cash": 10_000.0, "equity": 10_000.0 + seq, "open_positions": int(opened)},
        opened=({"trade_id": seq, "symbol": symbol, "entry_time": now, "side": "long"},) if opened else (),
        closed=({"id": seq, "symbol": symbol, "exit_time": now, "net_pnl": 1.5},) if closed else (),
        signal={"symbol": symbol, "interval": "5m", "open_time": now - BAR, "direction": "long",
                "confidence": 0.8, "reason": "rsi", "analysis_key": f"a{seq}"} if signal else None,
    )
    return trade_events(commit)


def market(symbol: str, key: str) -> dict[str, Any]:
    return events.event_doc(events.MARKET_DATA, f"{symbol}:{key}", {"symbol": symbol, "price": 1.0, "time": T0},
                            symbol=symbol)


def order(user_id: str, revision: int) -> dict[str, Any]:
    """What a real order's status write publishes."""
    terms = OrderTerms("futures", "BTCUSDT", "BUY", "MARKET", "0.010")
    return order_event(OrderView(f"m-{revision}", user_id, "FILLED", terms, "digest", "manual", "rest", 0,
                                 revision=revision), "filled")


def tuning(user_id: str, number: int) -> dict[str, Any]:
    """What a tuning proposal publishes when it awaits its owner."""
    return events.event_doc(events.TUNING_UPDATE, f"{user_id}:{number}:awaiting",
                            {"event": "awaiting", "number": number}, user_id=user_id)


async def bot_status(db, user_id: str, session: str, version: int) -> None:
    await SessionStoreActivities(db).save_session_settings(SessionSettingsRecord(
        session_id=session, user_id=user_id, status="running", source="sim", symbols=("BTCUSDT",),
        interval="5m", engine_settings={}, analysis_settings={}, analysis_settings_hash="h", version=version))


async def frames_until(sock, event_key: str) -> list[dict[str, Any]]:
    """Every frame up to and including the one with ``event_key``."""
    got = []
    while True:
        frame = await sock.recv()
        got.append(frame)
        if frame.get("event_key") == event_key:
            return got


async def test_each_user_receives_only_their_own_account_events(gateway, sign_up, connect):
    alice, bob, admin = await sign_up(), await sign_up(), await sign_up()
    await gateway.db.users.update_one({"user_id": admin.user_id}, {"$set": {"role": "admin"}})
    db = gateway.db
    async with connect(alice.access) as a, connect(bob.access) as b, connect(admin.access) as root, \
            connect() as anon:
        for sock in (a, b, root):
            await sock.subscribe(ACCOUNT)
        refused = await anon.request({"type": "Subscribe", "channels": ACCOUNT})
        assert refused["type"] == "Error" and refused["data"]["code"] == "auth_required"

        alice_docs = (step(alice.user_id, "sa", 1, opened=True, signal=True)
                      + step(alice.user_id, "sa", 2, closed=True) + [tuning(alice.user_id, 1), order(alice.user_id, 1)])
        bob_docs = step(bob.user_id, "sb", 1, symbol="ETHUSDT", opened=True, signal=True) + [tuning(bob.user_id, 1)]
        await events.publish(db, alice_docs[:2] + bob_docs[:1] + alice_docs[2:] + bob_docs[1:])
        await bot_status(db, bob.user_id, "sb", 1)
        await bot_status(db, alice.user_id, "sa", 1)
        marker = market("BTCUSDT", "marker")
        await events.publish(db, [marker])

        a_got = await frames_until(a, marker["event_key"])
        b_got = await frames_until(b, marker["event_key"])
        root_got = await frames_until(root, marker["event_key"])
        anon_got = await frames_until(anon, marker["event_key"])

    def keys(frames: list[dict]) -> list[str]:
        return [f["event_key"] for f in frames if f["type"] in events.ACCOUNT_TYPES]

    assert keys(a_got) == [d["event_key"] for d in alice_docs] + ["BotStatusUpdate:sa:1"]
    assert keys(b_got) == [d["event_key"] for d in bob_docs] + ["BotStatusUpdate:sb:1"]
    assert {f["type"] for f in a_got} == set(events.ACCOUNT_TYPES) | {events.MARKET_DATA}
    assert keys(root_got) == [], "an admin has no cross-user stream"
    assert [f["type"] for f in anon_got] == [events.MARKET_DATA], "the refused socket stays open for market data"


async def test_channels_and_symbols_filter_account_events(gateway, sign_up, connect):
    user = await sign_up()
    db = gateway.db
    async with connect(user.access) as sock:
        # Naming a symbol narrows the whole connection (market channels included) to it.
        assert await sock.subscribe([events.TRADE_EXECUTED], ["btcusdt"]) == {
            "channels": sorted(events.PUBLIC_TYPES | {events.TRADE_EXECUTED}), "symbols": ["BTCUSDT"],
            "all_symbols": False}
        eth = step(user.user_id, "s", 1, symbol="ETHUSDT", opened=True, signal=True)
        btc = step(user.user_id, "s", 2, opened=True, signal=True)
        await events.publish(db, eth + btc + [market("ETHUSDT", "1"), market("BTCUSDT", "1")])
        got = await frames_until(sock, "MarketData:BTCUSDT:1")
        assert [f["event_key"] for f in got] == ["TradeExecuted:s:2:open", "MarketData:BTCUSDT:1"]

        # PositionUpdate has no symbol: it concerns the account, so a symbol filter lets it through.
        await sock.subscribe([events.POSITION_UPDATE, events.AI_SIGNAL_RECEIVED])
        await events.publish(db, step(user.user_id, "s", 3, symbol="ETHUSDT", closed=True, signal=True)
                             + step(user.user_id, "s", 4, closed=True, signal=True))
        got = await frames_until(sock, "PositionUpdate:s:1672532400000:4")
        assert [f["event_key"] for f in got] == [
            "PositionUpdate:s:1672532100000:3", "TradeExecuted:s:4:close", "AISignalReceived:s:a4",
            "PositionUpdate:s:1672532400000:4"]

        unsub = await sock.request({"type": "Unsubscribe", "channels": [events.TRADE_EXECUTED],
                                    "symbols": ["BTCUSDT"]})
        assert unsub["type"] == "Unsubscribed" and unsub["data"]["symbols"] == []
        assert unsub["data"]["all_symbols"] is False
        # No symbol left means no symbol's events, not every symbol's; account-wide events still come.
        await bot_status(db, user.user_id, "s", 7)  # not subscribed
        await events.publish(db, step(user.user_id, "s", 5, closed=True, signal=True) + [market("BTCUSDT", "2")])
        got = await frames_until(sock, "PositionUpdate:s:1672532700000:5")
        assert [f["event_key"] for f in got] == ["PositionUpdate:s:1672532700000:5"]

        back = await sock.subscribe([events.BOT_STATUS_UPDATE], ["*"])
        assert back["all_symbols"] is True
        await events.publish(db, [market("ETHUSDT", "3")])
        assert (await sock.recv())["event_key"] == "MarketData:ETHUSDT:3"
        bad = await sock.request({"type": "Unsubscribe", "channels": [], "symbols": ["BTCUSDT"]})
        assert bad["type"] == "Error" and bad["data"]["code"] == "invalid_message"


async def test_frames_follow_the_schema_and_arrive_within_a_bounded_time(gateway, sign_up, connect):
    user = await sign_up()
    db = gateway.db
    latencies = []
    async with connect(user.access) as sock:
        await sock.subscribe(ACCOUNT)
        frames = {}
        for seq in range(1, 6):
            docs = step(user.user_id, "s", seq, opened=seq % 2 == 1, closed=seq % 2 == 0, signal=True)
            started = time.perf_counter()
            await events.publish(db, docs)
            for _ in docs:
                frame = await sock.recv()
                frames[frame["event_key"]] = frame
            latencies.append(time.perf_counter() - started)
        ts = time.perf_counter()
        await bot_status(db, user.user_id, "s", 1)
        status = await sock.recv()
        latencies.append(time.perf_counter() - ts)
    print(f"publish-to-receive s: max {max(latencies):.3f}, mean {sum(latencies) / len(latencies):.3f}")
    assert max(latencies) < 2.0, latencies

    opened = frames["TradeExecuted:s:1:open"]
    assert set(opened) == FRAME_KEYS
    assert opened["channel"] == opened["type"] == events.TRADE_EXECUTED
    assert opened["symbol"] == "BTCUSDT" and opened["market_time"] == T0 + BAR
    assert opened["data"]["action"] == "open" and opened["data"]["position"]["trade_id"] == 1
    assert isinstance(opened["cursor"], str) and opened["timestamp"].endswith("+00:00")
    assert frames["TradeExecuted:s:2:close"]["market_time"] == T0 + 2 * BAR
    signal = frames["AISignalReceived:s:a1"]
    assert signal["market_time"] == T0 and signal["data"]["source"] == "technical"
    position = frames[f"PositionUpdate:s:{T0 + BAR}:1"]
    assert position["symbol"] is None and position["data"]["account"]["equity"] == 10_001.0
    assert status["type"] == events.BOT_STATUS_UPDATE and status["market_time"] is None
    assert status["data"] == {"session_id": "s", "status": "running", "symbols": ["BTCUSDT"], "interval": "5m",
                              "generation": 0, "entries_enabled": True}
    cursors = [f["cursor"] for f in frames.values()]
    assert len(set(cursors)) == len(cursors)


async def test_an_event_key_is_delivered_once(gateway, sign_up, connect):
    user = await sign_up()
    db = gateway.db
    async with connect(user.access) as sock:
        await sock.subscribe(ACCOUNT)
        docs = step(user.user_id, "s", 1, opened=True)
        assert await events.publish(db, [dict(d) for d in docs]) == 2
        assert await events.publish(db, [dict(d) for d in docs]) == 0  # a retried commit
        marker = market("BTCUSDT", "m")
        await events.publish(db, [marker])
        got = await frames_until(sock, marker["event_key"])
    assert [f["event_key"] for f in got] == [d["event_key"] for d in docs] + [marker["event_key"]]


async def test_the_hub_drops_an_event_it_reads_twice(mongo_client, db_name):
    # The follower re-reads up to a second of events after a stream error (its token is saved once a
    # second); a connection must still get each event once.
    hub = EventHub(mongo_client[db_name], follower_id="dup")
    sub = Subscriber(user_id="u1", channels=set(events.ACCOUNT_TYPES))
    hub.add(sub)
    (doc,) = [d for d in step("u1", "s", 1, opened=True) if d["type"] == events.TRADE_EXECUTED]
    doc["_id"] = "x"
    hub.dispatch(doc, {"_data": "01"})
    hub.dispatch(doc, {"_data": "01"})
    assert sub.queue.qsize() == 1 and hub.delivered == 1
    assert ws_message(doc, {"_data": "01"})["cursor"] == "01"


async def test_a_reconnecting_client_gets_what_it_missed_from_its_cursor(gateway, sign_up, connect):
    alice, bob = await sign_up(), await sign_up()
    db = gateway.db
    async with connect(alice.access) as sock:
        await sock.subscribe(ACCOUNT)
        await events.publish(db, step(alice.user_id, "s", 1, opened=True))
        await sock.recv()
        last = await sock.recv()
    missed = step(alice.user_id, "s", 2, closed=True, signal=True)
    async with connect(alice.access) as observer:
        await observer.subscribe(ACCOUNT)
        await events.publish(db, missed[:1] + step(bob.user_id, "b", 1, opened=True) + missed[1:])
        await bot_status(db, alice.user_id, "s", 2)
        # Once the hub has handed them out, a new connection can only get them by replay.
        await frames_until(observer, "BotStatusUpdate:s:2")

    async with connect(alice.access) as sock:
        await sock.subscribe(ACCOUNT, since=last["cursor"])
        replayed = [await sock.recv() for _ in range(len(missed) + 1)]
        done = await sock.recv()
        live = step(alice.user_id, "s", 3, opened=True)
        await events.publish(db, live)
        after = [await sock.recv() for _ in live]
        marker = market("BTCUSDT", "m")
        await events.publish(db, [marker])
        assert (await sock.recv())["event_key"] == marker["event_key"], "a replayed event came again live"

        for cursor in ("not-a-cursor", "00ff"):  # malformed; well-formed but no position the stream knows
            await sock.send({"type": "Subscribe", "channels": [], "since": cursor})
            assert (await sock.recv())["type"] == "Subscribed"
            bad = await sock.recv()
            assert bad["type"] == "Error" and bad["data"]["code"] == "invalid_cursor", bad
        assert (await sock.request({"type": "Ping"}))["type"] == "Pong"

    assert [f["event_key"] for f in replayed] == [d["event_key"] for d in missed] + ["BotStatusUpdate:s:2"]
    assert done == {"type": "Replayed", "data": {"events": len(missed) + 1}}
    assert [f["event_key"] for f in after] == [d["event_key"] for d in live]


async def test_an_anonymous_reconnect_replays_only_public_events(gateway, sign_up, connect):
    user = await sign_up()
    db = gateway.db
    first = market("BTCUSDT", "1")
    async with connect() as sock:
        await events.publish(db, [first])
        cursor = (await sock.recv())["cursor"]
        await events.publish(db, step(user.user_id, "s", 1, opened=True) + [market("BTCUSDT", "2")])
        # Once the hub has handed it out, a new connection can only get it by replay.
        assert (await sock.recv())["event_key"] == "MarketData:BTCUSDT:2"
    async with connect() as sock:
        await events.publish(db, [market("BTCUSDT", "3")])
        assert (await sock.recv())["event_key"] == "MarketData:BTCUSDT:3"  # live, before asking to resume
        await sock.subscribe([], since=cursor)
        assert (await sock.recv())["event_key"] == "MarketData:BTCUSDT:2"
        # MarketData:BTCUSDT:3 also follows the cursor, but this connection already had it.
        assert await sock.recv() == {"type": "Replayed", "data": {"events": 1}}
