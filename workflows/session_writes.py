"""A session's write history: the idempotency records of the writes it applied and the recent part of
its journal, carried across continue-as-new in one packed string.

An idempotency record keeps, for 24 hours, the write's key (a hash of user, route and the client's
``Idempotency-Key``, see ``core.idempotency``), a hash of the update's input and the result it
returned: the same key with the same input gets the first result again and changes nothing; with
another input it is refused. At most ``MAX_RECORDS`` are kept (the oldest go first), which bounds
what a run hands on.

Pure and deterministic: safe in workflow code.
"""

from __future__ import annotations

import base64
import json
import zlib
from collections import OrderedDict, deque
from dataclasses import asdict, dataclass

from core.contracts import JournalEntry

RETENTION_MS = 24 * 3_600_000
MAX_RECORDS = 500
JOURNAL_KEPT = 100


@dataclass(frozen=True)
class WriteRecord:
    key: str
    kind: str
    body: str  # hash of the update's input as JSON
    at: int  # wall time (workflow.now), ms
    result: str  # the result as the payload converter's JSON


class WriteHistory:
    def __init__(self, packed: str | None = None) -> None:
        self.records: OrderedDict[str, WriteRecord] = OrderedDict()
        self.journal: deque[JournalEntry] = deque(maxlen=JOURNAL_KEPT)
        if packed:
            data = json.loads(zlib.decompress(base64.b85decode(packed)))
            for raw in data["records"]:
                record = WriteRecord(*raw)
                self.records[record.key] = record
            self.journal.extend(JournalEntry(**e) for e in data["journal"])

    def find(self, key: str) -> WriteRecord | None:
        return self.records.get(key)

    def remember(self, record: WriteRecord) -> None:
        self.records[record.key] = record
        self.records.move_to_end(record.key)
        while len(self.records) > MAX_RECORDS:
            self.records.popitem(last=False)

    def expire(self, now_ms: int) -> None:
        while self.records:
            oldest = next(iter(self.records.values()))
            if oldest.at > now_ms - RETENTION_MS:
                return
            self.records.popitem(last=False)

    def since(self, seq: int) -> list[JournalEntry]:
        return [e for e in self.journal if e.seq > seq]

    def pack(self, now_ms: int) -> str | None:
        self.expire(now_ms)
        if not self.records and not self.journal:
            return None
        data = {"records": [[r.key, r.kind, r.body, r.at, r.result] for r in self.records.values()],
                "journal": [asdict(e) for e in self.journal]}
        text = json.dumps(data, separators=(",", ":"), sort_keys=True).encode()
        return base64.b85encode(zlib.compress(text, 9)).decode()
