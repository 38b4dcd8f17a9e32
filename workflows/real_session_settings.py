"""The real session's settings, changed only through the tuning tiers: the ``settings`` query and the
``update_settings`` update are what the tuning workflows call on a paper session too (by name, from
``TuningActivities``), so a proposal for the real session is applied like a paper one, at the version it
was made at. The account (market, currency, starting balance, symbols) is set by the start.
"""

from __future__ import annotations

from dataclasses import replace

from temporalio import workflow
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from activities.market_reads import MarketReadActivities
    from activities.real_session import RealSessionActivities
    from core.contracts import FeedSubscription, SessionSettingsRecord, UpdateSettingsInput
    from core.real_session_contracts import TRADING_STATES, PrepareAccountInput, RealSettingsUpdated
    from trading.analysis_settings import AnalysisSettings
    from trading.errors import InvalidInput
    from trading.settings import EngineSettings
    from workflows.real_session_base import BOUNDED, SHORT_TIMEOUT, RealSessionBase, never_wedges
    from workflows.session_journal import rebuilt_engine
    from workflows.session_rules import CONFLICT, NOT_FOUND, checked_settings, rejected

# What a real session's account and streams are: they change with a stop and a new start, never by a
# settings change (the model's balance is the wallet's, its symbols the exchange's specs).
FIXED_BY_THE_START = ("market", "account_currency", "starting_balance", "symbols")


class RealSessionSettings(RealSessionBase):
    @workflow.query
    def settings(self) -> SessionSettingsRecord | None:
        """The settings the session trades, as the tuning workflows read a session's (by this name)."""
        config = self._state.config
        if config is None or self._engine is None:
            return None
        analysis = AnalysisSettings.from_dict(config.analysis_settings)
        return SessionSettingsRecord(
            session_id=workflow.info().workflow_id, user_id=self._state.user_id, status=self._state.status,
            source=config.source, symbols=config.symbols, interval=config.interval,
            engine_settings=self._engine.settings.to_dict(), analysis_settings=analysis.to_dict(),
            analysis_settings_hash=analysis.settings_hash(), version=self._state.settings_version)

    @workflow.update
    @never_wedges
    async def update_settings(self, request: UpdateSettingsInput) -> RealSettingsUpdated:
        """A tuning proposal applied (``TuningActivities.apply_changes``): the model trades the new settings
        from the next candle on; a new leverage is set on the exchange first while the session trades
        (refused there, nothing changes), so reconciliation expects what the exchange confirmed."""
        async with self._lock:
            engine_settings, analysis = self._checked_settings(request)
            config = self._state.config
            assert config is not None and self._engine is not None
            if engine_settings.leverage != self._engine.settings.leverage and self._state.status in TRADING_STATES:
                try:
                    prepared = await workflow.execute_activity_method(
                        RealSessionActivities.prepare_account,
                        PrepareAccountInput(self._state.user_id, config.key_id, config.symbols,
                                            engine_settings.leverage),
                        start_to_close_timeout=SHORT_TIMEOUT, retry_policy=BOUNDED)
                except ActivityError as exc:
                    raise rejected(f"the exchange did not take leverage {engine_settings.leverage}: "
                                   f"{exc.cause or exc}", "leverage") from None
                self._prepared = prepared
            if analysis.settings_hash() != AnalysisSettings.from_dict(config.analysis_settings).settings_hash():
                for symbol in config.symbols:
                    await workflow.execute_activity_method(
                        MarketReadActivities.subscribe_feed,
                        FeedSubscription(config.source, symbol, config.interval, workflow.info().workflow_id,
                                         analysis.to_dict()),
                        start_to_close_timeout=SHORT_TIMEOUT, retry_policy=BOUNDED)
                self._anchor.clear()  # other settings, other shared analysis: its own anchor
            self._engine = rebuilt_engine(self._engine, engine_settings, fresh=False)
            self._state = replace(self._state, config=replace(config, engine_settings=engine_settings.to_dict(),
                                                              analysis_settings=analysis.to_dict()),
                                  settings_version=self._state.settings_version + 1)
            await self._record("settings_changed")
            settings = self.settings()
            assert settings is not None
            return RealSettingsUpdated(self.status(), settings)

    @update_settings.validator
    def _validate_update_settings(self, request: UpdateSettingsInput) -> None:
        self._checked_settings(request)

    def _checked_settings(self, request: UpdateSettingsInput) -> tuple[EngineSettings, AnalysisSettings]:
        config = self._state.config
        if config is None or self._engine is None:
            raise rejected("no real session is configured: request a start first", kind=NOT_FOUND)
        expected = request.expected_version
        if expected is not None and expected != self._state.settings_version:
            raise rejected(f"the settings changed since version {expected} (now {self._state.settings_version}): "
                           "reload them and try again", "expected_version", CONFLICT)
        current = self._engine.settings
        for name in FIXED_BY_THE_START:
            if request.engine_settings and name in request.engine_settings \
                    and request.engine_settings[name] != current.to_dict().get(name):
                raise rejected(f"a real session's {name.replace('_', ' ')} is set by its start: stop it and "
                               "start again to change it", name)
        try:
            return checked_settings(current, AnalysisSettings.from_dict(config.analysis_settings),
                                    request.engine_settings, request.analysis_settings, fresh=False)
        except InvalidInput as exc:
            raise rejected(exc.reason, exc.field) from None
