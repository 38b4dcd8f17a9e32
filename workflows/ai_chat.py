"""AiChatWorkflow ``ai-chat:{user}:{request}:{round}``: one round of a chat with Grok as a durable job
on the ``ai`` queue. The rounds and the tools between them are the application layer's
(``services.ai_chat``): tools read the caller's own account through its use cases, never here."""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from core.ai_contracts import AiChatInput, GrokChatResult
    from workflows.ai_ask import chat_grok


@workflow.defn
class AiChatWorkflow:
    @workflow.run
    async def run(self, request: AiChatInput) -> GrokChatResult:
        return await chat_grok(request.chat, request.grok)
