// Backtests: run one on the session's own settings (the settings document it exports), read the report
// (every parameter, metrics, per pair / exit reason / month, durations), the price with entries and exits,
// the equity curve and every trade page by page; download it (JSON, CSV), compare runs, delete them.
import { useEffect, useMemo, useRef, useState, type FormEvent } from 'react';
import { LineSeries, createChart, createSeriesMarkers, type SeriesMarker, type UTCTimestamp } from 'lightweight-charts';
import { call, errorText, http, type Schemas } from '../api/client';
import { LineChart } from '../components/LineChart';
import { downloadFile } from '../lib/csv';
import { PALETTES, chartOptions, useColorScheme } from '../lib/theme';
import { Card, ErrorNote, Pnl } from '../components/ui';
import { snapToBar, toLine } from '../lib/chartData';
import { formatNumber, formatPct, formatPrice } from '../lib/format';
import { useInterval, useLoad } from '../lib/hooks';

type Backtest = Schemas['BacktestOut'];
type In = Schemas['BacktestIn'];
type Doc = Record<string, unknown> & { symbols?: string[]; interval?: string; engine?: Record<string, unknown>; analysis?: Record<string, unknown> };
type Row = Record<string, unknown>;
type Trade = Record<string, number | string>;

const RATIOS = new Set(['total_return', 'win_rate', 'max_drawdown', 'exposure']);
const DONE = new Set(['completed', 'failed', 'cancelled', 'canceled', 'terminated']);
const PAGE = 50;
const MARKED_TRADES = 2000; // trades the price chart marks (two pages of the API)
const FILE_STREAM = /^([A-Z0-9]+)-(\d+[mhd])-/;

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

/** "ETHBTC-5m-2018-01.csv.gz, LTCBTC-5m-…" → the files, and the symbols and interval their names say. */
export function parseDatasets(text: string): { files: string[]; symbols: string[]; interval: string | null } {
  const files = text.split(/[,\s]+/).map((f) => f.trim()).filter(Boolean);
  const streams = files.map((f) => FILE_STREAM.exec(f));
  return {
    files,
    symbols: streams.map((m, i) => (m ? m[1] : files[i])),
    interval: streams[0]?.[2] ?? null,
  };
}

/** Nested settings as "engine.risk.max_daily_loss_pct" → value rows, in path order (lists stay whole). */
export function flatten(value: unknown, prefix = ''): [string, unknown][] {
  if (value && typeof value === 'object' && !Array.isArray(value) && Object.keys(value).length) {
    return Object.keys(value).sort().flatMap((k) => flatten((value as Row)[k], prefix ? `${prefix}.${k}` : k));
  }
  return [[prefix, value]];
}

/** Milliseconds as "2d 03:05" or "00:25". */
export function durationText(ms: unknown): string {
  if (typeof ms !== 'number' || !Number.isFinite(ms)) return '—';
  const minutes = Math.floor(ms / 60000);
  const days = Math.floor(minutes / 1440);
  const hm = `${String(Math.floor((minutes % 1440) / 60)).padStart(2, '0')}:${String(minutes % 60).padStart(2, '0')}`;
  return days ? `${days}d ${hm}` : hm;
}

function shortTime(ms: unknown): string {
  return typeof ms === 'number' && ms > 0 ? new Date(ms).toISOString().slice(0, 16).replace('T', ' ') : '—';
}

function valueText(value: unknown): string {
  if (value == null) return '—';
  if (Array.isArray(value)) return value.length ? value.map(valueText).join(', ') : '[]';
  if (typeof value === 'object') return JSON.stringify(value);
  return String(value);
}

function metricText(key: string, value: unknown): string {
  if (typeof value !== 'number') return value == null ? '—' : String(value);
  return RATIOS.has(key) ? formatPct(value, 2) : formatNumber(value, Number.isInteger(value) ? 0 : 4);
}

// -- report tables --------------------------------------------------------------------------------
function SummaryTable({ title, rows, first, label, testId }: { title: string; rows: Row[]; first: string; label: string; testId: string }) {
  return (
    <>
      <h3>{title}</h3>
      <div className="table-wrap">
        <table data-testid={testId}>
          <thead><tr><th>{label}</th><th>Trades</th><th>Win / draw / loss</th><th>Win rate</th><th>Net PnL</th><th>Net %</th><th>Avg return %</th><th>Profit factor</th><th>Avg duration</th></tr></thead>
          <tbody>
            {rows.map((r) => (
              <tr key={String(r[first])}>
                <td>{String(r[first])}</td><td>{String(r.trades)}</td><td>{`${r.wins} / ${r.draws} / ${r.losses}`}</td>
                <td>{formatPct(r.win_rate as number | null, 1)}</td><td><Pnl value={r.net_pnl as number} digits={4} /></td>
                <td>{formatNumber(r.net_pnl_pct as number | null, 2)}</td><td>{formatNumber(r.avg_return_pct as number | null, 2)}</td>
                <td>{formatNumber(r.profit_factor as number | null, 2)}</td><td>{durationText(r.avg_duration_ms)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
    </>
  );
}

function Durations({ durations }: { durations: Record<string, Row> }) {
  return (
    <>
      <h3>Trade duration</h3>
      <div className="table-wrap">
        <table data-testid="backtest-durations">
          <thead><tr><th>Of</th><th>Trades</th><th>Average</th><th>Shortest</th><th>Longest</th></tr></thead>
          <tbody>
            {['all', 'winners', 'draws', 'losers'].map((k) => (
              <tr key={k}><td>{k}</td><td>{String(durations[k]?.trades ?? 0)}</td><td>{durationText(durations[k]?.avg_ms)}</td>
                <td>{durationText(durations[k]?.min_ms)}</td><td>{durationText(durations[k]?.max_ms)}</td></tr>
            ))}
          </tbody>
        </table>
      </div>
    </>
  );
}

/** The closes of one symbol with an arrow at every entry and exit (the chart is a canvas: what it drew is
 * mirrored on the element, for tests and assistive tools). */
function PriceChart({ curve, trades, symbol }: { curve: { close_times: number[]; close: number[] } | undefined; trades: Trade[]; symbol: string }) {
  const box = useRef<HTMLDivElement>(null);
  const scheme = useColorScheme();
  useEffect(() => {
    if (!box.current || !curve?.close_times.length) return;
    const palette = PALETTES[scheme];
    const chart = createChart(box.current, chartOptions(scheme));
    const line = chart.addSeries(LineSeries, { color: palette.text, lineWidth: 1, priceLineVisible: false });
    const points = toLine(curve.close_times.map((t, i) => ({ time: t, value: curve.close[i] })));
    line.setData(points.map((p) => ({ time: p.time as UTCTimestamp, value: p.value })));
    const times = points.map((p) => p.time);
    const markers: SeriesMarker<UTCTimestamp>[] = [];
    for (const t of trades.filter((x) => x.symbol === symbol)) {
      const long = t.side === 'long';
      for (const [ms, exit] of [[t.entry_time, false], [t.exit_time, true]] as [number, boolean][]) {
        const at = snapToBar(times, ms);
        if (at == null) continue;
        const up = exit ? !long : long;
        markers.push({ time: at as UTCTimestamp, position: up ? 'belowBar' : 'aboveBar', shape: up ? 'arrowUp' : 'arrowDown',
          color: exit ? palette.neutral : long ? palette.up : palette.down, text: `${exit ? '×' : '#'}${t.id}` });
      }
    }
    markers.sort((a, b) => a.time - b.time);
    createSeriesMarkers(line, markers);
    chart.timeScale().fitContent();
    const el = box.current;
    el.dataset.markers = String(markers.length);
    return () => {
      chart.remove();
      delete el.dataset.markers;
    };
  }, [curve, trades, symbol, scheme]);
  return <div className="chart" style={{ height: 300 }} ref={box} role="img" aria-label={`${symbol} price with entries and exits`} data-testid="backtest-price-chart" />;
}

function Trades({ id, total, first }: { id: string; total: number; first: Trade[] }) {
  const [offset, setOffset] = useState(0);
  const page = useLoad(
    () => (offset === 0 ? Promise.resolve({ items: first, total, offset: 0, limit: PAGE })
      : call(() => http.GET('/api/backtests/{backtest_id}/trades', { params: { path: { backtest_id: id }, query: { limit: PAGE, offset } } }))),
    [id, offset],
  );
  const items = ((page.data?.items ?? []) as Trade[]).slice(0, PAGE);
  return (
    <>
      <h3>Trades {total ? `${offset + 1}–${Math.min(offset + PAGE, total)} of ${total}` : '(none)'}</h3>
      <ErrorNote message={page.error} />
      <div className="table-wrap">
        <table data-testid="backtest-trades">
          <thead><tr><th>#</th><th>Symbol</th><th>Side</th><th>Entry (UTC)</th><th>Exit (UTC)</th><th>Entry price</th><th>Exit price</th><th>Reason</th><th>Net PnL</th></tr></thead>
          <tbody>
            {items.map((t) => (
              <tr key={String(t.id)}>
                <td>{String(t.id)}</td><td>{String(t.symbol)}</td><td>{String(t.side)}</td>
                <td>{shortTime(t.entry_time)}</td><td>{shortTime(t.exit_time)}</td>
                <td>{formatPrice(Number(t.entry_price))}</td><td>{formatPrice(Number(t.exit_price))}</td>
                <td>{String(t.close_reason ?? '')}</td><td><Pnl value={Number(t.net_pnl)} digits={6} /></td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      <div className="filters" aria-label="Trade pages">
        <button type="button" disabled={offset === 0} onClick={() => setOffset(Math.max(0, offset - PAGE))}>Previous trades</button>
        <button type="button" disabled={offset + PAGE >= total} onClick={() => setOffset(offset + PAGE)}>Next trades</button>
      </div>
    </>
  );
}

function Report({ id, onDeleted, onStatus }: { id: string; onDeleted: () => void; onStatus: (status: string) => void }) {
  const run = useLoad(() => call(() => http.GET('/api/backtests/{backtest_id}', { params: { path: { backtest_id: id } } })), [id]);
  const b = run.data;
  const done = !!b && DONE.has(b.status);
  useInterval(run.reload, b && done ? null : 1000);
  useEffect(() => {
    if (b?.status) onStatus(b.status); // the list shows the same status as the report
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [b?.status]);
  const [symbol, setSymbol] = useState('');
  const [error, setError] = useState<string | null>(null);
  const report = b?.report as { parameters: Row; data: Row; metrics: Row; tables: Record<string, unknown> } | null | undefined;
  const marked = useLoad(async () => {
    if (!report) return [] as Trade[];
    const out: Trade[] = [];
    while (out.length < Math.min(MARKED_TRADES, b?.trades_total ?? 0)) {
      const page = await call(() => http.GET('/api/backtests/{backtest_id}/trades', { params: { path: { backtest_id: id }, query: { limit: 1000, offset: out.length } } }));
      out.push(...(page.items as Trade[]));
      if (page.items.length < 1000) break;
    }
    return out;
  }, [id, !!report]);

  const exportAs = async (format: 'json' | 'csv') => {
    setError(null);
    try {
      const text = await call(() => http.GET('/api/backtests/{backtest_id}/export', { params: { path: { backtest_id: id }, query: { format } }, parseAs: 'text' }));
      downloadFile(format === 'json' ? `backtest-${id}.json` : `backtest-${id}-trades.csv`, String(text), format === 'json' ? 'application/json' : 'text/csv');
    } catch (err) {
      setError(errorText(err));
    }
  };
  const remove = async () => {
    if (!window.confirm(`Delete backtest ${id} with its report and trades?`)) return;
    setError(null);
    try {
      await call(() => http.DELETE('/api/backtests/{backtest_id}', { params: { path: { backtest_id: id } } }));
      onDeleted();
    } catch (err) {
      setError(errorText(err));
    }
  };

  if (!b) return <ErrorNote message={run.error} />;
  const symbols = ((report?.data.symbols as string[] | undefined) ?? []);
  const shown = symbol || symbols[0] || '';
  const curves = (b.price_curves ?? {}) as Record<string, { close_times: number[]; close: number[] }>;
  const tables = report?.tables as { per_pair: Row[]; per_exit_reason: Row[]; per_month: Row[]; durations: Record<string, Row> } | undefined;
  const parameters = report ? flatten({ ...report.parameters, source: (b.data as Row | null)?.source, dataset: (b.data as Row | null)?.datasets ?? (b.data as Row | null)?.dataset }) : [];
  // In the body, not the card's header: a row of its own wraps on a phone.
  const actions = (
    <div className="filters">
      {report ? <button type="button" onClick={() => exportAs('json')}>Download JSON</button> : null}
      {report ? <button type="button" onClick={() => exportAs('csv')}>Download CSV</button> : null}
      <button type="button" className="danger" onClick={remove}>Delete backtest</button>
    </div>
  );
  return (
    <Card title={`Backtest ${b.backtest_id}`} wide>
      {actions}
      <p data-testid="backtest-status">
        Status: <span className={`pill ${b.status}`}>{b.status}</span> {b.phase ? `(${b.phase})` : ''} — {formatPct(b.progress, 0)}
      </p>
      <progress value={b.progress} max={1} aria-label="Backtest progress" />
      <ErrorNote message={b.error ?? run.error ?? error} />
      {report && tables ? (
        <>
          <h3>Metrics</h3>
          <dl className="metrics" data-testid="backtest-metrics">
            {Object.entries(report.metrics).map(([k, v]) => (
              <div key={k}><dt>{k.replace(/_/g, ' ')}</dt><dd>{metricText(k, v)}</dd></div>
            ))}
          </dl>
          <SummaryTable title="Per pair" rows={tables.per_pair} first="symbol" label="Pair" testId="backtest-per-pair" />
          <SummaryTable title="Per exit reason" rows={tables.per_exit_reason} first="reason" label="Exit reason" testId="backtest-per-exit-reason" />
          <Durations durations={tables.durations} />
          <SummaryTable title="Per month (exit time, UTC)" rows={tables.per_month} first="month" label="Month" testId="backtest-per-month" />
          <h3>Price, entries and exits</h3>
          {symbols.length > 1 ? (
            <label className="check">Pair
              <select value={shown} onChange={(e) => setSymbol(e.target.value)}>{symbols.map((s) => <option key={s}>{s}</option>)}</select>
            </label>
          ) : null}
          {(b.trades_total ?? 0) > MARKED_TRADES ? <p className="muted">The first {MARKED_TRADES} trades are marked.</p> : null}
          <PriceChart curve={curves[shown]} trades={marked.data ?? []} symbol={shown} />
          <h3>Equity curve</h3>
          <LineChart points={curvePoints(b.equity_curve)} label="Backtest equity curve" />
          <Trades id={id} total={b.trades_total ?? 0} first={(b.trades ?? []) as Trade[]} />
          <h3>Parameters</h3>
          {/* Hashes and setting paths are long unbroken words: they break anywhere rather than widen a phone's page. */}
          <dl className="metrics" data-testid="backtest-parameters" style={{ overflowWrap: 'anywhere' }}>
            {parameters.map(([k, v]) => <div key={k}><dt>{k}</dt><dd>{valueText(v)}</dd></div>)}
          </dl>
        </>
      ) : null}
    </Card>
  );
}

// -- compare --------------------------------------------------------------------------------------
const COMPARED_METRICS = ['total_return', 'final_equity', 'trades', 'win_rate', 'profit_factor', 'sharpe', 'sortino', 'max_drawdown', 'exposure', 'fees_paid', 'entries_rejected'];

function Comparison({ ids }: { ids: string[] }) {
  const found = useLoad(() => call(() => http.GET('/api/backtests/compare', { params: { query: { ids } } })), [ids.join(',')]);
  const c = found.data;
  return (
    <Card title="Comparison" wide>
      <ErrorNote message={found.error} />
      {c ? (
        <div className="table-wrap">
          <table data-testid="backtest-comparison">
            <thead><tr><th>Metric</th>{c.runs.map((r) => <th key={r.backtest_id}>{r.backtest_id.slice(0, 8)} {((r.data.symbols as string[]) ?? []).join(', ')}</th>)}</tr></thead>
            <tbody>
              {COMPARED_METRICS.map((m) => <tr key={m}><td>{m.replace(/_/g, ' ')}</td>{c.runs.map((r) => <td key={r.backtest_id}>{metricText(m, r.metrics[m])}</td>)}</tr>)}
              {c.differences.map((d) => <tr key={d.parameter}><td>{d.parameter}</td>{d.values.map((v, i) => <td key={i}>{valueText(v)}</td>)}</tr>)}
            </tbody>
          </table>
          {c.differences.length === 0 ? <p className="muted">The runs used the same parameters.</p> : null}
        </div>
      ) : null}
    </Card>
  );
}

// -- page -----------------------------------------------------------------------------------------
export function Backtests() {
  const list = useLoad(() => call(() => http.GET('/api/backtests')));
  const session = useLoad(() => call(() => http.GET('/api/paper-trading/settings/export')) as Promise<Doc>);
  const [doc, setDoc] = useState<Doc | null>(null);
  const [docText, setDocText] = useState('');
  const [dataset, setDataset] = useState('');
  const [from, setFrom] = useState('');
  const [until, setUntil] = useState('');
  const [selected, setSelected] = useState<string | null>(null);
  const [checked, setChecked] = useState<string[]>([]);
  const [compared, setCompared] = useState<string[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  useInterval(list.reload, list.data?.some((b) => !DONE.has(b.status)) ? 2000 : null);

  // The form starts from the session's current settings (and again on "Use my session's settings").
  const adopt = (next: Doc) => {
    setDoc(next);
    setDocText(JSON.stringify(next, null, 2));
  };
  useEffect(() => {
    if (session.data && !doc) adopt(session.data);
  }, [session.data, doc]);
  const engine = (doc?.engine ?? {}) as Row;
  const analysis = (doc?.analysis ?? {}) as Row;
  const setEngine = (changes: Row) => doc && adopt({ ...doc, engine: { ...engine, ...changes } });
  const number = (text: string) => (text.trim() === '' || Number.isNaN(Number(text)) ? text : Number(text));
  const files = useMemo(() => parseDatasets(dataset), [dataset]);

  const applyText = () => {
    try {
      adopt(JSON.parse(docText) as Doc);
      setError(null);
    } catch (err) {
      setError(`Settings document: ${errorText(err)}`);
    }
  };

  const run = async (e: FormEvent) => {
    e.preventDefault();
    setError(null);
    const tradeFrom = parseUtc(from);
    const tradeTo = parseUtc(until);
    if ((from.trim() && tradeFrom == null) || (until.trim() && tradeTo == null)) {
      setError('Trade from / until: use YYYY-MM-DD HH:MM (UTC).');
      return;
    }
    if (!doc) return;
    // Files say their symbols and interval in their names; without files the document's are traded.
    const settings = files.files.length ? { ...doc, symbols: files.symbols, interval: files.interval ?? doc.interval } : doc;
    const body: In = { settings, datasets: files.files.length ? files.files : null, trade_from: tradeFrom, trade_to: tradeTo };
    try {
      const started = await call(() => http.POST('/api/backtests', { body }));
      setSelected(started.backtest_id);
      list.reload();
    } catch (err) {
      setError(errorText(err));
    }
  };

  const toggle = (id: string) => setChecked(checked.includes(id) ? checked.filter((x) => x !== id) : [...checked, id]);
  const deleted = () => {
    setChecked(checked.filter((x) => x !== selected));
    setCompared(null);
    setSelected(null);
    list.reload();
  };

  return (
    <div className="grid">
      <Card title="Run a backtest">
        <form className="form" onSubmit={run} aria-label="Run a backtest">
          <p className="muted">Starts from your session&apos;s settings{doc ? ` (${(doc.symbols ?? []).join(', ')} ${doc.interval ?? ''})` : ''}; change any of them here.</p>
          <ErrorNote message={session.error} />
          <div className="inline-form">
            <label>Dataset (files under data/candles, comma-separated; empty: stored candles)<input value={dataset} onChange={(e) => setDataset(e.target.value)} placeholder="BTCUSDT-5m-2023-01.csv.gz" /></label>
            <label>Symbols<input value={(doc?.symbols ?? []).join(',')} disabled={!!files.files.length} onChange={(e) => doc && adopt({ ...doc, symbols: e.target.value.toUpperCase().split(/[,\s]+/).filter(Boolean) })} /></label>
            <label>Interval<input value={String(doc?.interval ?? '')} disabled={!!files.files.length} onChange={(e) => doc && adopt({ ...doc, interval: e.target.value.trim() })} /></label>
            <label>Trade from (UTC, optional)<input value={from} onChange={(e) => setFrom(e.target.value)} placeholder="2023-01-05 00:00" /></label>
            <label>Trade until (UTC, optional)<input value={until} onChange={(e) => setUntil(e.target.value)} placeholder="2023-01-20 00:00" /></label>
            <label>Leverage<input inputMode="numeric" value={String(engine.leverage ?? '')} onChange={(e) => setEngine({ leverage: number(e.target.value) })} /></label>
            <label>Fee per fill<input inputMode="decimal" value={String(engine.taker_fee ?? '')} onChange={(e) => setEngine({ taker_fee: number(e.target.value), maker_fee: number(e.target.value) })} /></label>
            <label>Starting balance<input inputMode="decimal" value={String(engine.starting_balance ?? '')} onChange={(e) => setEngine({ starting_balance: number(e.target.value) })} /></label>
            <label>Min agreeing strategies<input inputMode="numeric" value={String(analysis.min_agree ?? '')} onChange={(e) => doc && adopt({ ...doc, analysis: { ...analysis, min_agree: number(e.target.value) } })} /></label>
          </div>
          <details>
            <summary>Every setting (the settings document)</summary>
            {/* Labelled apart: a wrapping label would lend the JSON's words to the textarea's name. */}
            <label htmlFor="backtest-settings-document">Settings document (JSON)</label>
            <textarea id="backtest-settings-document" rows={14} value={docText} onChange={(e) => setDocText(e.target.value)} onBlur={applyText} spellCheck={false} />
          </details>
          <div className="filters">
            <button type="submit" className="primary" disabled={!doc}>Run backtest</button>
            <button type="button" onClick={() => session.data && adopt(session.data)}>Use my session&apos;s settings</button>
          </div>
        </form>
        <ErrorNote message={error} />
      </Card>
      <Card title="Backtests">
        <ErrorNote message={list.error} />
        {(list.data ?? []).length === 0 ? <p className="muted">No backtests yet.</p> : (
          <>
            <ul className="list">
              {(list.data ?? []).map((b) => (
                <li key={b.backtest_id}>
                  <input type="checkbox" aria-label={`Compare ${b.backtest_id}`} checked={checked.includes(b.backtest_id)} disabled={b.status !== 'completed'} onChange={() => toggle(b.backtest_id)} />
                  <button className={`link ${selected === b.backtest_id ? 'current' : ''}`} onClick={() => setSelected(b.backtest_id)}>
                    {String(((b.data as Row | null)?.symbols as string[] | undefined)?.join(', ') ?? (b.request as { dataset?: string } | null)?.dataset ?? b.backtest_id)} — {b.status} ({formatPct(b.progress, 0)})
                  </button>
                </li>
              ))}
            </ul>
            <button type="button" disabled={checked.length < 2 || checked.length > 10} onClick={() => setCompared([...checked])}>Compare selected ({checked.length})</button>
          </>
        )}
      </Card>
      {compared ? <Comparison ids={compared} /> : null}
      {selected ? <Report key={selected} id={selected} onDeleted={deleted} onStatus={list.reload} /> : null}
    </div>
  );
}
