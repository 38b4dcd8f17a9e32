// One answer of Grok's about a candle: its direction and confidence, reasoning, key levels, risks and
// horizon. The latest analysis and the list of recent answers both show answers this way.
import type { Schemas } from '../api/client';
import { formatPct } from '../lib/format';
import { usePriceFormat } from './symbols';

type Answer = Schemas['AiGrokAnswerOut'];

export function Direction({ direction, confidence }: { direction: string; confidence?: number | null }) {
  return (
    <>
      <span className={`pill ${direction}`}>{direction}</span>
      {confidence != null ? <span className="muted">confidence {formatPct(confidence, 0)}</span> : null}
    </>
  );
}

export function AiAnswerBody({ symbol, answer }: { symbol: string; answer: Answer }) {
  const price = usePriceFormat();
  const levels = (values: number[]) => (values.length ? values.map((v) => price(symbol, v)).join(', ') : '—');
  return (
    <>
      <p className="wrap-text" data-testid="ai-reasoning">{answer.reasoning}</p>
      <dl className="metrics">
        <div><dt>Support</dt><dd data-testid="ai-support">{levels(answer.key_levels.support)}</dd></div>
        <div><dt>Resistance</dt><dd data-testid="ai-resistance">{levels(answer.key_levels.resistance)}</dd></div>
        <div><dt>Horizon</dt><dd data-testid="ai-horizon">{answer.horizon || '—'}</dd></div>
      </dl>
      {answer.risks.length ? (
        <>
          <h3>Risks</h3>
          <ul className="changes" data-testid="ai-risks">
            {answer.risks.map((r, i) => <li key={i} className="wrap-text">{r}</li>)}
          </ul>
        </>
      ) : null}
    </>
  );
}
