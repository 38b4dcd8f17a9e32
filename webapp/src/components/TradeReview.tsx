import { call, http, type Schemas } from '../api/client';
import { formatIndicators, formatNumber, formatPct } from '../lib/format';
import { useLoad } from '../lib/hooks';
import { Card, ErrorNote, Pnl } from './ui';

type Backing = Schemas['BackingOut'];

/** "2 h 5 min", "45 min", "3 d 4 h": a holding time at the resolution a trader cares about. */
export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms) || ms < 0) return '—';
  const minutes = Math.round(ms / 60_000);
  const days = Math.floor(minutes / 1440);
  const hours = Math.floor((minutes % 1440) / 60);
  const rest = minutes % 60;
  if (days) return `${days} d ${hours} h`;
  if (hours) return rest ? `${hours} h ${rest} min` : `${hours} h`;
  return `${rest} min`;
}

function BackingAt({ label, backing, testId }: { label: string; backing: Backing | null; testId: string }) {
  if (!backing) return <p className="muted" data-testid={testId}>{label}: by hand, no analysis.</p>;
  const indicators = formatIndicators(backing.indicators);
  return (
    <div data-testid={testId}>
      <h3>{label}</h3>
      <p>
        Consensus <span className={`pill ${backing.direction ?? 'neutral'}`}>{backing.direction ?? 'neutral'}</span>{' '}
        {backing.reason ?? ''}
      </p>
      <p>
        For: {backing.agreeing.join(', ') || 'none'} · against: {backing.opposing.join(', ') || 'none'} · neutral:{' '}
        {backing.neutral.join(', ') || 'none'}
      </p>
      {indicators ? <p className="muted" data-testid={`${testId}-indicators`}>{indicators}</p> : null}
    </div>
  );
}

export function TradeReview({ tradeId, onClose }: { tradeId: number; onClose: () => void }) {
  const loaded = useLoad(() => call(() => http.GET('/api/paper-trading/trade-analyses/{trade_id}', {
    params: { path: { trade_id: tradeId } },
  })));
  const review = loaded.data?.review;
  return (
    <Card title={`Trade ${tradeId} review`} actions={<button onClick={onClose}>Close review</button>}>
      <ErrorNote message={loaded.error} />
      {review ? (
        <div data-testid="trade-review">
          <p data-testid="trade-verdict">{review.verdict}</p>
          <dl className="metrics">
            <div><dt>net PnL</dt><dd><Pnl value={review.net_pnl} digits={6} /></dd></div>
            <div><dt>return on margin</dt><dd>{formatNumber(review.return_pct, 2)}%</dd></div>
            <div><dt>held</dt><dd>{formatDuration(review.duration_ms)}</dd></div>
            <div><dt>best (MFE)</dt><dd>{formatNumber(review.mfe_pct, 2)}%</dd></div>
            <div><dt>worst (MAE)</dt><dd>{formatNumber(review.mae_pct, 2)}%</dd></div>
            <div><dt>of the best kept</dt><dd>{formatPct(review.captured, 0)}</dd></div>
            <div><dt>fees</dt><dd>{formatNumber(review.fees, 6)}</dd></div>
          </dl>
          <BackingAt label="At entry" backing={review.entry} testId="review-entry" />
          <BackingAt label="At exit" backing={review.exit} testId="review-exit" />
        </div>
      ) : null}
    </Card>
  );
}
