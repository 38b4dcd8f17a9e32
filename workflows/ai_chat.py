"""One Grok call as a durable job on the ``ai`` queue, for the application layer's multi-step uses:
``AiChatWorkflow`` ``ai-chat:{user}:{request}:{round}`` is one round of a chat (the rounds and the
tools between them are ``services.ai_chat``'s: tools read the caller's own account through its use
cases, never here); ``AiReviewWorkflow`` ``ai-review:{user}:{trade}:{request}`` reviews a closed trade."""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from core.ai_contracts import AiChatInput, AiReviewInput, GrokChatResult, ReviewTradeResult
    from workflows.ai_ask import chat_grok, review_trade


@workflow.defn
class AiChatWorkflow:
    @workflow.run
    async def run(self, request: AiChatInput) -> GrokChatResult:
        return await chat_grok(request.chat, request.grok)


@workflow.defn
class AiReviewWorkflow:
    @workflow.run
    async def run(self, request: AiReviewInput) -> ReviewTradeResult:
        return await review_trade(request.review, request.grok)
