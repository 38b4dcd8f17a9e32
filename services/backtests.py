"""Backtests: start a ``BacktestWorkflow`` (``backtest:{id}``), follow it, read and export its report,
compare runs, delete them.

A start is checked as the workflow would (``input_refusal``) plus that the data files exist, so a bad
request is refused naming the field rather than becoming a failed run; the backtest is recorded as the
caller's before the workflow starts, so a read right after the start finds it. With an idempotency key
the backtest ID derives from the user and the key: a repeat of the same request answers with the first
backtest and starts nothing; the same key with another request is refused. A start may carry a
settings document (``core.settings_document``, what a session exports) instead of settings dicts;
without data files it then runs on the stored candles of the document's symbols and interval. Every
read names the caller's ``user_id``: another user's backtest is not found, the same as one that does
not exist. A cancel stops a queued or running backtest and keeps its record (a delete removes it).
The report's trades live in ``backtest_trades``, 500 to a document (``chunk``), paged and
exported from there; only the trades of the run the completed record names are read.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError
from temporalio.client import Client, WorkflowFailureError
from temporalio.service import RPCError, RPCStatusCode

from core.backtest_contracts import (
    STATUS_COMPLETED,
    STATUS_QUEUED,
    TERMINAL_STATUSES,
    TRADES_PER_CHUNK,
    BacktestInput,
    MarketDataRange,
    backtest_workflow_id,
    dataset_names,
    input_refusal,
)
from core.contracts import TASK_QUEUE_TRADING, session_workflow_id, task_queue_name
from core.idempotency import body_hash, write_key
from core.settings import Settings
from core.settings_document import SettingsDocument, SettingsDocumentError, document_of, parse
from services import paper_reads
from services.errors import Conflict, NotFound, Rejected, Unavailable
from services.idempotency import checked_key, request_body
from services.principal import Principal
from trading.analysis_settings import AnalysisSettings
from trading.backtest_report import differences, report_json, trades_csv
from workflows.backtest import BacktestWorkflow
from workflows.session_rules import ANALYSIS_SECTIONS, merged

ROUTE = "backtests.start"
LIST_FIELDS = {"_id": 0, "trades": 0, "equity_curve": 0, "price_curves": 0, "report": 0, "run_id": 0,
               "request_hash": 0}
FIRST_PAGE = 100  # trades a GET of one backtest carries; the rest: ``trades``
MAX_COMPARED = 10
STORED_UNTIL = 2**53  # "every stored candle" as a market_data range end
# A cancel reaches the job with its next heartbeat, which the SDK throttles to 0.8 x the heartbeat
# timeout: 10 s lets a delete finish within ~8 s and hands a dead worker's job over as soon.
HEARTBEAT_TIMEOUT_S = 10.0
DELETE_WAIT_S = 20.0  # how long a delete waits for a running backtest's cancel to land


@dataclass(frozen=True)
class BacktestRequest:
    dataset: str | None = None
    datasets: list[str] | None = None
    market_data: MarketDataRange | None = None
    engine_settings: dict[str, Any] | None = None
    analysis_settings: dict[str, Any] | None = None  # strategy and indicator fields, merged into the defaults
    settings: dict[str, Any] | None = None  # a settings document, instead of the two dicts above
    warmup_from: int | None = None
    trade_from: int | None = None
    trade_to: int | None = None
    replay_ai_decisions: bool = False  # the caller's paper session's AI decision records


@dataclass(frozen=True)
class TradePage:
    items: list[dict[str, Any]]
    total: int
    offset: int
    limit: int


@dataclass(frozen=True)
class Export:
    filename: str
    media_type: str
    text: str


class Backtests:
    def __init__(self, settings: Settings, temporal: Client, db: AsyncDatabase,
                 heartbeat_timeout_s: float = HEARTBEAT_TIMEOUT_S) -> None:
        self.settings = settings
        self.temporal = temporal
        self.db = db
        self.heartbeat_timeout_s = heartbeat_timeout_s

    # -- start --------------------------------------------------------------------------------------
    def _job(self, principal: Principal, backtest_id: str, request: BacktestRequest) -> BacktestInput:
        analysis = None
        if request.analysis_settings is not None:
            analysis = merged(AnalysisSettings().to_dict(), request.analysis_settings, ANALYSIS_SECTIONS)
        market_data, symbols = request.market_data, None
        if request.settings is not None and not (request.dataset or request.datasets or market_data):
            # The document names the streams; stored candles up to the end of the range serve them.
            try:
                document = parse(request.settings)
            except SettingsDocumentError as exc:
                raise Rejected(f"settings.{exc.field}" if exc.field else "settings", exc.reason) from None
            end = STORED_UNTIL if request.trade_to is None else max(0, request.trade_to - 1)
            market_data = MarketDataRange(document.symbols[0], document.interval, 0, end)
            symbols = list(document.symbols)
        return BacktestInput(
            backtest_id=backtest_id, user_id=principal.user_id, dataset=request.dataset, datasets=request.datasets,
            market_data=market_data, symbols=symbols, engine_settings=request.engine_settings,
            analysis_settings=analysis, settings_document=request.settings, warmup_from=request.warmup_from,
            trade_from=request.trade_from, trade_to=request.trade_to, heartbeat_timeout_s=self.heartbeat_timeout_s,
            ai_decisions_of=session_workflow_id(principal.user_id) if request.replay_ai_decisions else None,
        )

    async def start(self, principal: Principal, request: BacktestRequest, key: str | None = None) -> dict[str, Any]:
        principal.require("sensitive")
        checked = checked_key(key, required=False)
        backtest_id = write_key(principal.user_id, ROUTE, checked)[:32] if checked else uuid.uuid4().hex
        request_hash = body_hash(request_body(request))
        if checked and (repeated := await self._repeat(principal, backtest_id, request_hash)) is not None:
            return repeated
        job = self._job(principal, backtest_id, request)
        refusal = input_refusal(job)
        if refusal is not None:
            raise Rejected(refusal.field, refusal.reason)
        folder = (self.settings.data_dir / "candles").resolve()
        for name in dataset_names(job):
            path = (folder / name).resolve()
            if path.parent != folder or not path.is_file():
                raise Rejected("dataset" if job.dataset else "datasets", f"unknown dataset {name!r}")
        now = datetime.now(UTC)
        doc = {"backtest_id": backtest_id, "user_id": principal.user_id, "status": STATUS_QUEUED, "progress": 0.0,
               "request_hash": request_hash, "created_at": now, "queued_at": now, "updated_at": now}
        try:
            await self.db.backtest_results.insert_one(doc)
        except DuplicateKeyError:  # the same key, concurrently (or a 128-bit collision)
            repeated = await self._repeat(principal, backtest_id, request_hash) if checked else None
            if repeated is None:
                raise Unavailable("try again") from None
            return repeated
        try:
            await self.temporal.start_workflow(
                BacktestWorkflow.run, job, id=backtest_workflow_id(backtest_id),
                task_queue=task_queue_name(TASK_QUEUE_TRADING, self.settings.task_queue_prefix))
        except RPCError as exc:
            await self.db.backtest_results.delete_one({"backtest_id": backtest_id, "status": STATUS_QUEUED})
            raise Unavailable(f"could not start: {exc.message}") from None
        doc.pop("_id", None)
        doc.pop("request_hash")
        return doc

    async def _repeat(self, principal: Principal, backtest_id: str, request_hash: str) -> dict[str, Any] | None:
        """The backtest a keyed start made before (None: the key is new); the key with another request is
        refused."""
        doc = await self.db.backtest_results.find_one({"backtest_id": backtest_id, "user_id": principal.user_id},
                                                      {k: v for k, v in LIST_FIELDS.items() if k != "request_hash"})
        if doc is None:
            return None
        if doc.pop("request_hash", None) != request_hash:
            raise Rejected("Idempotency-Key", "this Idempotency-Key started another backtest with other settings; "
                                              "use a new key for a new backtest")
        return doc

    async def session_settings(self, principal: Principal) -> SettingsDocument:
        """The caller's paper session's settings as a settings document, the one a backtest takes
        unchanged. A session that never saved settings gives the defaults a start would use."""
        record = await paper_reads.settings_record(self.db, session_workflow_id(principal.user_id))
        symbol, interval = (self.settings.feed_stream_list or (("BTCUSDT", "5m"),))[0]
        record = {**record, "symbols": record.get("symbols") or [symbol],
                  "interval": record.get("interval") or interval}
        try:
            return document_of(record, market=record.get("source") or self.settings.market_source)
        except SettingsDocumentError as exc:  # saved settings a newer rule refuses: say which
            raise Conflict(exc.field, f"the session's saved settings are not a valid document: {exc}") from None

    # -- reads --------------------------------------------------------------------------------------
    async def _record(self, principal: Principal, backtest_id: str) -> dict[str, Any]:
        doc = await self.db.backtest_results.find_one({"backtest_id": backtest_id, "user_id": principal.user_id},
                                                      {"_id": 0, "request_hash": 0})
        if doc is None:
            raise NotFound("no such backtest")
        return doc

    async def _completed(self, principal: Principal, backtest_id: str) -> dict[str, Any]:
        doc = await self._record(principal, backtest_id)
        if doc["status"] != STATUS_COMPLETED or "report" not in doc:
            raise Conflict(None, f"backtest {backtest_id} is {doc['status']}; its report comes once it completes")
        return doc

    async def _trades(self, doc: dict[str, Any], offset: int = 0, limit: int | None = None) -> list[dict[str, Any]]:
        """Trades ``offset`` to ``offset + limit`` (all from ``offset`` without a limit), read from the
        chunks that hold them."""
        total = int(doc.get("trades_total", 0))
        stop = total if limit is None else min(total, offset + limit)
        if offset >= stop:
            return []
        first, last = offset // TRADES_PER_CHUNK, (stop - 1) // TRADES_PER_CHUNK
        cursor = self.db.backtest_trades.find(
            {"backtest_id": doc["backtest_id"], "run_id": doc["run_id"], "chunk": {"$gte": first, "$lte": last}},
            {"_id": 0, "trades": 1}).sort("chunk", 1)
        held = [t async for row in cursor for t in row["trades"]]
        start = offset - first * TRADES_PER_CHUNK
        return held[start:start + stop - offset]

    async def get(self, principal: Principal, backtest_id: str) -> dict[str, Any]:
        """Progress (status, phase, fraction) and, once completed, the report with its first trades."""
        doc = await self._record(principal, backtest_id)
        if doc["status"] == STATUS_COMPLETED and "report" in doc:
            doc["trades"] = await self._trades(doc, 0, FIRST_PAGE)
        doc.pop("run_id", None)
        return doc

    async def trades(self, principal: Principal, backtest_id: str, limit: int, offset: int) -> TradePage:
        doc = await self._completed(principal, backtest_id)
        return TradePage(await self._trades(doc, offset, limit), int(doc.get("trades_total", 0)), offset, limit)

    async def export(self, principal: Principal, backtest_id: str, kind: Literal["json", "csv"]) -> Export:
        """The whole report as the CLI's ``--json`` writes it (the same bytes for the same settings and
        candles), or every trade as the CLI's ``--csv``."""
        doc = await self._completed(principal, backtest_id)
        trades = await self._trades(doc)
        if kind == "csv":
            return Export(f"backtest-{backtest_id}-trades.csv", "text/csv; charset=utf-8", trades_csv(trades))
        report = {**doc["report"], "trades": trades, "equity_curve": doc["equity_curve"]}
        return Export(f"backtest-{backtest_id}.json", "application/json", report_json(report) + "\n")

    async def compare(self, principal: Principal, backtest_ids: list[str]) -> dict[str, Any]:
        """Completed runs side by side: their metrics and per-pair totals, and every parameter whose
        value differs between them."""
        if not 2 <= len(backtest_ids) <= MAX_COMPARED or len(set(backtest_ids)) != len(backtest_ids):
            raise Rejected("ids", f"give 2 to {MAX_COMPARED} different backtest IDs")
        docs = [await self._record(principal, b) for b in backtest_ids]
        for doc in docs:
            if doc["status"] != STATUS_COMPLETED or "report" not in doc:
                raise Rejected("ids", f"backtest {doc['backtest_id']} is {doc['status']}; only completed "
                                      "backtests compare")
        runs = [{"backtest_id": d["backtest_id"], "created_at": d.get("created_at"), "data": d["report"]["data"],
                 "source": _source(d), "metrics": d["report"]["metrics"],
                 "per_pair": d["report"]["tables"]["per_pair"]} for d in docs]
        compared = [{**d["report"]["parameters"], "source": _source(d)} for d in docs]
        return {"runs": runs, "differences": differences(compared)}

    # -- cancel and delete --------------------------------------------------------------------------
    async def cancel(self, principal: Principal, backtest_id: str) -> dict[str, Any]:
        """Cancel a queued or running backtest and answer once it has ended (or, still being cancelled,
        after ``DELETE_WAIT_S``: a later read says cancelled). Its record stays; one that already ended
        is answered as it is: a completed report stays."""
        principal.require("sensitive")
        doc = await self._record(principal, backtest_id)
        if doc["status"] not in TERMINAL_STATUSES:
            with contextlib.suppress(Conflict):  # still being cancelled: the status read below says so
                await self._cancel_and_wait(backtest_id)
        return await self.get(principal, backtest_id)


    async def delete(self, principal: Principal, backtest_id: str) -> dict[str, Any]:
        """Remove a backtest, its report and its trades. A backtest still queued or running is
        cancelled first and removed once its workflow has ended (so nothing writes after)."""
        principal.require("sensitive")
        doc = await self._record(principal, backtest_id)
        if doc["status"] not in TERMINAL_STATUSES:
            await self._cancel_and_wait(backtest_id)
        await self.db.backtest_results.delete_one({"backtest_id": backtest_id, "user_id": principal.user_id})
        await self.db.backtest_trades.delete_many({"backtest_id": backtest_id})
        return {"backtest_id": backtest_id, "deleted": True, "trades_deleted": int(doc.get("trades_total") or 0)}

    async def _cancel_and_wait(self, backtest_id: str) -> None:
        handle = self.temporal.get_workflow_handle(backtest_workflow_id(backtest_id))
        try:
            await handle.cancel()
            await asyncio.wait_for(handle.result(), DELETE_WAIT_S)
        except WorkflowFailureError:
            return  # ended: cancelled, or failed on its own
        except TimeoutError:
            raise Conflict(None, f"backtest {backtest_id} is being cancelled; delete it again in a moment") from None
        except RPCError as exc:
            if exc.status == RPCStatusCode.NOT_FOUND:
                return  # no workflow (never started): nothing can write any more
            raise Unavailable(f"could not cancel: {exc.message}") from None


    # Last: the method's name would hide the builtin ``list`` from the annotations below it.
    async def list(self, principal: Principal, limit: int, offset: int) -> list[dict[str, Any]]:
        """The caller's backtests, newest first, with progress and summary (no trades or report)."""
        cursor = self.db.backtest_results.find({"user_id": principal.user_id}, LIST_FIELDS).sort([("created_at", -1)])
        return [d async for d in cursor.skip(offset).limit(limit)]


def _source(doc: dict[str, Any]) -> dict[str, Any]:
    """Where a run's candles came from (files or stored data), for comparing runs."""
    data = doc.get("data") or {}
    return {k: data[k] for k in ("source", "dataset", "datasets", "market_data", "symbols") if k in data}
