// The real session on the Real trading page: whether it trades (RUNNING), trades exits only (HALTED: the
// session stopped its entries, with the reason), or waits (NEW, STOPPED); its positions with their
// exchange-side stop and take profit; its alerts and last reconciliation. Starting is a RED approval:
// "Request start" creates the proposal, and only typing its exact text (with a fresh two-factor step-up)
// starts it. Stop, stop entries and stop-and-flatten are always offered and act at once.
import { useState } from 'react';
import { call, http, type Schemas } from '../api/client';
import { formatPrice, formatTime } from '../lib/format';
import { useAction, useInterval, useLoad } from '../lib/hooks';
import { ConfirmButton } from './Confirm';
import { Card, ErrorNote, Stat } from './ui';

type Session = Schemas['RealSessionOut'];
type Proposal = Schemas['ProposalOut'];

const TRADING = new Set(['RUNNING', 'HALTED']);

function StartApproval({ proposal, onApproved }: { proposal: Proposal; onApproved: () => void }) {
  const [text, setText] = useState('');
  const action = useAction();
  const approve = () => void action.run(async () => {
    await call(() => http.POST('/api/tuning/proposals/{number}/approve-text', {
      params: { path: { number: proposal.number } }, body: { text },
    }));
    onApproved();
  });
  return (
    <form className="form" aria-label="Approve the start" onSubmit={(e) => { e.preventDefault(); approve(); }}>
      <p>
        Proposal #{proposal.number} (RED). To start trading real money, type exactly:{' '}
        <code data-testid="approval-text">{proposal.approval_text}</code>
      </p>
      <label>
        Approval text
        <input value={text} autoComplete="off" spellCheck={false} onChange={(e) => setText(e.target.value)} />
      </label>
      <ErrorNote message={action.error} />
      <button type="submit" className="danger" disabled={action.busy || text !== proposal.approval_text}>
        Approve and start
      </button>
    </form>
  );
}

function Report({ session }: { session: Session }) {
  const report = session.report;
  if (!report) return <p className="muted">Not reconciled yet.</p>;
  const differences = (report.differences as { kind: string; symbol: string | null; detail: string }[] | undefined) ?? [];
  return (
    <div data-testid="real-session-report">
      <p className={report.ok ? 'ok' : 'error'}>
        {report.ok ? 'In step with the exchange' : `${differences.length} difference(s) with the exchange`}
        {' '}({formatTime(report.checked_at_ms as number)})
      </p>
      {differences.length ? (
        <ul>{differences.map((d, i) => <li key={i}>{d.kind} {d.symbol ?? ''}: {d.detail}</li>)}</ul>
      ) : null}
    </div>
  );
}

export function RealSession() {
  const session = useLoad(() => call(() => http.GET('/api/real-trading/status')));
  useInterval(() => session.reload(), 5000);
  const action = useAction();
  const [proposal, setProposal] = useState<Proposal | null>(null);
  const s = session.data;
  const trading = s ? TRADING.has(s.status) : false;
  const run = (send: () => Promise<unknown>) => void action.run(async () => {
    await send();
    session.reload();
  });
  const requestStart = () => void action.run(async () => {
    const started = await call(() => http.POST('/api/real-trading/start', { body: { reason: '' } }));
    setProposal(started.proposal.proposal);
    session.reload();
  });
  const stop = (flatten: boolean) => run(() => call(() => http.POST('/api/real-trading/stop', { body: { flatten, reason: '' } })));
  const entries = (enabled: boolean) => run(() => call(() => http.POST('/api/real-trading/entries', { body: { enabled } })));

  return (
    <Card title="Real session" wide>
      <ErrorNote message={session.error ?? action.error} />
      {s ? (
        <>
          <div className="stats">
            <Stat label="Status" testId="real-session-status">{s.status}</Stat>
            <Stat label="Entries">{s.entries_enabled ? 'on' : 'off'}</Stat>
            <Stat label="Trades">{s.symbols.join(', ') || '—'} {s.interval}</Stat>
            <Stat label="Candles">{s.candles_processed}</Stat>
            <Stat label="Orders sent">{s.orders_sent}</Stat>
            <Stat label="Account stream">{s.stream_connections ? `${s.stream_connections} connection(s)` : 'not connected'}</Stat>
          </div>
          {s.status === 'HALTED' ? <p className="error" role="alert">Entries halted: {s.halted_reason}</p> : null}
          {s.positions.length ? (
            <table>
              <thead><tr><th>Symbol</th><th>Side</th><th>Quantity</th><th>Entry</th><th>Stop</th><th>Take profit</th></tr></thead>
              <tbody>
                {s.positions.map((p) => (
                  <tr key={p.symbol}>
                    <td>{p.symbol}</td><td>{p.side}</td><td>{p.quantity}</td><td>{formatPrice(p.entry_price)}</td>
                    <td>{p.stop_loss != null ? formatPrice(p.stop_loss) : '—'}</td>
                    <td>{p.take_profit != null ? formatPrice(p.take_profit) : '—'}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          ) : <p className="muted">No position held by the session.</p>}
          <Report session={s} />
          {s.alerts.length ? (
            <ul aria-label="Alerts">
              {s.alerts.slice(-5).reverse().map((a) => <li key={`${a.at_ms}-${a.kind}`}>{formatTime(a.at_ms)} {a.kind}: {a.message}</li>)}
            </ul>
          ) : null}
          <div className="actions">
            {trading ? (
              <>
                {s.entries_enabled
                  ? <button type="button" disabled={action.busy} onClick={() => entries(false)}>Stop entries</button>
                  : <button type="button" disabled={action.busy} onClick={() => entries(true)}>Resume entries</button>}
                <button type="button" disabled={action.busy} onClick={() => stop(false)}>Stop</button>
                <ConfirmButton className="danger" disabled={action.busy} onConfirm={() => stop(true)} confirm={() => ({
                  title: 'Stop and flatten?', action: 'Stop and flatten',
                  body: <p>Stops the session and closes every position of its symbols with reduce-only MARKET orders at once.</p>,
                })}>Stop and flatten</ConfirmButton>
                <button type="button" disabled={action.busy}
                  onClick={() => run(() => call(() => http.POST('/api/real-trading/reconcile')))}>Reconcile now</button>
              </>
            ) : (
              <button type="button" className="danger" disabled={action.busy} onClick={requestStart}>Request start</button>
            )}
          </div>
          {proposal && !trading ? <StartApproval proposal={proposal} onApproved={() => { setProposal(null); session.reload(); }} /> : null}
        </>
      ) : null}
    </Card>
  );
}
