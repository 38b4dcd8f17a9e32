// "Analyze now" (the session's analysis of each stream's last candle, run on demand; it never trades)
// and the config suggestions of the documented tuning rules over the account's results.
import { useState } from 'react';
import { call, errorText, http, type Schemas } from '../api/client';
import { formatIndicators, formatPct, formatTime } from '../lib/format';
import { Card, ErrorNote } from './ui';

type Analysis = Schemas['AnalysisOut'];
type Suggestions = Schemas['SuggestionSetOut'];

const show = (v: unknown): string => (v == null ? '—' : typeof v === 'object' ? JSON.stringify(v) : String(v));

export function AnalysisCard({ ready }: { ready: boolean }) {
  const [analyses, setAnalyses] = useState<Analysis[] | null>(null);
  const [suggestions, setSuggestions] = useState<Suggestions | null>(null);
  const [busy, setBusy] = useState<'analyze' | 'suggest' | null>(null);
  const [error, setError] = useState<string | null>(null);

  const run = async <T,>(what: 'analyze' | 'suggest', load: () => Promise<T>, done: (value: T) => void) => {
    setBusy(what);
    setError(null);
    try {
      done(await load());
    } catch (err) {
      setError(errorText(err));
    } finally {
      setBusy(null);
    }
  };
  const analyze = () => void run('analyze', () => call(() => http.POST('/api/paper-trading/trigger-analysis')),
    (r) => setAnalyses(r.analyses));
  const suggest = () => void run('suggest', () => call(() => http.GET('/api/paper-trading/config-suggestions/latest')),
    setSuggestions);

  return (
    <Card title="Analysis and tuning">
      <div className="button-row">
        <button onClick={analyze} disabled={!ready || busy != null}>Analyze now</button>
        <button onClick={suggest} disabled={busy != null}>Config suggestions</button>
      </div>
      {!ready ? <p className="muted">Analyze now needs a session that has processed a candle.</p> : null}
      <ErrorNote message={error} />
      {analyses ? (
        <div data-testid="analyses">
          <h3>Analysis of the last candle</h3>
          {analyses.length === 0 ? <p className="muted">No stream to analyse.</p> : null}
          <ul className="list">
            {analyses.map((a) => (
              <li key={a.analysis_key} className="signal" data-testid="analysis" data-symbol={a.symbol}
                data-direction={a.warming_up ? 'warming_up' : a.direction ?? 'neutral'}>
                <header>
                  <strong>{a.symbol}</strong> <span className="muted">{a.interval} · {formatTime(a.open_time)}</span>
                  {a.warming_up ? <span className="pill">warming up</span> : (
                    <span className={`pill ${a.direction ?? 'neutral'}`}>{a.direction ?? 'neutral'}</span>
                  )}
                  {a.confidence != null ? <span className="muted">confidence {formatPct(a.confidence, 0)}</span> : null}
                </header>
                {a.reason ? <p className="wrap-text">{a.reason}</p> : null}
                <p className="muted wrap-text">{formatIndicators(a.indicators)}</p>
              </li>
            ))}
          </ul>
        </div>
      ) : null}
      {suggestions ? (
        <div data-testid="suggestions" data-count={suggestions.suggestions.length}>
          <h3>Config suggestions</h3>
          <p className="muted">From {suggestions.trades_considered} closed trade(s) of this account; nothing changes until you save it in Settings.</p>
          {suggestions.suggestions.length === 0 ? <p>No suggestions: no rule fires on these results.</p> : (
            <ul className="list">
              {suggestions.suggestions.map((s) => (
                <li key={`${s.rule}-${s.parameter}`} className="signal" data-testid="suggestion" data-parameter={s.parameter}>
                  <header>
                    <span className={`pill tier-${s.tier.toLowerCase()}`}>{s.tier}</span>
                    <code>{s.parameter}</code> {show(s.current)} → {show(s.proposed)}
                  </header>
                  <p className="wrap-text">{s.reason}</p>
                </li>
              ))}
            </ul>
          )}
        </div>
      ) : null}
    </Card>
  );
}
