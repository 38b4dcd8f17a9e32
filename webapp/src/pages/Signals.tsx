import { useMemo, useState } from 'react';
import { call, errorText, http, type Schemas } from '../api/client';
import { useLiveEvents } from '../components/live';
import { Card, ErrorNote } from '../components/ui';
import { formatIndicators, formatPct, formatTime } from '../lib/format';
import { useLoad } from '../lib/hooks';

type Analysis = Schemas['AnalysisOut'];
type Decision = Schemas['DecisionOut'];

/** Live decisions first, then the stored ones, each analysis once, newest first. */
export function mergeDecisions(live: readonly Decision[], stored: readonly Decision[], most = 20): Decision[] {
  const seen = new Set<string>();
  const out: Decision[] = [];
  for (const d of [...live, ...stored].sort((a, b) => b.open_time - a.open_time)) {
    if (seen.has(d.analysis_key)) continue;
    seen.add(d.analysis_key);
    out.push(d);
  }
  return out.slice(0, most);
}

function DecisionCard({ d }: { d: Decision }) {
  const outcome = d.opened ? 'opened a position' : d.rejection ? `not traded: ${d.rejection}` : 'no entry attempted';
  return (
    <article className="signal" data-testid="decision" data-analysis-key={d.analysis_key}>
      <header>
        <strong>{d.symbol}</strong> {d.interval} · {formatTime(d.open_time)}{' '}
        <span className={`pill ${d.direction}`}>{d.direction}</span> {d.confidence != null ? formatPct(d.confidence, 0) : ''}
      </header>
      <p data-testid="decision-outcome">{outcome}</p>
      {d.risk?.length ? (
        <div className="table-wrap">
          <table data-testid="risk-checks">
            <thead><tr><th>Risk check</th><th>Result</th><th>Reason</th></tr></thead>
            <tbody>
              {d.risk.map((r) => (
                <tr key={r.name} data-testid="risk-check" data-passed={String(r.passed)}>
                  <td>{r.name}</td>
                  <td className={r.passed ? 'up' : 'down'}>{r.enabled ? (r.passed ? 'passed' : 'failed') : 'off'}</td>
                  <td className="wrap">{r.reason}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      ) : null}
    </article>
  );
}

function Decisions() {
  const stored = useLoad(() => call(() => http.GET('/api/paper-trading/decisions', { params: { query: { limit: 20 } } })));
  const [live, setLive] = useState<Decision[]>([]);
  useLiveEvents(['AISignalReceived'], (e) => {
    if (e.type === 'Resync') stored.reload();
    else setLive((l) => [e.data as Decision, ...l].slice(0, 20));
  });
  const items = useMemo(() => mergeDecisions(live, stored.data ?? []), [live, stored.data]);
  return (
    <Card title="Decisions and risk checks">
      <ErrorNote message={stored.error} />
      {items.length === 0 ? <p className="muted">No long or short signal acted on yet.</p> : null}
      {items.map((d) => <DecisionCard key={d.analysis_key} d={d} />)}
    </Card>
  );
}

function AnalysisCard({ a }: { a: Analysis }) {
  const verdicts = a.verdicts as { strategy?: string; direction?: string; confidence?: number; reason?: string }[];
  return (
    <article className="signal" data-testid="signal" data-open-time={a.open_time}>
      <header>
        <strong>{a.symbol}</strong> {a.interval} · {formatTime(a.open_time)}
        {a.warming_up ? <span className="pill">warming up</span> : null}
      </header>
      <p>
        Consensus: <span className={`pill ${a.direction ?? 'neutral'}`}>{a.direction ?? 'neutral'}</span>{' '}
        {a.confidence != null ? formatPct(a.confidence, 0) : ''} — {a.reason ?? 'no reason given'}
      </p>
      {formatIndicators(a.indicators) ? <p className="muted" data-testid="indicators">{formatIndicators(a.indicators)}</p> : null}
      {verdicts.length ? (
        <div className="table-wrap">
          <table>
            <thead><tr><th>Strategy</th><th>Verdict</th><th>Confidence</th><th>Reason</th></tr></thead>
            <tbody>
              {verdicts.map((v, i) => (
                <tr key={i}>
                  <td>{v.strategy}</td><td className={v.direction}>{v.direction}</td>
                  <td>{formatPct(v.confidence, 0)}</td><td className="wrap">{v.reason}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      ) : null}
    </article>
  );
}

/** The newest page followed by the older pages read so far, each analysis once, newest first. */
export function withOlder(newest: readonly Analysis[], older: readonly Analysis[]): Analysis[] {
  const seen = new Set(newest.map((a) => a.analysis_key));
  return [...newest, ...older.filter((a) => !seen.has(a.analysis_key))];
}

const PAGE = 20;

export function Signals() {
  const history = useLoad(() => call(() => http.GET('/api/paper-trading/signals-history', { params: { query: { limit: PAGE } } })));
  useLiveEvents(['AISignalReceived', 'ChartUpdate'], history.reload);
  // Older pages stay as read; the live reloads only refresh the newest page.
  const [older, setOlder] = useState<{ items: Analysis[]; next: number | null } | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [loading, setLoading] = useState(false);
  const next = older ? older.next : (history.data?.next_before ?? null);
  const items = withOlder(history.data?.items ?? [], older?.items ?? []);

  const loadOlder = async () => {
    if (next == null) return;
    setLoading(true);
    setError(null);
    try {
      const page = await call(() => http.GET('/api/paper-trading/signals-history', { params: { query: { limit: PAGE, before: next } } }));
      setOlder({ items: [...(older?.items ?? []), ...page.items], next: page.next_before ?? null });
    } catch (err) {
      setError(errorText(err));
    } finally {
      setLoading(false);
    }
  };

  return (
    <div className="grid">
    <Decisions />
    <Card title="Signals feed">
      <ErrorNote message={error ?? history.error} />
      {items.length === 0 ? <p className="muted">No analyses yet: start a session and wait for a closed candle.</p> : null}
      {items.map((a) => <AnalysisCard key={a.analysis_key} a={a} />)}
      {next != null ? (
        <button type="button" onClick={loadOlder} disabled={loading}>{loading ? 'Loading…' : 'Older signals'}</button>
      ) : null}
    </Card>
    </div>
  );
}
