"""The body of ``POST /v1/chat/completions`` checked field by field into a ``ChatRequest``.

Every refusal names the field (400), except an unknown model (404 ``model_not_found``), as the
OpenAI-compatible xAI API answers. Unknown top-level fields are ignored, as there.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError

from sim.xai.errors import ApiError, invalid

ROLES = ("system", "user", "assistant", "tool")
# The xAI reasoning models of the grok-4 family refuse these outright (400), whatever the value.
GROK_4_REFUSED = ("presence_penalty", "frequency_penalty", "stop", "reasoning_effort")
NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


@dataclass(frozen=True, slots=True)
class Message:
    role: str
    text: str  # every text part joined; "" for an assistant turn that only called tools
    tool_call_id: str | None = None
    tool_calls: tuple[tuple[str, str], ...] = ()  # (id, function name) of an assistant turn's calls


@dataclass(frozen=True, slots=True)
class ResponseFormat:
    type: str  # json_object | json_schema
    name: str | None = None
    schema: dict[str, Any] | None = None
    strict: bool = False

    @property
    def label(self) -> str:
        return self.name or self.type


@dataclass(frozen=True, slots=True)
class Tool:
    name: str
    description: str
    parameters: dict[str, Any]


@dataclass(frozen=True)
class ChatRequest:
    model: str
    messages: tuple[Message, ...]
    response_format: ResponseFormat | None = None
    tools: tuple[Tool, ...] = ()
    tool_choice: str = "auto"  # auto | none | required | the name of the one function to call
    max_tokens: int | None = None
    tools_json: str = ""  # the tool definitions as sent, for the prompt token count
    canonical: str = field(default="", repr=False)  # the whole body, sorted: the completion id hashes it


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_schema(schema: Any, param: str) -> dict[str, Any]:
    if not isinstance(schema, dict):
        raise invalid(param, "must be a JSON Schema object")
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as exc:
        raise invalid(param, f"is not a valid JSON Schema: {exc.message}") from None
    return schema


def _content_text(content: Any, param: str) -> str:
    if isinstance(content, str):
        return content
    if not isinstance(content, list) or not content:
        raise invalid(param, "must be a string or a non-empty list of content parts")
    texts = []
    for i, part in enumerate(content):
        where = f"{param}[{i}]"
        if not isinstance(part, dict) or part.get("type") not in ("text", "image_url"):
            raise invalid(where, "must be a content part of type text or image_url")
        if part["type"] == "text":
            if not isinstance(part.get("text"), str):
                raise invalid(f"{where}.text", "must be a string")
            texts.append(part["text"])
        elif not isinstance(part.get("image_url"), dict) or not isinstance(part["image_url"].get("url"), str):
            raise invalid(f"{where}.image_url", "must be an object with a url")
    return "\n".join(texts)


def _tool_calls(calls: Any, param: str) -> tuple[tuple[str, str], ...]:
    if not isinstance(calls, list) or not calls:
        raise invalid(param, "must be a non-empty list of tool calls")
    found = []
    for i, call in enumerate(calls):
        where = f"{param}[{i}]"
        if not isinstance(call, dict) or call.get("type", "function") != "function":
            raise invalid(where, "must be a tool call of type function")
        function = call.get("function")
        if not isinstance(call.get("id"), str) or not isinstance(function, dict):
            raise invalid(where, "needs an id and a function")
        if not isinstance(function.get("name"), str) or not isinstance(function.get("arguments"), str):
            raise invalid(f"{where}.function", "needs a name and arguments (a JSON string)")
        found.append((call["id"], function["name"]))
    return tuple(found)


def _message(raw: Any, i: int) -> Message:
    param = f"messages[{i}]"
    if not isinstance(raw, dict):
        raise invalid(param, "must be an object with a role and content")
    role = raw.get("role")
    if role not in ROLES:
        raise invalid(f"{param}.role", f"must be one of {', '.join(ROLES)}, got {role!r}")
    if "name" in raw and not isinstance(raw["name"], str):
        raise invalid(f"{param}.name", "must be a string")
    content = raw.get("content")
    if role == "assistant":
        calls = _tool_calls(raw["tool_calls"], f"{param}.tool_calls") if raw.get("tool_calls") is not None else ()
        if content is None and not calls:
            raise invalid(f"{param}.content", "is required unless the assistant turn has tool_calls")
        text = "" if content is None else _content_text(content, f"{param}.content")
        return Message(role, text, tool_calls=calls)
    if content is None:
        raise invalid(f"{param}.content", "is required")
    text = _content_text(content, f"{param}.content")
    if role == "tool":
        if not isinstance(raw.get("tool_call_id"), str) or not raw["tool_call_id"]:
            raise invalid(f"{param}.tool_call_id", "is required on a tool message")
        return Message(role, text, tool_call_id=raw["tool_call_id"])
    return Message(role, text)


def _response_format(raw: Any) -> ResponseFormat | None:
    if raw is None:
        return None
    if not isinstance(raw, dict) or raw.get("type") not in ("text", "json_object", "json_schema"):
        raise invalid("response_format", 'must be {"type": "json_object"} or {"type": "json_schema", ...}')
    if raw["type"] == "text":
        return None
    if raw["type"] == "json_object":
        return ResponseFormat("json_object")
    spec = raw.get("json_schema")
    if not isinstance(spec, dict):
        raise invalid("response_format.json_schema", "must be an object with a name and a schema")
    name = spec.get("name")
    if not isinstance(name, str) or not NAME.match(name):
        raise invalid("response_format.json_schema.name", "must be 1-64 letters, digits, _ or -")
    schema = _check_schema(spec.get("schema"), "response_format.json_schema.schema")
    if schema.get("type") != "object":
        raise invalid("response_format.json_schema.schema", 'must describe an object ("type": "object")')
    strict = spec.get("strict", False)
    if strict is not None and not isinstance(strict, bool):
        raise invalid("response_format.json_schema.strict", "must be a boolean")
    return ResponseFormat("json_schema", name, schema, bool(strict))


def _tools(raw: Any) -> tuple[Tool, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list) or not raw:
        raise invalid("tools", "must be a non-empty list of function tools")
    tools: list[Tool] = []
    for i, item in enumerate(raw):
        param = f"tools[{i}]"
        if not isinstance(item, dict) or item.get("type") != "function" or not isinstance(item.get("function"), dict):
            raise invalid(param, 'must be {"type": "function", "function": {"name": ...}}')
        function = item["function"]
        name = function.get("name")
        if not isinstance(name, str) or not NAME.match(name):
            raise invalid(f"{param}.function.name", "must be 1-64 letters, digits, _ or -")
        if any(t.name == name for t in tools):
            raise invalid(f"{param}.function.name", f"{name!r} is defined twice")
        description = function.get("description", "")
        if not isinstance(description, str):
            raise invalid(f"{param}.function.description", "must be a string")
        parameters = function.get("parameters")
        parameters = {"type": "object", "properties": {}} if parameters is None else _check_schema(
            parameters, f"{param}.function.parameters")
        tools.append(Tool(name, description, parameters))
    return tuple(tools)


def _tool_choice(raw: Any, tools: tuple[Tool, ...]) -> str:
    if raw is None:
        return "auto"
    if not tools:
        raise invalid("tool_choice", "is only allowed when tools are given")
    if raw in ("auto", "none", "required"):
        return str(raw)
    if isinstance(raw, dict) and raw.get("type") == "function" and isinstance(raw.get("function"), dict):
        name = raw["function"].get("name")
        if any(t.name == name for t in tools):
            return str(name)
        raise invalid("tool_choice.function.name", f"{name!r} is not one of the tools")
    raise invalid("tool_choice", 'must be "auto", "none", "required" or a named function')


def _sampling(body: dict[str, Any], model: str) -> int | None:
    if model.startswith("grok-4"):
        for name in GROK_4_REFUSED:
            if body.get(name) is not None:
                raise ApiError(400, f"{name}: argument not supported on model {model}", code="unsupported_parameter",
                               param=name)
    if body.get("stream"):
        raise invalid("stream", "streaming is not supported by the sim", code="unsupported_value")
    if body.get("n") not in (None, 1):
        raise invalid("n", "only 1 choice is supported by the sim", code="unsupported_value")
    for name, low, high in (("temperature", 0, 2), ("top_p", 0, 1), ("presence_penalty", -2, 2),
                            ("frequency_penalty", -2, 2)):
        value = body.get(name)
        if value is not None and (not _is_number(value) or not low <= value <= high):
            raise invalid(name, f"must be a number from {low} to {high}")
    stop = body.get("stop")
    if stop is not None and not (isinstance(stop, str) or (
            isinstance(stop, list) and len(stop) <= 4 and all(isinstance(s, str) for s in stop))):
        raise invalid("stop", "must be a string or a list of up to 4 strings")
    effort = body.get("reasoning_effort")
    if effort is not None and effort not in ("low", "high"):
        raise invalid("reasoning_effort", 'must be "low" or "high"')
    if body.get("seed") is not None and not _is_int(body["seed"]):
        raise invalid("seed", "must be an integer")
    limit = None
    for name in ("max_tokens", "max_completion_tokens"):
        value = body.get(name)
        if value is not None:
            if not _is_int(value) or value < 1:
                raise invalid(name, "must be a positive integer")
            limit = value if limit is None else min(limit, value)
    return limit


def parse_chat_request(raw_body: bytes, models: tuple[str, ...]) -> ChatRequest:
    try:
        body = json.loads(raw_body)
    except ValueError:
        raise ApiError(400, "the body is not valid JSON", code="invalid_json") from None
    if not isinstance(body, dict):
        raise ApiError(400, "the body must be a JSON object", code="invalid_json")
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise invalid("model", "is required (a model id such as grok-4-fast)", code="missing_required_parameter")
    if model not in models:
        raise ApiError(404, f"The model `{model}` does not exist or your team does not have access to it.",
                       code="model_not_found", param="model")
    raw_messages = body.get("messages")
    if not isinstance(raw_messages, list) or not raw_messages:
        raise invalid("messages", "must be a non-empty list of messages")
    messages = tuple(_message(m, i) for i, m in enumerate(raw_messages))
    max_tokens = _sampling(body, model)
    response_format = _response_format(body.get("response_format"))
    tools = _tools(body.get("tools"))
    return ChatRequest(
        model=model,
        messages=messages,
        response_format=response_format,
        tools=tools,
        tool_choice=_tool_choice(body.get("tool_choice"), tools),
        max_tokens=max_tokens,
        tools_json=json.dumps(body["tools"], sort_keys=True) if tools else "",
        canonical=json.dumps(body, sort_keys=True, separators=(",", ":")),
    )
