"""MarketFeedWorkflow ``feed:{source}``: keeps the feed activity alive, and nothing else.

The activity heartbeats; if its worker dies, the heartbeat timeout lets Temporal retry it on
another worker, where it resumes from the cursors it saved. Each run ends after
``run_seconds`` and the workflow continues as new, so its history stays short forever.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from activities.market_feed import MarketFeedActivities
    from core.contracts import MarketFeedInput


@workflow.defn
class MarketFeedWorkflow:
    @workflow.run
    async def run(self, feed: MarketFeedInput) -> None:
        await workflow.execute_activity_method(
            MarketFeedActivities.run_market_feed,
            feed,
            start_to_close_timeout=timedelta(seconds=feed.run_seconds + 600),
            heartbeat_timeout=timedelta(seconds=feed.heartbeat_timeout_s),
            retry_policy=RetryPolicy(initial_interval=timedelta(seconds=1), backoff_coefficient=2.0,
                                     maximum_interval=timedelta(seconds=30)),
        )
        workflow.continue_as_new(feed)
