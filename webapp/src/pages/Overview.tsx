import { useMemo, useState, type FormEvent } from 'react';
import { call, errorText, http } from '../api/client';
import { LineChart } from '../components/LineChart';
import { useLiveEvents } from '../components/live';
import { temporalLink, useSystem } from '../components/system';
import { Card, ErrorNote, Pnl, Stat } from '../components/ui';
import { formatNumber, formatPct, formatTime } from '../lib/format';
import { useLoad } from '../lib/hooks';
import { equityCurve, maxDrawdown, pnlOnDay, winRate, type ClosedLike } from '../lib/metrics';

const INTERVALS = ['1m', '3m', '5m', '15m', '30m', '1h', '2h', '4h', '6h', '8h', '12h', '1d'] as const;
type Interval = (typeof INTERVALS)[number];

export function closedOf(rows: { trade: Record<string, unknown> }[]): ClosedLike[] {
  return rows.map((r) => ({ exit_time: Number(r.trade.exit_time), net_pnl: Number(r.trade.net_pnl) }));
}

export function Overview() {
  const system = useSystem();
  const status = useLoad(() => call(() => http.GET('/api/paper-trading/status')));
  const portfolio = useLoad(() => call(() => http.GET('/api/paper-trading/portfolio')));
  const closed = useLoad(() => call(() => http.GET('/api/paper-trading/trades/closed', { params: { query: { limit: 500 } } })));
  const generation = status.data?.generation;
  // The current account's equity at every committed step (downsampled by the API), not just at closes.
  const history = useLoad(
    () => call(() => http.GET('/api/paper-trading/equity-history', { params: { query: { limit: 1000, generation } } })),
    [generation],
  );
  const [symbols, setSymbols] = useState('');
  const [interval, setInterval] = useState<Interval>('5m');
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  const reloadAll = () => {
    status.reload();
    portfolio.reload();
    closed.reload();
    history.reload();
  };
  useLiveEvents(['BotStatusUpdate', 'PositionUpdate', 'TradeExecuted'], reloadAll);
  // Every processed candle commits a step, so the curve grows with the session's own streams.
  useLiveEvents(['ChartUpdate'], (e) => (e.symbol == null || status.data?.symbols.includes(e.symbol)) && history.reload());

  const s = status.data;
  const account = portfolio.data?.account;
  const trades = useMemo(() => closedOf(closed.data ?? []), [closed.data]);
  const realised = trades.reduce((sum, t) => sum + t.net_pnl, 0);
  const metrics = (s?.metrics ?? {}) as Record<string, number | null | undefined>;
  const start = metrics.starting_balance ?? (account ? account.equity - account.unrealised - realised : 0);
  const stepped = useMemo(() => (history.data ?? []).map((p) => ({ time: p.time, value: p.equity })), [history.data]);
  const realisedCurve = useMemo(() => equityCurve(start, trades), [start, trades]);
  const curve = stepped.length ? stepped : realisedCurve;
  const rate = metrics.win_rate ?? winRate(trades);
  const drawdown = metrics.max_drawdown ?? maxDrawdown(start, curve);
  const link = s ? temporalLink(system, s.session_id) : null;

  const act = async (what: () => Promise<unknown>) => {
    setBusy(true);
    setError(null);
    try {
      await what();
      reloadAll();
    } catch (err) {
      setError(errorText(err));
    } finally {
      setBusy(false);
    }
  };

  const start_ = (e: FormEvent) => {
    e.preventDefault();
    const list = symbols.split(',').map((x) => x.trim().toUpperCase()).filter(Boolean);
    void act(() => call(() => http.POST('/api/paper-trading/start', { body: { symbols: list.length ? list : null, interval } })));
  };

  return (
    <div className="grid">
      <Card title="Engine">
        <div className="stats">
          <Stat label="Status" testId="engine-status">
            <span className={`pill ${s?.status ?? 'new'}`}>{s?.status ?? '…'}</span>
          </Stat>
          <Stat label="Symbols">{s?.symbols.join(', ') || '—'}</Stat>
          <Stat label="Interval">{s?.interval || '—'}</Stat>
          <Stat label="Market time">{formatTime(s?.market_time)}</Stat>
          <Stat label="Candles processed">{s?.candles_processed ?? '—'}</Stat>
        </div>
        {link && s?.exists ? (
          <p>
            <a href={link} target="_blank" rel="noreferrer" data-testid="temporal-link">
              Open session {s.session_id} in the Temporal UI
            </a>
          </p>
        ) : null}
        {s?.status === 'running' ? (
          <button className="danger" disabled={busy} onClick={() => void act(() => call(() => http.POST('/api/paper-trading/stop')))}>
            Stop session
          </button>
        ) : (
          <form className="inline-form" onSubmit={start_} aria-label="Start a session">
            <label>
              Symbols
              <input value={symbols} onChange={(e) => setSymbols(e.target.value)} placeholder={s?.symbols.join(', ') || 'default feed'} />
            </label>
            <label>
              Interval
              <select value={interval} onChange={(e) => setInterval(e.target.value as Interval)}>
                {INTERVALS.map((i) => (
                  <option key={i}>{i}</option>
                ))}
              </select>
            </label>
            <button type="submit" className="primary" disabled={busy}>
              Start session
            </button>
          </form>
        )}
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
    </div>
  );
}
