"""Writes never wedge a session: a write the state overtook between its validator and its handler
(two quick clicks on Start) fails alone, with its field, as an ApplicationError; a repeated update ID
returns the first result and changes nothing, another input under it is refused; every applied write
is journaled; a deterministic analysis failure never blocks a close; a cancel is committed."""

from __future__ import annotations

import asyncio
import time

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import WithStartWorkflowOperation, WorkflowHandle, WorkflowUpdateFailedError
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.exceptions import ApplicationError

from core.contracts import (
    SIGNAL_CANDLE_CLOSED,
    TASK_QUEUE_TRADING,
    CancelOrderInput,
    CloseTradeInput,
    ManualOrderInput,
    SignalIntervalInput,
    StartSessionInput,
    UpdateSettingsInput,
    UpdateSymbolsInput,
    session_workflow_id,
    task_queue_name,
)
from core.datafiles import load_candles
from core.idempotency import write_update_id
from trading.engine import Engine
from workflows import session_journal
from workflows.session_rules import CONFLICT, KEY_REUSED, REJECTED
from workflows.trading_session import TradingSessionWorkflow

from .conftest import ANALYSIS, CANDLES, closed, feed, new_user, wait_processed

ENGINE = {"slippage_bps": 1.0}
FED = 20  # inside the warm-up: no signal trades, the positions are the test's own


async def refusal(call) -> ApplicationError:
    with pytest.raises(WorkflowUpdateFailedError) as info:
        await call
    cause = info.value.cause
    assert isinstance(cause, ApplicationError), cause
    return cause


def field_of(error: ApplicationError) -> str | None:
    return error.details[0]["field"] if error.details else None


async def task_failures(handle: WorkflowHandle) -> list[str]:
    history = await handle.fetch_history()
    return [e.workflow_task_failed_event_attributes.failure.message for e in history.events
            if e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED]


async def started_session(rig, user: str) -> tuple[WorkflowHandle, list]:
    candles = load_candles(CANDLES / "ETHBTC-5m-2018-01.csv.gz")[:FED]
    await rig.store(candles, "5m")
    handle, _ = await rig.start(user, StartSessionInput("test", ("ETHBTC",), "5m", ENGINE, ANALYSIS))
    await feed(handle, candles, "5m")
    await wait_processed(handle, "ETHBTC", "5m", candles[-1].open_time)
    return handle, candles


async def test_racing_writes_fail_alone_and_never_wedge_the_session(rig):
    user = new_user()
    async with rig.worker():
        handle, candles = await started_session(rig, user)
        await handle.execute_update(TradingSessionWorkflow.stop)

        # Two starts pass their validators together; the second finds the session running.
        start = StartSessionInput("test", ("ETHBTC",), "5m")
        outcomes = await asyncio.gather(*(handle.execute_update(TradingSessionWorkflow.start, start)
                                          for _ in range(2)), return_exceptions=True)
        assert sum(not isinstance(o, BaseException) for o in outcomes) == 1, outcomes
        (lost,) = [o for o in outcomes if isinstance(o, BaseException)]
        assert isinstance(lost, WorkflowUpdateFailedError) and isinstance(lost.cause, ApplicationError)
        assert lost.cause.type == REJECTED and field_of(lost.cause) == "status", lost.cause
        assert "running already" in lost.cause.message

        # The same race for the other steering writes, and for stop.
        outcomes = await asyncio.gather(*(handle.execute_update(
            TradingSessionWorkflow.set_signal_interval, SignalIntervalInput("15m")) for _ in range(2)),
            return_exceptions=True)
        (refused,) = [o.cause for o in outcomes if isinstance(o, WorkflowUpdateFailedError)]
        assert (refused.type, field_of(refused)) == (REJECTED, "interval"), refused
        version = (await handle.query(TradingSessionWorkflow.status)).settings_version
        outcomes = await asyncio.gather(*(handle.execute_update(TradingSessionWorkflow.update_settings,
                                                                UpdateSettingsInput(engine_settings={"leverage": lev},
                                                                                    expected_version=version))
                                          for lev in (3, 4)), return_exceptions=True)
        (refused,) = [o.cause for o in outcomes if isinstance(o, WorkflowUpdateFailedError)]
        assert (refused.type, field_of(refused)) == (CONFLICT, "expected_version"), refused
        stops = await asyncio.gather(*(handle.execute_update(TradingSessionWorkflow.stop) for _ in range(3)),
                                     return_exceptions=True)
        assert sum(not isinstance(o, BaseException) for o in stops) == 1, stops
        assert all(field_of(o.cause) == "status" for o in stops if isinstance(o, WorkflowUpdateFailedError))

        # The session still answers at once and trades on.
        began = time.monotonic()
        status = await handle.query(TradingSessionWorkflow.status)
        assert status.status == "stopped" and status.interval == "15m"
        assert time.monotonic() - began < 5
        assert await task_failures(handle) == []
        await handle.terminate("test over")


def key_id(rig, user: str, route: str, key: str, *arg: object) -> str:
    """The update ID the application layer makes of a client's key (``core.idempotency``)."""
    body = rig.client.data_converter.payload_converter.to_payloads(list(arg))[0].data if arg else b""
    return write_update_id(user, route, key, body)


async def test_a_repeated_key_returns_the_first_result_and_another_input_is_refused(rig):
    user = new_user()
    async with rig.worker():
        handle, candles = await started_session(rig, user)
        order = ManualOrderInput("ETHBTC", "long", "market", 1.0)
        first = await handle.execute_update(TradingSessionWorkflow.place_order, order,
                                            id=key_id(rig, user, "place_order", "order-key-1", order))
        again = await handle.execute_update(TradingSessionWorkflow.place_order, order,
                                            id=key_id(rig, user, "place_order", "order-key-1", order))
        assert again == first and len(first.fills) == 1
        assert [p["quantity"] for p in await handle.query(TradingSessionWorkflow.open_trades)] == [1.0]
        # The same key with another input changes nothing and says so.
        bigger = ManualOrderInput("ETHBTC", "long", "market", 2.0)
        other = await refusal(handle.execute_update(TradingSessionWorkflow.place_order, bigger,
                                                    id=key_id(rig, user, "place_order", "order-key-1", bigger)))
        assert other.type == KEY_REUSED and field_of(other) == "Idempotency-Key", other
        # A repeat is answered even where the state would now refuse the write (stop, twice).
        stop_id = key_id(rig, user, "stop", "stop-key")
        stopped = await handle.execute_update(TradingSessionWorkflow.stop, id=stop_id)
        assert (await handle.execute_update(TradingSessionWorkflow.stop, id=stop_id)) == stopped

        journal = await handle.query(TradingSessionWorkflow.journal, 0)
        kinds = [e.kind for e in journal]
        assert kinds == ["start", "place_order", "stop"], kinds
        assert [e.seq for e in journal] == [1, 2, 3]
        assert journal[1].update_id.startswith("k-") and journal[1].change["price"] == candles[-1].close
        assert await task_failures(handle) == []
        await handle.terminate("test over")


async def test_the_journal_replays_to_the_sessions_state(rig):
    user = new_user()
    async with rig.worker():
        handle, candles = await started_session(rig, user)
        before = await handle.query(TradingSessionWorkflow.snapshot)
        seq = (await handle.query(TradingSessionWorkflow.status)).journal_seq
        price = candles[-1].close
        resting = await handle.execute_update(TradingSessionWorkflow.place_order, ManualOrderInput(
            "ETHBTC", "long", "limit", 2.0, limit_price=price * 0.5))
        await handle.execute_update(TradingSessionWorkflow.place_order, ManualOrderInput("ETHBTC", "short", "market",
                                                                                         3.0))
        await handle.execute_update(TradingSessionWorkflow.place_order, ManualOrderInput(
            "ETHBTC", "short", "market", 1.0, reduce_only=True))
        await handle.execute_update(TradingSessionWorkflow.update_settings,
                                    UpdateSettingsInput(engine_settings={"risk": {"max_daily_loss_pct": 2.0}}))
        await handle.execute_update(TradingSessionWorkflow.cancel_order, CancelOrderInput(resting.order["id"]))
        (position,) = await handle.query(TradingSessionWorkflow.open_trades)
        await handle.execute_update(TradingSessionWorkflow.close_trade, CloseTradeInput(position["trade_id"]))
        await handle.execute_update(TradingSessionWorkflow.update_symbols, UpdateSymbolsInput(("ETHBTC", "LTCBTC")))
        await handle.execute_update(TradingSessionWorkflow.stop)
        await handle.execute_update(TradingSessionWorkflow.reset)
        after = await handle.query(TradingSessionWorkflow.snapshot)
        entries = await handle.query(TradingSessionWorkflow.journal, seq)
        replayed = session_journal.replay(Engine.from_state(before.engine), entries)
        assert replayed.to_state() == after.engine
        assert [e.kind for e in entries] == ["place_order", "place_order", "place_order", "update_settings",
                                             "cancel_order", "close_trade", "update_symbols", "stop", "reset"]

        # Every entry is written to MongoDB once, in order; the cancel's account snapshot too.
        session_id = session_workflow_id(user)
        deadline = time.monotonic() + 30
        while (await handle.query(TradingSessionWorkflow.status)).pending_writes:
            assert time.monotonic() < deadline
            await asyncio.sleep(0.2)
        stored = await rig.db.session_journal.find({"session_id": session_id}, {"_id": 0, "seq": 1}).sort(
            "seq", 1).to_list()
        assert [d["seq"] for d in stored] == list(range(1, entries[-1].seq + 1))
        assert await task_failures(handle) == []
        await handle.terminate("test over")


async def test_a_failing_analysis_never_blocks_a_close(rig):
    """A candle the analysis cannot read (never stored) fails its analysis for good: the candle is
    traded without a signal (exits still managed), the status says why, and a close meanwhile is
    answered at once; the next candle is analysed as usual."""
    user = new_user()
    async with rig.worker():
        handle, candles = await started_session(rig, user)
        await handle.execute_update(TradingSessionWorkflow.place_order, ManualOrderInput("ETHBTC", "long", "market",
                                                                                         1.0))
        (position,) = await handle.query(TradingSessionWorkflow.open_trades)
        more = load_candles(CANDLES / "ETHBTC-5m-2018-01.csv.gz")[FED:FED + 2]
        await handle.signal(SIGNAL_CANDLE_CLOSED, closed(more[0], "5m"))  # not in market_data
        began = time.monotonic()
        trade = await handle.execute_update(TradingSessionWorkflow.close_trade, CloseTradeInput(position["trade_id"]))
        assert time.monotonic() - began < 5 and trade["close_reason"] == "manual"
        status = await wait_processed(handle, "ETHBTC", "5m", more[0].open_time)
        assert "analysis" in (status.degraded or {}) and "traded without a signal" in status.degraded["analysis"]
        await rig.store(more[1:], "5m")
        await handle.signal(SIGNAL_CANDLE_CLOSED, closed(more[1], "5m"))
        status = await wait_processed(handle, "ETHBTC", "5m", more[1].open_time)
        assert not status.degraded, status.degraded
        assert await task_failures(handle) == []
        await handle.terminate("test over")


async def test_a_session_never_started_answers_every_write_and_query(rig):
    """The gateway creates a session on first use, often with a settings change before any start:
    the handlers and queries must work on its empty state (a KeyError there wedged it once)."""
    user = new_user()
    operation = WithStartWorkflowOperation(
        TradingSessionWorkflow.run, None, id=session_workflow_id(user),
        task_queue=task_queue_name(TASK_QUEUE_TRADING, rig.queue_prefix),
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING)
    async with rig.worker():
        changed = await rig.client.execute_update_with_start_workflow(
            TradingSessionWorkflow.update_settings, UpdateSettingsInput(analysis_settings={"min_agree": 2}),
            start_workflow_operation=operation)
        handle = await operation.workflow_handle()
        assert changed.settings.analysis_settings["min_agree"] == 2 and changed.status.queued == 0
        status = await handle.query(TradingSessionWorkflow.status)
        assert (status.status, status.queued, status.journal_seq) == ("new", 0, 1), status
        refused = await refusal(handle.execute_update(TradingSessionWorkflow.stop))
        assert "not running" in str(refused), refused
        assert await task_failures(handle) == []
