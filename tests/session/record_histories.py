"""Record the trading-session histories that ``test_session_replay.py`` replays.

Runs one scenario on a throwaway Temporal dev server (continue-as-new suggested every 200 history
events) and SecantusDB: a two-symbol start, real ETHBTC and LTCBTC candles through several
continue-as-new (the first ones sent with their analysis, as the market feed does; after the
analysis-settings change that analysis no longer fits and the session asks for its own), a
settings update, a resting order and its cancel, a market order, a signal-interval change and back,
an analysis-settings change, a symbol change, a stop, a reduce-only part, closes and a reset
followed by a new start. Every run's history is written gzipped to ``tests/session/histories/{VERSION}-session-run-NN``.

Histories of earlier versions stay: they are runs of older workflow code that today's code must
still replay (``workflow.patched`` branches). When a change to the workflow's commands is intended,
gate it with ``workflow.patched``, bump VERSION and record (and say so in the commit); an unintended
change is what replay catches.

    .venv/bin/python tests/session/record_histories.py
"""

from __future__ import annotations

import asyncio
import gzip
import sys
import tempfile
import uuid
from dataclasses import asdict, replace
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
HISTORIES = Path(__file__).resolve().parent / "histories"
TRADED = 80
VERSION = "v8"


async def record() -> list[Path]:
    sys.path.insert(0, str(REPO))
    from pymongo import AsyncMongoClient
    from temporalio.api.enums.v1 import EventType
    from temporalio.client import Client

    from activities.db import ensure_schema
    from activities.session_analysis import SessionAnalysisActivities
    from core.contracts import (
        SIGNAL_CANDLE_CLOSED,
        AnalyzeCandleInput,
        CancelOrderInput,
        CloseTradeInput,
        ManualOrderInput,
        SignalIntervalInput,
        StartSessionInput,
        UpdateSettingsInput,
        UpdateSymbolsInput,
    )
    from core.datafiles import load_candles
    from core.idempotency import write_update_id
    from tests.conftest import MongoServer, TemporalServer
    from tests.session.conftest import ANALYSIS, CANDLES, SessionRig, closed, feed, wait_processed
    from trading.analysis import AnalysisSettings, warmup_candles
    from worker.main import ensure_search_attributes
    from workflows.trading_session import TradingSessionWorkflow

    warmup = warmup_candles(AnalysisSettings.from_dict(ANALYSIS))
    eth = load_candles(CANDLES / "ETHBTC-5m-2018-01.csv.gz")[: warmup + TRADED]
    ltc = load_candles(CANDLES / "LTCBTC-5m-2018-01.csv.gz")[: warmup + TRADED]
    with tempfile.TemporaryDirectory() as tmp:
        temporal = TemporalServer(Path(tmp) / "temporal", extra_args=[
            "--dynamic-config-value", "limit.historyCount.suggestContinueAsNew=200"])
        mongo = MongoServer(Path(tmp) / "mongo")
        temporal.start()
        mongo.start()
        try:
            client = await Client.connect(temporal.address)
            await ensure_search_attributes(client, "default")
            mongo_client: AsyncMongoClient = AsyncMongoClient(mongo.uri, tz_aware=True)
            db = mongo_client["record"]
            await ensure_schema(db)
            rig = SessionRig(client, db, f"record-{uuid.uuid4().hex[:8]}-")
            await rig.store(eth, "5m")
            await rig.store(ltc, "5m")
            async with rig.worker():
                handle, _ = await rig.start("recorder", StartSessionInput(
                    "test", ("ETHBTC", "LTCBTC"), "5m", {"slippage_bps": 1.0, "fill_price": "next_open"}, ANALYSIS))
                first_run = (await handle.describe()).run_id
                latest = client.get_workflow_handle(handle.id)  # whichever run is current
                analyzer = SessionAnalysisActivities(db)
                settings = AnalysisSettings.from_dict(ANALYSIS).to_dict()
                for candle in [*eth[warmup: warmup + 40], *ltc[warmup: warmup + 40]]:
                    shared = await analyzer.analysis_of(AnalyzeCandleInput(candle.symbol, "5m", candle.open_time,
                                                                           settings))
                    await latest.signal(SIGNAL_CANDLE_CLOSED, replace(closed(candle, "5m"), analysis=asdict(shared)))
                await wait_processed(latest, "LTCBTC", "5m", ltc[warmup + 39].open_time)
                # A keyed settings change, repeated after several continue-as-new below: the repeat
                # answers from the idempotency record the runs carried.
                change = UpdateSettingsInput(engine_settings={"take_profit_pct": 3.0})
                keyed = write_update_id("recorder", "update_settings", "record-key",
                                        client.data_converter.payload_converter.to_payloads([change])[0].data)
                first = await latest.execute_update(TradingSessionWorkflow.update_settings, change, id=keyed)
                price = eth[warmup + 39].close
                order = await latest.execute_update(TradingSessionWorkflow.place_order, ManualOrderInput(
                    "ETHBTC", "long", "limit", 2.0, limit_price=price * 0.5))
                assert order.order is not None
                await latest.execute_update(TradingSessionWorkflow.cancel_order,
                                            CancelOrderInput(order.order["id"]))
                await latest.execute_update(TradingSessionWorkflow.set_signal_interval, SignalIntervalInput("1h"))
                await latest.execute_update(TradingSessionWorkflow.set_signal_interval, SignalIntervalInput("5m"))
                await latest.execute_update(TradingSessionWorkflow.update_settings,
                                            UpdateSettingsInput(analysis_settings={"min_agree": 3}))
                await feed(latest, eth[warmup + 40:], "5m")
                await feed(latest, ltc[warmup + 40:], "5m")
                await wait_processed(latest, "LTCBTC", "5m", ltc[-1].open_time)
                await wait_processed(latest, "ETHBTC", "5m", eth[-1].open_time)
                assert (await latest.describe()).run_id != first_run
                again = await latest.execute_update(TradingSessionWorkflow.update_settings, change, id=keyed)
                assert again == first, (again, first)
                await latest.execute_update(TradingSessionWorkflow.analyze_now)
                for position in await latest.query(TradingSessionWorkflow.open_trades):  # opened by signals
                    await latest.execute_update(TradingSessionWorkflow.close_trade,
                                                CloseTradeInput(position["trade_id"]))
                await latest.execute_update(TradingSessionWorkflow.update_symbols, UpdateSymbolsInput(("ETHBTC",)))
                await latest.execute_update(TradingSessionWorkflow.place_order, ManualOrderInput(
                    "ETHBTC", "short", "market", 2.0))
                await latest.execute_update(TradingSessionWorkflow.stop)
                await latest.execute_update(TradingSessionWorkflow.place_order, ManualOrderInput(
                    "ETHBTC", "short", "market", 0.5, reduce_only=True))
                await latest.execute_update(TradingSessionWorkflow.reset)
                await latest.execute_update(TradingSessionWorkflow.start, StartSessionInput("test", ("ETHBTC",), "5m"))
                await latest.terminate("recorded")
            HISTORIES.mkdir(exist_ok=True)
            for old in HISTORIES.glob(f"{VERSION}-*.json.gz"):
                old.unlink()
            written: list[Path] = []
            run_id: str | None = first_run
            while run_id:
                history = await client.get_workflow_handle(handle.id, run_id=run_id).fetch_history()
                path = HISTORIES / f"{VERSION}-session-run-{len(written):02d}.json.gz"
                path.write_bytes(gzip.compress(history.to_json().encode(), mtime=0))
                written.append(path)
                last = history.events[-1]
                run_id = None
                if last.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW:
                    run_id = last.workflow_execution_continued_as_new_event_attributes.new_execution_run_id
            await mongo_client.close()
            return written
        finally:
            temporal.stop()
            mongo.stop()


if __name__ == "__main__":
    for written in asyncio.run(record()):
        print(written.relative_to(REPO), written.stat().st_size)
