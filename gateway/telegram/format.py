"""Text for a phone: HTML-escaped values, narrow tables in ``<pre>`` blocks, and messages that fit
Telegram's 4,096 characters (split at line ends, a ``<pre>`` block closed and reopened across a split).

Everything shown from Telegram or from records is escaped: a symbol, a name or a reason never becomes
markup (OWASP API10: untrusted input stays data)."""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from datetime import UTC, datetime

MAX_MESSAGE = 4096
# Telegram counts the text after entity parsing, in UTF-16 units; we count the HTML so, which is never shorter.
LIMIT = MAX_MESSAGE - 16
PRE_OPEN, PRE_CLOSE = "<pre>", "</pre>"
CONTINUED = "…"


def esc(value: object) -> str:
    return html.escape(str(value), quote=False)


def money(value: float | None, signed: bool = False) -> str:
    if value is None or not math.isfinite(value):
        return "–"
    return f"{value:+,.2f}" if signed else f"{value:,.2f}"


def pct(value: float | None, signed: bool = True) -> str:
    """``value`` in percent (1.5 → "+1.50%")."""
    if value is None or not math.isfinite(value):
        return "–"
    return f"{value:+.2f}%" if signed else f"{value:.2f}%"


def ratio_pct(value: float | None, signed: bool = True) -> str:
    """A ratio as percent (0.015 → "+1.50%")."""
    return pct(None if value is None else value * 100, signed)


def num(value: float | None) -> str:
    """A price or quantity, compact (six significant digits, no exponent for ordinary sizes)."""
    if value is None or not math.isfinite(value):
        return "–"
    return f"{value:.6g}" if abs(value) < 1e15 else f"{value:.3e}"


def when(ms: int | None) -> str:
    """Market time (ms) as ``YYYY-MM-DD HH:MM`` UTC."""
    if not ms:
        return "–"
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M")


def duration(ms: int) -> str:
    minutes = max(0, ms) // 60_000
    days, rest = divmod(minutes, 1440)
    hours, mins = divmod(rest, 60)
    return f"{days}d {hours}h" if days else f"{hours}h {mins:02d}m" if hours else f"{mins}m"


def table(headers: Sequence[str], rows: Sequence[Sequence[str]], right: Sequence[bool] | None = None) -> str:
    """A monospace table in a ``<pre>`` block (cells escaped), columns as wide as their widest cell."""
    right = right or [False] + [True] * (len(headers) - 1)
    widths = [max(len(str(r[i])) for r in [headers, *rows]) for i in range(len(headers))]

    def line(cells: Sequence[str]) -> str:
        parts = [str(c).rjust(w) if r else str(c).ljust(w) for c, w, r in zip(cells, widths, right, strict=True)]
        return " ".join(parts).rstrip()

    body = [line(headers), *(line(r) for r in rows)]
    return PRE_OPEN + esc("\n".join(body)) + PRE_CLOSE


def pairs(items: Sequence[tuple[str, str]]) -> str:
    """Label/value lines aligned in a ``<pre>`` block."""
    width = max((len(k) for k, _ in items), default=0)
    return PRE_OPEN + esc("\n".join(f"{k.ljust(width)}  {v}" for k, v in items)) + PRE_CLOSE


def units(text: str) -> int:
    """Length as Telegram measures it: UTF-16 code units (an emoji outside the BMP counts two)."""
    return len(text.encode("utf-16-le")) // 2


def split_message(text: str, limit: int = LIMIT) -> list[str]:
    """``text`` as messages of at most ``limit`` characters, split at line ends; a ``<pre>`` block cut in
    two is closed at the end of one message and opened again in the next. A line longer than a message
    is cut (our tables never have one; a Grok answer may be one long paragraph)."""
    messages: list[str] = []
    current, in_pre = "", False
    room = limit - len(PRE_OPEN) - len(CONTINUED) - len(PRE_CLOSE) - 2
    for whole in text.split("\n"):
        for line in [whole[i:i + room] for i in range(0, len(whole), room)] or [""]:
            after = _pre_open_after(line, in_pre)
            grown = units(current) + (1 if current else 0) + units(line) + (len(PRE_CLOSE) if after else 0)
            if current and grown > limit:
                messages.append(current + (PRE_CLOSE if in_pre else ""))
                # Telegram trims a message's leading spaces: a continued table starts with a line of its own.
                current = (PRE_OPEN + CONTINUED + "\n" if in_pre else "") + line
            else:
                current = f"{current}\n{line}" if current else line
            in_pre = after
    messages.append(current)
    return [m for m in messages if m.strip()]


def _pre_open_after(line: str, before: bool) -> bool:
    """Whether a ``<pre>`` block is open after ``line`` (values are escaped, so tags are ours)."""
    opened, closed = line.rfind(PRE_OPEN), line.rfind(PRE_CLOSE)
    if opened == closed == -1:
        return before
    return opened > closed
