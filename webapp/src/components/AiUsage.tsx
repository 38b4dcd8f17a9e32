// Grok's spend today (UTC) against the budgets, and its circuit breaker; and Grok's recent answers about
// a symbol (the same for every user: an identical question is answered once).
import type { Schemas } from '../api/client';
import { breakerText, usdText } from '../lib/ai';
import { formatTime } from '../lib/format';
import type { Loaded } from '../lib/hooks';
import { AiAnswerBody, Direction } from './AiAnswer';
import { Card, ErrorNote, Stat } from './ui';

type Usage = Schemas['AiUsageOut'];
type Signal = Schemas['AiSignalOut'];

export function AiUsageCard({ usage }: { usage: Loaded<Usage> }) {
  const u = usage.data;
  return (
    <Card title="Cost and breaker" actions={<button className="small" onClick={usage.reload}>Refresh</button>}>
      <ErrorNote message={usage.error} />
      {u ? (
        <>
          {!u.configured ? <p className="muted">No xAI key is set: every analysis uses the technical consensus.</p> : null}
          <div className="stats" data-testid="ai-usage" data-user-cost={u.user.cost_usd} data-global-cost={u.global.cost_usd}>
            <Stat label={`Your cost (${u.day})`} testId="ai-usage-user" value={u.user.cost_usd}>
              {usdText(u.user.cost_usd)} <span className="muted">of {usdText(u.user.budget_usd)}</span>
            </Stat>
            <Stat label="Everyone's cost" testId="ai-usage-global" value={u.global.cost_usd}>
              {usdText(u.global.cost_usd)} <span className="muted">of {usdText(u.global.budget_usd)}</span>
            </Stat>
            <Stat label="Your calls" value={u.user.calls}>
              {u.user.calls ?? 0}
              {u.user.invalid_answers ? <span className="muted"> ({u.user.invalid_answers} invalid)</span> : null}
            </Stat>
            <Stat label="Your tokens">
              {(u.user.prompt_tokens ?? 0) + (u.user.completion_tokens ?? 0)}
            </Stat>
          </div>
          <p className="wrap-text" data-testid="ai-breaker" data-state={u.breaker.state}>
            Breaker of {u.model}: <span className={`pill ${u.breaker.state === 'closed' ? 'running' : 'stopped'}`}>
              {u.breaker.state.replace('_', '-')}</span>{' '}
            <span className="muted">{breakerText(u.breaker)}</span>
          </p>
        </>
      ) : null}
    </Card>
  );
}

export function AiSignalsCard({ symbol, interval, signals }: { symbol: string; interval: string; signals: Loaded<Signal[]> }) {
  const items = signals.data ?? [];
  return (
    <Card title="Recent Grok answers" wide>
      <p className="muted">Grok's answers about {symbol} {interval}, newest first.</p>
      <ErrorNote message={signals.error} />
      {!signals.loading && items.length === 0 ? <p className="muted">No answer from Grok about {symbol} yet.</p> : null}
      <ul className="list" data-testid="ai-signals">
        {items.map((s) => (
          <li key={`${s.open_time}-${s.model}-${s.created_at}`} className="signal" data-testid="ai-signal"
            data-open-time={s.open_time}>
            <header>
              <strong>{s.symbol}</strong> <span className="muted">{s.interval} · {formatTime(s.open_time)} · {s.model}</span>
              <Direction direction={s.answer.direction} confidence={s.answer.confidence} />
              {s.technical.direction != null ? <span className="muted">technical: {String(s.technical.direction)}</span> : null}
            </header>
            <AiAnswerBody symbol={s.symbol} answer={s.answer} />
          </li>
        ))}
      </ul>
    </Card>
  );
}
