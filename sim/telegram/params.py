"""Bot API call parameters, read the way the Bot API server reads them.

Telegram takes parameters from the query string, a JSON object body, an urlencoded form or a multipart
form (aiogram sends forms). Every top-level value becomes text: strings as they are, numbers and booleans
in their JSON spelling, objects and arrays as JSON text (which the method then decodes). Integers are read
like C's ``atoi`` (garbage is 0), booleans are true for "true", "yes" or "1".
"""

from __future__ import annotations

import json
import re
from typing import Any

from starlette.datastructures import UploadFile
from starlette.requests import Request

from sim.telegram.errors import BotApiError, bad_request

_LEADING_INTEGER = re.compile(r"-?\d+")


def _as_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def to_integer(text: str) -> int:
    """td's ``to_integer``: the leading (signed) digits, 0 when there are none."""
    match = _LEADING_INTEGER.match(text)
    return int(match.group()) if match else 0


class Params:
    def __init__(self, values: dict[str, str]) -> None:
        self.values = values

    def text(self, name: str) -> str:
        return self.values.get(name, "")

    def has(self, name: str) -> bool:
        return self.values.get(name, "") != ""

    def integer(self, name: str, default: int = 0, lo: int | None = None, hi: int | None = None) -> int:
        """An integer argument clamped into [lo, hi], as the Bot API's ``get_integer_arg`` does."""
        raw = self.values.get(name, "")
        value = default if raw == "" else to_integer(raw)
        if lo is not None:
            value = max(lo, value)
        if hi is not None:
            value = min(hi, value)
        return value

    def boolean(self, name: str) -> bool:
        return self.values.get(name, "").strip().lower() in ("true", "yes", "1")

    def json(self, name: str, what: str) -> Any:
        """A JSON-valued argument (reply_markup, commands, …); None when absent. ``what`` names it in the
        error, as Telegram does ("Can't parse reply keyboard markup JSON object")."""
        raw = self.values.get(name, "")
        if raw == "":
            return None
        try:
            return json.loads(raw)
        except ValueError:
            raise bad_request(f"can't parse {what} JSON object") from None

    def loggable(self) -> dict[str, Any]:
        """The parameters for the request log: JSON-valued ones decoded when they decode."""
        shown: dict[str, Any] = {}
        for name, raw in self.values.items():
            shown[name] = raw
            if raw[:1] in ("{", "["):
                try:
                    shown[name] = json.loads(raw)
                except ValueError:
                    pass
        return shown


async def read_params(request: Request, max_body_bytes: int) -> Params:
    """Query string and body merged (the body wins); refuses bodies over ``max_body_bytes``."""
    values = {key: value for key, value in request.query_params.items()}
    if request.method != "POST":
        return Params(values)
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > max_body_bytes:
        raise BotApiError(413, "Request Entity Too Large")
    content_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if content_type == "application/json":
        body = await request.body()
        if len(body) > max_body_bytes:
            raise BotApiError(413, "Request Entity Too Large")
        if body.strip():
            try:
                document = json.loads(body)
            except ValueError:
                raise bad_request("can't parse JSON encoded request: invalid JSON") from None
            if not isinstance(document, dict):
                raise bad_request("can't parse JSON encoded request: expected an Object")
            values.update({key: _as_text(value) for key, value in document.items()})
    elif content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
        form = await request.form(max_part_size=max_body_bytes)
        for key, value in form.multi_items():
            if isinstance(value, UploadFile):
                continue  # the sim sends no files; an attached file is ignored
            values[key] = value
    return Params(values)
