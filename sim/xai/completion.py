"""The ``chat.completion`` object of an answer, with token usage by a fixed rule.

Tokens: prompt = ceil((characters of every message's content + the tool definitions' JSON) / 4),
completion = ceil(characters of the answer's content, or of its tool calls' JSON, / 4).
A ``max_tokens`` (or ``max_completion_tokens``) below the completion cuts the content to 4 characters
a token and ends it with ``finish_reason: length``, as a real model stops mid-answer.
"""

from __future__ import annotations

import hashlib
import json
import math
from typing import Any

from sim.xai.answers import Answer
from sim.xai.validation import ChatRequest

SYSTEM_FINGERPRINT = "fp_sim_xai_1"
CHARS_PER_TOKEN = 4


def tokens(characters: int) -> int:
    return math.ceil(characters / CHARS_PER_TOKEN)


def prompt_tokens(request: ChatRequest) -> int:
    return tokens(sum(len(m.text) for m in request.messages) + len(request.tools_json))


def limited(answer: Answer, max_tokens: int | None) -> Answer:
    if max_tokens is None or answer.content is None or tokens(len(answer.content)) <= max_tokens:
        return answer
    return Answer(answer.content[: max_tokens * CHARS_PER_TOKEN], "length")


def completion_body(request: ChatRequest, answer: Answer, created: int) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": answer.content, "refusal": None}
    if answer.tool_calls:
        message["tool_calls"] = answer.tool_calls
        generated = json.dumps(answer.tool_calls)
    else:
        generated = answer.content or ""
    prompt, completion = prompt_tokens(request), tokens(len(generated))
    return {
        "id": "chatcmpl-" + hashlib.sha256(request.canonical.encode()).hexdigest()[:24],
        "object": "chat.completion",
        "created": created,
        "model": request.model,
        "choices": [{"index": 0, "message": message, "finish_reason": answer.finish_reason, "logprobs": None}],
        "usage": {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion},
        "system_fingerprint": SYSTEM_FINGERPRINT,
    }
