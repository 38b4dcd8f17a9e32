"""Input the domain refuses, with the field it is about, so every channel can name it without
reading the reason's words."""

from __future__ import annotations


class InvalidInput(ValueError):
    """``field`` names the input (``leverage``, ``rsi.length``, ``quantity``), or None when the reason
    is about the request as a whole; ``reason`` is the sentence shown to the caller."""

    def __init__(self, field: str | None, reason: str) -> None:
        super().__init__(reason)
        self.field = field
        self.reason = reason
