"""Query-parameter parsing with Binance's validation errors."""

from __future__ import annotations

import re

from starlette.datastructures import QueryParams

from sim.exchange.errors import illegal_chars, invalid_value, mandatory_missing

_INTEGER = re.compile(r"^[0-9]{1,20}$")
_SYMBOL = re.compile(r"^[A-Z0-9-_.]{1,20}$")


def required_text(params: QueryParams, name: str) -> str:
    value = params.get(name)
    if value is None or value == "":
        raise mandatory_missing(name)
    return value


def symbol_param(params: QueryParams, *, required: bool = True) -> str | None:
    value = params.get("symbol")
    if value is None or value == "":
        if required:
            raise mandatory_missing("symbol")
        return None
    if not _SYMBOL.match(value):
        raise illegal_chars("symbol", "^[A-Z0-9-_.]{1,20}$")
    return value


def optional_int(params: QueryParams, name: str) -> int | None:
    value = params.get(name)
    if value is None or value == "":
        return None
    if not _INTEGER.match(value):
        raise illegal_chars(name, "^[0-9]{1,20}$")
    return int(value)


def limit_param(params: QueryParams, *, default: int, maximum: int) -> int:
    limit = optional_int(params, "limit")
    if limit is None:
        return default
    if not 1 <= limit <= maximum:
        raise invalid_value("limit")
    return limit
