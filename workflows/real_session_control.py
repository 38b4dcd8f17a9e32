"""Update handlers that steer a real session: configure, the approved start, stop (with a flatten),
entries, adopt and reconcile. Validators check against the current state, so a refused update
changes nothing; handlers fail only their update (``never_wedges``): stop, stop entries and flatten
are never refused to the owner.
"""

from __future__ import annotations

from dataclasses import replace

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities.market_reads import MarketReadActivities
    from activities.real_session import RealSessionActivities
    from core.contracts import FeedSubscription
    from core.real_session_contracts import (
        ALERT_HEDGE_MODE,
        ALERT_ORDER_FAILED,
        ALERT_UNPROTECTED,
        REAL_NEW,
        REAL_RUNNING,
        REAL_STOPPED,
        TRADING_STATES,
        AdoptInput,
        ConfigureRealSessionInput,
        ManagedPosition,
        PrepareAccountInput,
        RealEntriesInput,
        RealSessionStatus,
        StartRealSessionInput,
        StopRealSessionInput,
    )
    from trading.analysis_settings import AnalysisSettings
    from trading.candle import INTERVAL_MS
    from trading.engine import Engine
    from trading.models import Liquidity, Side
    from trading.reconciliation import HEDGE_MODE_REASON
    from trading.settings import EngineSettings
    from workflows.real_session_base import (
        BOUNDED,
        SHORT_TIMEOUT,
        RealSessionBase,
        never_wedges,
        now_ms,
    )
    from workflows.session_rules import FORBIDDEN, NOT_FOUND, rejected


class RealSessionControl(RealSessionBase):
    @workflow.update
    @never_wedges
    async def configure(self, request: ConfigureRealSessionInput) -> RealSessionStatus:
        async with self._lock:
            self._check_configurable()
            config = request.config
            for symbol in config.symbols:
                await workflow.execute_activity_method(
                    MarketReadActivities.subscribe_feed,
                    FeedSubscription(config.source, symbol, config.interval, workflow.info().workflow_id,
                                     AnalysisSettings.from_dict(config.analysis_settings).to_dict()),
                    start_to_close_timeout=SHORT_TIMEOUT, retry_policy=BOUNDED)
            self._engine = Engine(EngineSettings.from_dict(config.engine_settings))
            self._state = replace(self._state, config=config, status=REAL_NEW, approval_id=None, report=None,
                                  halted_reason="", settings_version=self._state.settings_version + 1)
            await self._record("configured")
            return self.status()

    @configure.validator
    def _validate_configure(self, request: ConfigureRealSessionInput) -> None:
        self._check_owner(request.user_id)
        self._check_configurable()
        try:
            EngineSettings.from_dict(request.config.engine_settings)
            AnalysisSettings.from_dict(request.config.analysis_settings)
        except (ValueError, TypeError, KeyError) as exc:
            raise rejected(f"settings: {exc}", "settings") from None
        if not request.config.symbols or request.config.interval not in INTERVAL_MS:
            raise rejected("a real session needs symbols and a known interval", "symbols")

    def _check_configurable(self) -> None:
        if self._state.status in TRADING_STATES:
            raise rejected("the real session is trading: stop it before changing what it trades", "status")
        if self._positions:
            raise rejected(f"the session still holds {', '.join(self._positions)}: flatten or adopt first", "status")

    @workflow.signal
    def approved_start(self, request: StartRealSessionInput) -> None:
        """Sent by the RED approval of the start once a person approved it (``workflows.tuning_apply``);
        the loop checks the approval again before anything trades."""
        if request.user_id == self._state.user_id:
            self._start_request = request

    async def _start(self, request: StartRealSessionInput) -> None:
        try:
            self._check_startable()
            await workflow.execute_activity_method(
                RealSessionActivities.check_approval, request, start_to_close_timeout=SHORT_TIMEOUT,
                retry_policy=BOUNDED)
        except (ApplicationError, ActivityError) as exc:
            reason = exc.cause if isinstance(exc, ActivityError) and exc.cause else exc
            self._alert(ALERT_ORDER_FAILED, f"not started: {reason}", halt=False)
            await self._record("start_refused")
            return
        view = await self._read_or_none(full=True)
        if view is None or view.wallet_balance is None:
            await self._record("start_refused")
            return
        if view.hedge_mode:
            self._alert(ALERT_HEDGE_MODE, f"not started: {HEDGE_MODE_REASON}", halt=False)
            await self._record("start_refused")
            return
        config = self._state.config
        assert config is not None and self._engine is not None
        try:
            prepared = await workflow.execute_activity_method(
                RealSessionActivities.prepare_account,
                PrepareAccountInput(self._state.user_id, config.key_id, config.symbols, self._engine.settings.leverage),
                start_to_close_timeout=SHORT_TIMEOUT, retry_policy=BOUNDED)
        except ActivityError as exc:
            self._alert(ALERT_ORDER_FAILED, f"not started: leverage and margin could not be set: {exc.cause or exc}",
                        halt=False)
            await self._record("start_refused")
            return
        self._prepared = prepared
        self._stream_failed = False  # a new start follows the user-data stream again
        # The model starts from the account as it is: sizing follows the real balance.
        self._engine = Engine(replace(self._engine.settings, starting_balance=view.wallet_balance))
        self._positions.clear()
        self._state = replace(self._state, status=REAL_RUNNING, approval_id=request.approval_id,
                              entries_enabled=True, halted_reason="", last_open_time={})
        self._arrivals.clear()
        # That read was made before the leverage and margin were set (just confirmed): the periodic pass
        # is the first to compare them.
        await self._reconcile(replace(view, leverage={}, margin_types={}), "start")
        await self._record("started")

    def _check_startable(self) -> None:
        if self._state.config is None:
            raise rejected("configure the real session first", "status")
        if self._state.status in TRADING_STATES:
            raise rejected(f"the real session is {self._state.status.lower()} already", "status")
        if self._positions:
            raise rejected(f"the session still holds {', '.join(self._positions)}: flatten first", "status")

    @workflow.update
    @never_wedges
    async def stop(self, request: StopRealSessionInput) -> RealSessionStatus:
        """Always allowed (reducing risk is never blocked): entries end at once; with ``flatten``, every
        position of the session's symbols is closed and its protective orders cancelled."""
        self._state = replace(self._state, status=REAL_STOPPED if self._state.status != REAL_NEW else REAL_NEW,
                              entries_enabled=False)
        if self._engine is not None:
            self._engine.entries_enabled = False
            self._engine.pending_signals.clear()
        self._stop_user_stream()
        if request.flatten and self._state.config is not None:
            async with self._lock:
                await self._flatten()
        await self._record("stopped" if not request.flatten else "stopped_and_flattened")
        return self.status()

    @stop.validator
    def _validate_stop(self, request: StopRealSessionInput) -> None:
        self._check_owner(request.user_id)

    async def _flatten(self) -> None:
        view = await self._read_or_none()
        actions = self._actions()
        try:
            symbols = {p.symbol for p in view.positions} if view else set()
            for symbol in sorted((symbols & set(self._symbols())) | set(self._positions)):
                await self._close(actions, symbol, "stop and flatten")
        finally:
            self._done(actions)
        if view is not None and self._engine is not None:
            for symbol, position in list(self._engine.positions.items()):
                price = view.prices.get(symbol) or self._engine.last_close.get(symbol)
                if price:
                    self._engine.close_trade(position.trade_id, price, max(self._engine.now, view.read_at_ms))
        self._acted.clear()
        await self._sync_ledger(income=True)

    @workflow.update
    @never_wedges
    async def set_entries(self, request: RealEntriesInput) -> RealSessionStatus:
        if not request.enabled:
            self._state = replace(self._state, entries_enabled=False)
        else:
            self._state = replace(self._state, entries_enabled=True, status=REAL_RUNNING, halted_reason="")
        await self._record("entries_on" if request.enabled else "entries_off")
        return self.status()

    @set_entries.validator
    def _validate_set_entries(self, request: RealEntriesInput) -> None:
        self._check_owner(request.user_id)
        if not request.enabled:
            return  # stopping entries lowers risk: any channel of the owner may
        if not request.human:
            raise rejected("only a person resumes a real session's entries", kind=FORBIDDEN)
        if self._state.status not in TRADING_STATES:
            raise rejected(f"the real session is {self._state.status.lower()}: start it through an approval",
                           "status")
        report = self._state.report
        if report is not None and not report["ok"]:
            raise rejected("the last reconciliation found differences: adopt the exchange's positions or "
                           "flatten first", "status")

    @workflow.update
    @never_wedges
    async def adopt(self, request: AdoptInput) -> RealSessionStatus:
        """Take the exchange's positions in the session's symbols as the session's (the model too, at
        their entry prices); orders Durabot did not place stay the owner's to cancel."""
        async with self._lock:
            view = await self._read_or_none()
            if view is None:
                raise rejected("the exchange could not be read: nothing adopted", "status")
            assert self._engine is not None
            for position in view.positions:
                if position.symbol not in self._symbols():
                    continue
                side = "LONG" if position.quantity > 0 else "SHORT"
                known = self._positions.get(position.symbol)
                algo = {k for k, v in view.open_algo_orders.items() if v == position.symbol}
                self._positions[position.symbol] = ManagedPosition(
                    position.symbol, side, abs(position.quantity), position.entry_price, now_ms(),
                    stop_order=known.stop_order if known and known.stop_order in algo else None,
                    take_order=known.take_order if known and known.take_order in algo else None, adopted=True)
            for symbol in [s for s in self._positions if s not in {p.symbol for p in view.positions}]:
                self._positions.pop(symbol)
            adopt_into(self._engine, {p.symbol: (p.quantity, p.entry_price) for p in view.positions
                                      if p.symbol in self._symbols()})
            await self._protect_adopted()
            view = await self._read_or_none() or view
            await self._reconcile(view, "adopt")
            await self._record("adopted")
            return self.status()

    async def _protect_adopted(self) -> None:
        """An adopted position without protective orders gets the model's stop and take profit (from its
        entry price); one the exchange refuses (the price is past it) is an alert, and entries stay off."""
        assert self._engine is not None
        actions = self._actions()
        try:
            for symbol, managed in list(self._positions.items()):
                model = self._engine.positions.get(symbol)
                if managed.stop_order or managed.take_order or model is None:
                    continue
                stop_id, take_id = await actions.protect(symbol, managed.side, model.stop_loss, model.take_profit,
                                                         self._engine.spec(symbol))
                self._positions[symbol] = replace(managed, stop_loss=model.stop_loss, take_profit=model.take_profit,
                                                  stop_order=stop_id, take_order=take_id)
                wanted = tuple(i for i in (stop_id, take_id) if i)
                if wanted and not await actions.protected(symbol, wanted):
                    self._alert(ALERT_UNPROTECTED, f"{symbol}: adopted, but its stop or take profit is not on the "
                                                   "exchange: close it or set them by hand")
        finally:
            self._done(actions)

    @adopt.validator
    def _validate_adopt(self, request: AdoptInput) -> None:
        self._check_owner(request.user_id)
        if not request.human:
            raise rejected("only a person adopts positions into a real session", kind=FORBIDDEN)
        if self._state.config is None:
            raise rejected("configure the real session first", "status")

    @workflow.update
    @never_wedges
    async def reconcile_now(self, user_id: str) -> RealSessionStatus:
        if user_id != self._state.user_id:
            raise ApplicationError("no real session", type=NOT_FOUND, non_retryable=True)
        async with self._lock:
            await self._reconcile(await self._read_or_none(full=True), "on request")
            await self._sync_ledger(income=True)
            await self._record("reconciled")
        return self.status()


def adopt_into(engine: Engine, held: dict[str, tuple[float, float]]) -> None:
    """Make the model hold what the exchange holds: ``held`` is symbol -> (signed quantity, entry
    price). A model position that differs is closed at its entry price; a missing one is booked at
    the exchange's entry price (with its fee, as the exchange charged one)."""
    for position in list(engine.positions.values()):
        signed = position.quantity if position.side is Side.LONG else -position.quantity
        wanted = held.get(position.symbol)
        if wanted is None or abs(wanted[0] - signed) > 1e-12:
            engine.close_trade(position.trade_id, position.entry_price, engine.now)
    for symbol, (quantity, entry) in held.items():
        if symbol in engine.positions or not quantity:
            continue
        plan, _, why = engine.plan_entry(symbol, Side.LONG if quantity > 0 else Side.SHORT, entry, engine.now,
                                         quantity=abs(quantity))
        if plan is None:
            workflow.logger.warning("%s not adopted into the model: %s", symbol, why)
            continue
        engine.book_entry(plan, None, Liquidity.TAKER, [])
        # Marked at its entry until the next candle (equity needs a price for every open position).
        engine.last_close.setdefault(symbol, entry)

