import { call, http, type Schemas } from '../api/client';
import { useLiveEvents } from '../components/live';
import { Card, ErrorNote } from '../components/ui';
import { formatPct, formatTime } from '../lib/format';
import { useLoad } from '../lib/hooks';

type Analysis = Schemas['AnalysisOut'];

function AnalysisCard({ a }: { a: Analysis }) {
  const verdicts = a.verdicts as { strategy?: string; direction?: string; confidence?: number; reason?: string }[];
  return (
    <article className="signal" data-testid="signal">
      <header>
        <strong>{a.symbol}</strong> {a.interval} · {formatTime(a.open_time)}
        {a.warming_up ? <span className="pill">warming up</span> : null}
      </header>
      <p>
        Consensus: <span className={`pill ${a.direction ?? 'neutral'}`}>{a.direction ?? 'neutral'}</span>{' '}
        {a.confidence != null ? formatPct(a.confidence, 0) : ''} — {a.reason ?? 'no reason given'}
      </p>
      {verdicts.length ? (
        <div className="table-wrap">
          <table>
            <thead><tr><th>Strategy</th><th>Verdict</th><th>Confidence</th><th>Reason</th></tr></thead>
            <tbody>
              {verdicts.map((v, i) => (
                <tr key={i}>
                  <td>{v.strategy}</td><td className={v.direction}>{v.direction}</td>
                  <td>{formatPct(v.confidence, 0)}</td><td>{v.reason}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      ) : null}
    </article>
  );
}

export function Signals() {
  const history = useLoad(() => call(() => http.GET('/api/paper-trading/signals-history', { params: { query: { limit: 20 } } })));
  useLiveEvents(['AISignalReceived', 'ChartUpdate'], history.reload);
  const items = history.data?.items ?? [];
  return (
    <Card title="Signals feed">
      <ErrorNote message={history.error} />
      {items.length === 0 ? <p className="muted">No analyses yet: start a session and wait for a closed candle.</p> : null}
      {items.map((a) => <AnalysisCard key={a.analysis_key} a={a} />)}
    </Card>
  );
}
