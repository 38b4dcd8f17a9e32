import { useEffect, useMemo, useRef, useState, type FormEvent } from 'react';
import { ApiError, call, errorText, http } from '../api/client';
import { AnalysisCard } from '../components/Analysis';
import { ConfirmButton } from '../components/Confirm';
import { LineChart } from '../components/LineChart';
import { useLiveEvents } from '../components/live';
import { ProfitCard } from '../components/Profit';
import { SettingField } from '../components/SettingField';
import { temporalLink, useSystem } from '../components/system';
import { Card, ErrorNote, Pnl, Stat } from '../components/ui';
import { formatNumber, formatPct, formatTime } from '../lib/format';
import { useLoad } from '../lib/hooks';
import { equityCurve, maxDrawdown, pnlOnDay, winRate, type ClosedLike } from '../lib/metrics';
import type { ProfitTrade } from '../lib/profit';
import { buildFields, fieldOf, sectionPatch, type Draft } from '../lib/settingsForm';

const INTERVALS = ['1m', '3m', '5m', '15m', '30m', '1h', '2h', '4h', '6h', '8h', '12h', '1d'] as const;
type Interval = (typeof INTERVALS)[number];
const PAGE = 500;
const MAX_PAGES = 20;
// After a candle's ChartUpdate the session needs a moment to process it: ask again this often, this many times.
const CATCH_UP_MS = 250;
const CATCH_UP_TRIES = 20;
// What a new account is chosen with when it starts: its market and currency (fixed once it has started)
// and how signal trades fill.
const START_SETTINGS = ['market', 'account_currency', 'fill_price'];
const ACCOUNT_DEFINING = new Set(['market', 'account_currency']);

type ClosedRow = { trade: Record<string, unknown>; symbol: string };

export function closedOf(rows: { trade: Record<string, unknown> }[]): ClosedLike[] {
  return rows.map((r) => ({ exit_time: Number(r.trade.exit_time), net_pnl: Number(r.trade.net_pnl) }));
}

/** Every closed trade of one account (newest 10,000), a page at a time. */
async function closedTrades(generation: number | undefined): Promise<{ rows: ClosedRow[]; capped: boolean }> {
  const rows: ClosedRow[] = [];
  for (let page = 0; page < MAX_PAGES; page += 1) {
    const got = await call(() => http.GET('/api/paper-trading/trades/closed', {
      params: { query: { limit: PAGE, offset: page * PAGE, generation } },
    }));
    rows.push(...got);
    if (got.length < PAGE) return { rows, capped: false };
  }
  return { rows, capped: true };
}

export function Overview() {
  const system = useSystem();
  const status = useLoad(() => call(() => http.GET('/api/paper-trading/status')));
  const portfolio = useLoad(() => call(() => http.GET('/api/paper-trading/portfolio')));
  const basic = useLoad(() => call(() => http.GET('/api/paper-trading/basic-settings')));
  const schema = useLoad(() => call(() => http.GET('/api/paper-trading/settings/schema')));
  const generation = status.data?.generation;
  // The current account only: a reset starts a new one (its generation).
  const closed = useLoad(() => closedTrades(generation), [generation]);
  // The current account's equity at every committed step (downsampled by the API), not just at closes.
  const history = useLoad(
    () => call(() => http.GET('/api/paper-trading/equity-history', { params: { query: { limit: 1000, generation } } })),
    [generation],
  );
  const [symbols, setSymbols] = useState('');
  const [interval, setInterval] = useState<Interval>('5m');
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const [startDrafts, setStartDrafts] = useState<Record<string, Draft>>({});
  const [startRefused, setStartRefused] = useState<{ path: string; text: string } | null>(null);
  const startFields = useMemo(() => {
    if (!schema.data || !basic.data) return [];
    const fields = buildFields(schema.data, { basic: basic.data.settings, strategy: {}, indicators: {} }).basic;
    return START_SETTINGS.flatMap((path) => fields.filter((f) => f.info.path === path));
  }, [schema.data, basic.data]);

  const reloadAll = () => {
    status.reload();
    portfolio.reload();
    closed.reload();
    history.reload();
  };
  useLiveEvents(['BotStatusUpdate', 'PositionUpdate', 'TradeExecuted'], reloadAll);

  // The engine card moves with every candle: a ChartUpdate of one of the session's streams says a
  // candle closed; the status is asked again until the session has processed it.
  const s = status.data;
  const chasing = useRef<{ stream: string; openTime: number; tries: number } | null>(null);
  useLiveEvents(['ChartUpdate'], (e) => {
    const d = e.data as { timeframe?: string; candle?: { open_time?: number } };
    if (!s || !e.symbol || !s.symbols.includes(e.symbol) || d.timeframe !== s.interval) return;
    chasing.current = { stream: `${e.symbol}@${s.interval}`, openTime: Number(d.candle?.open_time), tries: 0 };
    status.reload();
  });
  useEffect(() => {
    const want = chasing.current;
    if (!want || !s) return;
    if ((s.last_open_time[want.stream] ?? 0) >= want.openTime || want.tries >= CATCH_UP_TRIES) {
      chasing.current = null;
      return;
    }
    want.tries += 1;
    const timer = setTimeout(status.reload, CATCH_UP_MS);
    return () => clearTimeout(timer);
  }, [s, status.reload]);
  // Every processed candle commits a step: the equity curve and the account follow the card.
  const processed = s?.candles_processed;
  useEffect(() => {
    if (processed == null) return;
    history.reload();
    portfolio.reload();
  }, [processed, history.reload, portfolio.reload]);

  const account = portfolio.data?.account;
  const rows = closed.data?.rows;
  const trades = useMemo(() => closedOf(rows ?? []), [rows]);
  const profitTrades = useMemo<ProfitTrade[]>(
    () => (rows ?? []).map((r) => ({ symbol: r.symbol, exit_time: Number(r.trade.exit_time), net_pnl: Number(r.trade.net_pnl) })),
    [rows],
  );
  const realised = trades.reduce((sum, t) => sum + t.net_pnl, 0);
  const metrics = (s?.metrics ?? {}) as Record<string, number | null | undefined>;
  const settings = (basic.data?.settings ?? {}) as { starting_balance?: number };
  const start = metrics.starting_balance ?? (account ? account.equity - account.unrealised - realised : 0);
  const stepped = useMemo(() => (history.data ?? []).map((p) => ({ time: p.time, value: p.equity })), [history.data]);
  const realisedCurve = useMemo(() => equityCurve(start, trades), [start, trades]);
  const curve = stepped.length ? stepped : realisedCurve;
  const rate = metrics.win_rate ?? winRate(trades);
  const drawdown = metrics.max_drawdown ?? maxDrawdown(start, curve);
  const link = s ? temporalLink(system, s.session_id) : null;
  // Before the first start, or after a reset: the market and currency may still change.
  const fresh = s?.status === 'new';
  const streams = s?.symbols.length ? `${s.symbols.join(', ')} (${s.interval})` : 'no stream';

  const act = async (what: () => Promise<unknown>, refuse?: (err: unknown) => boolean) => {
    setBusy(true);
    setError(null);
    setStartRefused(null);
    try {
      await what();
      basic.reload();
      reloadAll();
    } catch (err) {
      if (!refuse?.(err)) setError(errorText(err));
    } finally {
      setBusy(false);
    }
  };

  const start_ = (e: FormEvent) => {
    e.preventDefault();
    const list = symbols.split(',').map((x) => x.trim().toUpperCase()).filter(Boolean);
    // Only what differs from the session's settings is sent, so a stopped account starts again as it was.
    const { patch, errors } = sectionPatch(startFields, startDrafts);
    const refused = Object.values(errors);
    if (refused.length) {
      setError(refused.join(' '));
      return;
    }
    // A spot account trades at 1x: choosing spot brings the leverage down with it.
    if (patch.market === 'spot' && (basic.data?.settings as { leverage?: number } | undefined)?.leverage !== 1) patch.leverage = 1;
    const body = { symbols: list.length ? list : null, interval, basic: Object.keys(patch).length ? patch : undefined };
    // A refused account setting is explained next to its field.
    const refuse = (err: unknown) => {
      const path = err instanceof ApiError ? fieldOf(err.problem.field, START_SETTINGS) : null;
      if (path && err instanceof ApiError) setStartRefused({ path, text: err.problem.message });
      return path !== null;
    };
    void act(async () => {
      await call(() => http.POST('/api/paper-trading/start', { body: body as never }));
      setStartDrafts({});
    }, refuse);
  };
  // What a stop or reset would act on, read when its button is pressed (the account snapshot can lag a
  // manual order by a step).
  const holdings = async () => {
    const [open, pending] = await Promise.all([
      call(() => http.GET('/api/paper-trading/trades/open')).catch(() => null),
      call(() => http.GET('/api/paper-trading/pending-orders')).catch(() => null),
    ]);
    const count = (rows: unknown[] | null, fallback: number | undefined) => String(rows?.length ?? fallback ?? '?');
    const names = open?.length ? ` (${open.map((p) => `${String(p.symbol)} ${String(p.side)}`).join(', ')})` : '';
    return { open: count(open, account?.open_positions), pending: count(pending, account?.pending_orders), names };
  };

  return (
    <div className="grid">
      <Card title="Engine">
        <div className="stats">
          <Stat label="Status" testId="engine-status">
            <span className={`pill ${s?.status ?? 'new'}`}>{s?.status ?? '…'}</span>
          </Stat>
          <Stat label="Symbols" testId="engine-symbols">{s?.symbols.join(', ') || '—'}</Stat>
          <Stat label="Interval">{s?.interval || '—'}</Stat>
          <Stat label="Market time" testId="engine-market-time" value={s?.market_time}>{formatTime(s?.market_time)}</Stat>
          <Stat label="Candles processed" testId="engine-candles" value={s?.candles_processed}>{s?.candles_processed ?? '—'}</Stat>
        </div>
        {link && s?.exists ? (
          <p>
            <a href={link} target="_blank" rel="noreferrer" data-testid="temporal-link">
              Open session {s.session_id} in the Temporal UI
            </a>
          </p>
        ) : null}
        {s?.status === 'running' ? null : (
          <form className="form" onSubmit={start_} noValidate aria-label="Start a session">
            <div className="setting-grid">
              <div className="setting">
                <label htmlFor="start-symbols">Symbols</label>
                <input id="start-symbols" value={symbols} onChange={(e) => setSymbols(e.target.value)}
                  placeholder={s?.symbols.join(', ') || 'default feed'} aria-describedby="start-symbols-help" />
                <p className="help" id="start-symbols-help">Comma-separated, quoted in the account currency (e.g. LTCBTC for BTC).</p>
              </div>
              <div className="setting">
                <label htmlFor="start-interval">Interval</label>
                <select id="start-interval" value={interval} onChange={(e) => setInterval(e.target.value as Interval)}>
                  {INTERVALS.map((i) => (
                    <option key={i}>{i}</option>
                  ))}
                </select>
              </div>
              {startFields.map((f) => {
                const locked = ACCOUNT_DEFINING.has(f.info.path) && !fresh;
                return (
                  <SettingField key={f.info.path} field={f} schema={schema.data ?? []} draft={startDrafts[f.info.path] ?? f.initial}
                    disabled={locked} note={locked ? 'Fixed for this account: reset it to choose another.' : undefined}
                    message={startRefused?.path === f.info.path ? { text: startRefused.text, from: 'server' } : null}
                    onChange={(d) => {
                      if (startRefused?.path === f.info.path) setStartRefused(null);
                      setStartDrafts({ ...startDrafts, [f.info.path]: f.info.kind === 'text' ? String(d).toUpperCase() : d });
                    }} />
                );
              })}
            </div>
            <div className="button-row">
              <button type="submit" className="primary" disabled={busy}>
                Start session
              </button>
            </div>
          </form>
        )}
        <div className="button-row">
          {s?.status === 'running' ? (
            <ConfirmButton className="danger" disabled={busy} onConfirm={() => void act(() => call(() => http.POST('/api/paper-trading/stop')))}
              confirm={async () => {
                const held = await holdings();
                return {
                  title: 'Stop the session?',
                  action: 'Stop session',
                  body: (
                    <p>
                      It stops opening trades on {streams}. The {held.open} open position(s){held.names} and {held.pending} resting
                      order(s) stay managed: their stop losses, take profits and fills still happen on every candle.
                      You can start it again.
                    </p>
                  ),
                };
              }}>
              Stop session
            </ConfirmButton>
          ) : null}
          {s?.exists ? (
            <ConfirmButton className="danger" disabled={busy} onConfirm={() => void act(() => call(() => http.POST('/api/paper-trading/reset')))}
              confirm={async () => {
                const held = await holdings();
                return {
                  title: 'Reset the paper account?',
                  action: 'Reset account',
                  body: (
                    <p>
                      It cancels {held.pending} resting order(s), closes {held.open} open position(s){held.names} at the latest
                      price and starts a fresh account at the starting balance
                      ({formatNumber(settings.starting_balance ?? metrics.starting_balance)}).
                      {s?.symbols.length ? ` The session stops following ${streams} until you start it again.` : ''} Settings
                      stay, and the old account's trades stay in the history.
                    </p>
                  ),
                };
              }}>
              Reset account
            </ConfirmButton>
          ) : null}
        </div>
        <ErrorNote message={error ?? status.error} />
      </Card>
      <Card title="Performance">
        <div className="stats">
          <Stat label="Equity" testId="equity">{formatNumber(account?.equity)}</Stat>
          <Stat label="Unrealised"><Pnl value={account?.unrealised} /></Stat>
          <Stat label="PnL today" testId="pnl-today"><Pnl value={pnlOnDay(trades, s?.market_time || Date.now())} /></Stat>
          <Stat label="Win rate" testId="win-rate">{formatPct(rate)}</Stat>
          <Stat label="Max drawdown" testId="drawdown">{formatPct(drawdown)}</Stat>
          <Stat label="Closed trades">{trades.length}</Stat>
        </div>
        <div data-testid="equity-curve" data-points={curve.length} data-source={stepped.length ? 'steps' : 'closes'}>
          <LineChart points={curve} label="Equity curve" />
        </div>
      </Card>
      <ProfitCard trades={profitTrades} capped={closed.data?.capped ?? false} />
      <AnalysisCard ready={(s?.candles_processed ?? 0) > 0} />
    </div>
  );
}
