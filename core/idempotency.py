"""Update IDs of idempotent writes, shared by the application layer (which makes them) and the session
workflow (which reads them).

``k-{write}-{body}``: ``write`` hashes the user, the route (the use case) and the client's key, so a
key sent to another route or by another user names another write; ``body`` hashes the update's input.
The same key with the same input is the same update ID, which Temporal deduplicates within a run and
the session's records across runs; the same key with another input is another update ID that reaches
the session, which finds the key's write under another body and refuses it.
"""

from __future__ import annotations

import hashlib

PREFIX = "k-"


def write_key(user_id: str, route: str, key: str) -> str:
    return hashlib.sha256(f"{user_id}\n{route}\n{key}".encode()).hexdigest()[:40]


def body_hash(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()[:24]


def write_update_id(user_id: str, route: str, key: str, body: bytes) -> str:
    return f"{PREFIX}{write_key(user_id, route, key)}-{body_hash(body)}"


def parse_update_id(update_id: str) -> tuple[str, str] | None:
    """(write key, body hash) of an update ID made by ``write_update_id``, else None."""
    if not update_id.startswith(PREFIX):
        return None
    write, sep, body = update_id[len(PREFIX):].partition("-")
    if not sep or len(write) != 40 or len(body) != 24:
        return None
    return write, body
