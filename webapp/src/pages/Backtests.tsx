import { useState, type FormEvent } from 'react';
import { call, errorText, http, type Schemas } from '../api/client';
import { LineChart } from '../components/LineChart';
import { Card, ErrorNote, Pnl } from '../components/ui';
import { formatNumber, formatPct, formatPrice, formatTime } from '../lib/format';
import { useInterval, useLoad } from '../lib/hooks';

type Backtest = Schemas['BacktestOut'];
type In = Schemas['BacktestIn'];

const RATIOS = new Set(['total_return', 'win_rate', 'max_drawdown', 'exposure']);
const DONE = new Set(['completed', 'failed', 'cancelled', 'canceled', 'terminated']);

export function curvePoints(curve: Backtest['equity_curve']): { time: number; value: number }[] {
  const times = (curve?.close_times ?? []) as number[];
  const equity = (curve?.equity ?? []) as number[];
  return times.map((time, i) => ({ time, value: equity[i] })).filter((p) => Number.isFinite(p.value));
}

/** "2023-01-05 12:00" (UTC) as ms; null when empty or unparsable. */
export function parseUtc(text: string): number | null {
  const t = text.trim();
  if (!/^\d{4}-\d{2}-\d{2}( \d{2}:\d{2})?$/.test(t)) return null;
  const ms = Date.parse(`${t.replace(' ', 'T')}${t.length > 10 ? ':00' : 'T00:00:00'}Z`);
  return Number.isFinite(ms) ? ms : null;
}

function metricText(key: string, value: unknown): string {
  if (typeof value !== 'number') return value == null ? '—' : String(value);
  return RATIOS.has(key) ? formatPct(value, 2) : formatNumber(value, Number.isInteger(value) ? 0 : 4);
}

function Report({ id }: { id: string }) {
  const run = useLoad(() => call(() => http.GET('/api/backtests/{backtest_id}', { params: { path: { backtest_id: id } } })), [id]);
  const b = run.data;
  useInterval(run.reload, b && DONE.has(b.status) ? null : 1000);
  if (!b) return <ErrorNote message={run.error} />;
  const trades = (b.trades ?? []) as Record<string, number | string>[];
  return (
    <Card title={`Backtest ${b.backtest_id}`} wide>
      <p data-testid="backtest-status">
        Status: <span className={`pill ${b.status}`}>{b.status}</span> {b.phase ? `(${b.phase})` : ''} — {formatPct(b.progress, 0)}
      </p>
      <progress value={b.progress} max={1} aria-label="Backtest progress" />
      <ErrorNote message={b.error ?? run.error} />
      {b.metrics ? (
        <>
          <h3>Metrics</h3>
          <dl className="metrics" data-testid="backtest-metrics">
            {Object.entries(b.metrics).map(([k, v]) => (
              <div key={k}><dt>{k.replace(/_/g, ' ')}</dt><dd>{metricText(k, v)}</dd></div>
            ))}
          </dl>
        </>
      ) : null}
      {b.equity_curve ? (
        <>
          <h3>Equity curve</h3>
          <LineChart points={curvePoints(b.equity_curve)} label="Backtest equity curve" />
        </>
      ) : null}
      {b.trades ? (
        <>
          <h3>Trades ({trades.length})</h3>
          <div className="table-wrap">
            <table data-testid="backtest-trades">
              <thead><tr><th>#</th><th>Side</th><th>Entry</th><th>Exit</th><th>Closed</th><th>Reason</th><th>Net PnL</th></tr></thead>
              <tbody>
                {trades.slice(0, 200).map((t, i) => (
                  <tr key={i}>
                    <td>{String(t.id ?? i + 1)}</td><td>{String(t.side)}</td>
                    <td>{formatPrice(Number(t.entry_price))}</td><td>{formatPrice(Number(t.exit_price))}</td>
                    <td>{formatTime(Number(t.exit_time))}</td><td>{String(t.close_reason ?? '')}</td>
                    <td><Pnl value={Number(t.net_pnl)} digits={6} /></td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        </>
      ) : null}
    </Card>
  );
}

export function Backtests() {
  const list = useLoad(() => call(() => http.GET('/api/backtests')));
  const [dataset, setDataset] = useState('');
  const [minAgree, setMinAgree] = useState('2');
  const [leverage, setLeverage] = useState('5');
  const [until, setUntil] = useState('');
  const [selected, setSelected] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  useInterval(list.reload, list.data?.some((b) => !DONE.has(b.status)) ? 2000 : null);

  const run = async (e: FormEvent) => {
    e.preventDefault();
    setError(null);
    const tradeTo = parseUtc(until);
    if (until.trim() && tradeTo == null) {
      setError('Trade until: use YYYY-MM-DD HH:MM (UTC).');
      return;
    }
    const body: In = {
      trade_to: tradeTo,
      dataset: dataset.trim() || null,
      analysis_settings: minAgree.trim() ? { min_agree: Number(minAgree) } : null,
      engine_settings: leverage.trim() ? { leverage: Number(leverage) } : null,
    };
    try {
      const started = await call(() => http.POST('/api/backtests', { body }));
      setSelected(started.backtest_id);
      list.reload();
    } catch (err) {
      setError(errorText(err));
    }
  };

  return (
    <div className="grid">
      <Card title="Run a backtest">
        <form className="form inline-form" onSubmit={run} aria-label="Run a backtest">
          <label>Dataset (file under data/candles)<input value={dataset} onChange={(e) => setDataset(e.target.value)} placeholder="BTCUSDT-5m-2023-01.csv.gz" /></label>
          <label>Min agreeing strategies<input inputMode="numeric" value={minAgree} onChange={(e) => setMinAgree(e.target.value)} /></label>
          <label>Trade until (UTC, optional)<input value={until} onChange={(e) => setUntil(e.target.value)} placeholder="2023-01-05 12:00" /></label>
          <label>Leverage<input inputMode="numeric" value={leverage} onChange={(e) => setLeverage(e.target.value)} /></label>
          <button type="submit" className="primary">Run backtest</button>
        </form>
        <ErrorNote message={error} />
      </Card>
      <Card title="Backtests">
        <ErrorNote message={list.error} />
        {(list.data ?? []).length === 0 ? <p className="muted">No backtests yet.</p> : (
          <ul className="list">
            {(list.data ?? []).map((b) => (
              <li key={b.backtest_id}>
                <button className={`link ${selected === b.backtest_id ? 'current' : ''}`} onClick={() => setSelected(b.backtest_id)}>
                  {String((b.request as { dataset?: string } | null)?.dataset ?? b.backtest_id)} — {b.status} ({formatPct(b.progress, 0)})
                </button>
              </li>
            ))}
          </ul>
        )}
      </Card>
      {selected ? <Report id={selected} /> : null}
    </div>
  );
}
