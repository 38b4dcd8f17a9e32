// "Analyze": Grok's view of the latest stored candle of a symbol, or the technical consensus alone with
// the reason Grok was not asked or did not answer (the fallback marker).
import { useState, type FormEvent } from 'react';
import { call, http, type Schemas } from '../api/client';
import { fallbackText, INTERVALS, usdText } from '../lib/ai';
import { formatPct, formatTime } from '../lib/format';
import { useAction } from '../lib/hooks';
import { AiAnswerBody, Direction } from './AiAnswer';
import { Card, ErrorNote } from './ui';

type Analysis = Schemas['AiAnalysisOut'];
export interface Subject {
  symbol: string;
  interval: string;
}

function AnalysisResult({ a }: { a: Analysis }) {
  const { grok, technical } = a;
  return (
    <article className="signal" data-testid="ai-analysis" data-source={a.source} data-signal={a.signal}
      data-open-time={a.open_time}>
      <header>
        <strong>{a.symbol}</strong> <span className="muted">{a.interval} · {formatTime(a.open_time)}</span>
        <Direction direction={a.signal} confidence={a.confidence} />
        <span className="muted">
          {a.source === 'grok' ? `from Grok (${grok.model})` : 'technical consensus'}
          {grok.shared ? ' · shared answer, no cost' : grok.cost_usd ? ` · cost ${usdText(grok.cost_usd)}` : ''}
        </span>
      </header>
      {a.source === 'technical' ? (
        <p className="error wrap-text" role="status" data-testid="ai-fallback" data-reason={grok.reason ?? ''}>
          {fallbackText(grok)}
        </p>
      ) : null}
      {grok.answer ? <AiAnswerBody symbol={a.symbol} answer={grok.answer} /> : null}
      <p className="muted wrap-text" data-testid="ai-technical">
        Technical consensus: {technical
          ? `${technical.direction} ${formatPct(technical.confidence, 0)} — ${technical.reason}`
          : 'none yet (the indicators are warming up)'}
      </p>
    </article>
  );
}

export function AiAnalysisCard({ initialSymbol, onAnalysed }: {
  initialSymbol: string;
  /** After each analysis: its symbol and interval (the recent answers and the spend follow it). */
  onAnalysed: (subject: Subject) => void;
}) {
  const [typed, setTyped] = useState<string | null>(null);
  const [interval, setChosenInterval] = useState<string>('5m');
  const [result, setResult] = useState<Analysis | null>(null);
  const action = useAction();
  const symbol = typed ?? initialSymbol;

  const analyze = (e: FormEvent) => {
    e.preventDefault();
    void action.run(async () => {
      const subject = { symbol: symbol.trim().toUpperCase(), interval };
      setResult(await call(() => http.POST('/api/ai/analyze', { body: subject })));
      onAnalysed(subject);
    });
  };

  return (
    <Card title="Market analysis">
      <form className="inline-form" onSubmit={analyze} noValidate aria-label="Analyze a symbol">
        <label>Symbol
          <input value={symbol} onChange={(e) => setTyped(e.target.value.toUpperCase())} maxLength={20}
            autoComplete="off" spellCheck={false} />
        </label>
        <label>Interval
          <select value={interval} onChange={(e) => setChosenInterval(e.target.value)}>
            {INTERVALS.map((i) => <option key={i}>{i}</option>)}
          </select>
        </label>
        <button type="submit" className="primary" disabled={action.busy || !symbol.trim()}>
          {action.busy ? 'Analyzing…' : 'Analyze'}
        </button>
      </form>
      <p className="muted">Grok reads the indicators of the latest stored candle; when it cannot answer, the technical
        consensus stands alone and says why.</p>
      <ErrorNote message={action.error} />
      {result ? <AnalysisResult a={result} /> : null}
    </Card>
  );
}
