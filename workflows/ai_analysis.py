"""AiAnalysisWorkflow ``ai-analysis:{user}:{request}``: ``/api/ai/analyze`` as one durable job — the
technical analysis of a stored candle (the trading queue's shared, cached activity), then Grok's
view of it (the ``ai`` queue), or the fallback with its reason."""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities.session_analysis import ANALYSIS_FAILED, CANDLE_NOT_STORED, SessionAnalysisActivities
    from core.ai_contracts import AiAnalysisInput, AiAnalysisResult, AskGrokInput
    from core.contracts import AnalyzeCandleInput
    from workflows.ai_ask import ask_grok

ANALYSIS_TIMEOUT = timedelta(seconds=60)
ANALYSIS_RETRIES = RetryPolicy(maximum_attempts=3, non_retryable_error_types=[ANALYSIS_FAILED, CANDLE_NOT_STORED])
TECHNICAL_FAILED = "TechnicalAnalysisFailed"


@workflow.defn
class AiAnalysisWorkflow:
    @workflow.run
    async def run(self, request: AiAnalysisInput) -> AiAnalysisResult:
        try:
            technical = await workflow.execute_activity_method(
                SessionAnalysisActivities.analyze_candle,
                AnalyzeCandleInput(request.symbol, request.interval, request.open_time, request.analysis_settings),
                task_queue=request.trading_task_queue, start_to_close_timeout=ANALYSIS_TIMEOUT,
                retry_policy=ANALYSIS_RETRIES)
        except ActivityError as exc:
            cause = exc.cause
            reason = cause.message if isinstance(cause, ApplicationError) else str(cause or exc)
            raise ApplicationError(f"the technical analysis failed: {reason}", type=TECHNICAL_FAILED,
                                   non_retryable=True) from None
        grok = await ask_grok(AskGrokInput(request.user_id, technical.analysis_key, "analysis"), request.grok)
        return AiAnalysisResult(symbol=request.symbol, interval=request.interval, open_time=request.open_time,
                                analysis_key=technical.analysis_key, technical=technical.signal, grok=grok)
