// The approval queue: each proposal awaiting its owner, with what it changes, why, who proposed it and how
// long it has left. YELLOW approves with the dashboard's one-time token after a confirmation; RED only once
// the exact approval text is typed. Tokens stay in memory (the page's), never in storage or a log.
import { useEffect, useState } from 'react';
import { ApiError, call, errorText, http, type Schemas } from '../api/client';
import { approvalTextMatches, changeText, countdownText, outcomeText } from '../lib/tuning';
import { useInterval } from '../lib/hooks';
import { ConfirmButton } from './Confirm';
import { ErrorNote } from './ui';

export type Proposal = Schemas['ProposalOut'];

/** Approval tokens by proposal number: shown once by the API, kept only here. */
export type TokenStore = Map<number, string>;

export function TierBadge({ tier }: { tier: string }) {
  return <span className={`pill tier-${tier.toLowerCase()}`} data-testid="tier">{tier}</span>;
}

/** Time left until ``until`` (server time), ticking every second. */
export function Countdown({ until, offset }: { until: number | null | undefined; offset: number }) {
  const [now, setNow] = useState(() => Date.now() + offset);
  useInterval(() => setNow(Date.now() + offset), 1000);
  useEffect(() => setNow(Date.now() + offset), [offset]);
  return <span className="countdown" data-until={until ?? ''}>{countdownText(until, now)}</span>;
}

export function ChangeList({ changes, labels }: { changes: { path: string; label?: string; current: unknown; proposed: unknown }[]; labels?: Record<string, string> }) {
  return (
    <ul className="changes">
      {changes.map((c) => <li key={c.path} data-path={c.path}>{changeText(c, labels)}</li>)}
    </ul>
  );
}

/** Approve with the token held for this proposal, or a fresh one (after a reload, or one an agent made).
 * A held token another tab replaced is refused: then once more with a fresh one. */
async function approveWithToken(number: number, tokens: TokenStore): Promise<Proposal> {
  const fresh = async () => (await call(() => http.POST('/api/tuning/proposals/{number}/token', { params: { path: { number } } }))).approval_token;
  const held = tokens.get(number);
  const send = (token: string) => call(() => http.POST('/api/tuning/proposals/{number}/approve', { params: { path: { number } }, body: { token } }));
  tokens.delete(number); // one use either way
  if (held) {
    try {
      return await send(held);
    } catch (err) {
      if (!(err instanceof ApiError && err.problem.status === 422 && err.problem.field === 'token')) throw err;
    }
  }
  const token = await fresh();
  if (!token) throw new Error(`no approval token was issued for proposal #${number}`);
  return send(token);
}

function ProposalCard({ p, offset, tokens, onDone }: { p: Proposal; offset: number; tokens: TokenStore; onDone: (note: string | null) => void }) {
  const [typed, setTyped] = useState('');
  const [reason, setReason] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const red = p.tier === 'RED';

  const act = async (run: () => Promise<Proposal>) => {
    setBusy(true);
    setError(null);
    try {
      onDone(outcomeText(await run()));
    } catch (err) {
      setError(errorText(err));
      onDone(null);
    } finally {
      setBusy(false);
    }
  };
  const approve = () => void act(() => (red
    ? call(() => http.POST('/api/tuning/proposals/{number}/approve-text', { params: { path: { number: p.number } }, body: { text: typed } }))
    : approveWithToken(p.number, tokens)));
  const reject = () => void act(() => call(() => http.POST('/api/tuning/proposals/{number}/reject', { params: { path: { number: p.number } }, body: { reason: reason.trim() } })));

  return (
    <li className="signal proposal" data-testid={`proposal-${p.number}`} data-tier={p.tier} data-status={p.status}>
      <header>
        <strong>#{p.number}</strong> <TierBadge tier={p.tier} />
        <span className="muted">by {p.proposer.kind} {p.proposer.name} via {p.proposer.channel}</span>
        <span className="muted">expires in <Countdown until={p.expires_at_ms} offset={offset} /></span>
      </header>
      <ChangeList changes={p.changes} />
      <p className="wrap-text"><span className="muted">Reason:</span> {p.reason}</p>
      {p.expected_effect ? <p className="wrap-text"><span className="muted">Expected effect:</span> {p.expected_effect}</p> : null}
      {red ? (
        <label className="approval-text">
          Type exactly “{p.approval_text}” to approve
          <input value={typed} onChange={(e) => setTyped(e.target.value)} autoComplete="off" spellCheck={false}
            aria-invalid={typed !== '' && !approvalTextMatches(typed, p.approval_text)} />
        </label>
      ) : null}
      <div className="button-row">
        {red ? (
          <button className="danger" disabled={busy || !approvalTextMatches(typed, p.approval_text)} onClick={approve}>
            Approve #{p.number}
          </button>
        ) : (
          <ConfirmButton className="primary" disabled={busy} onConfirm={approve} confirm={() => ({
            title: `Approve proposal #${p.number}?`,
            body: (
              <>
                <p>The session's settings change at once:</p>
                <ChangeList changes={p.changes} />
                <p>Each parameter then rests for its cooldown before another change that raises risk.</p>
              </>
            ),
            action: `Approve #${p.number}`,
          })}>
            Approve #{p.number}
          </ConfirmButton>
        )}
        <input className="reject-reason" aria-label={`Reason to reject #${p.number} (optional)`} placeholder="Reason (optional)"
          value={reason} onChange={(e) => setReason(e.target.value)} maxLength={500} />
        <button disabled={busy} onClick={reject}>Reject #{p.number}</button>
      </div>
      <ErrorNote message={error} />
    </li>
  );
}

export function ApprovalQueue({ awaiting, offset, tokens, onDone }: {
  awaiting: Proposal[];
  offset: number;
  tokens: TokenStore;
  /** After an approval or rejection: what came of it (null after an error), and a reload. */
  onDone: (note: string | null) => void;
}) {
  if (!awaiting.length) return <p className="muted" data-testid="queue-empty">Nothing awaits your approval.</p>;
  return (
    <ul className="list" data-testid="approval-queue">
      {awaiting.map((p) => <ProposalCard key={p.proposal_id} p={p} offset={offset} tokens={tokens} onDone={onDone} />)}
    </ul>
  );
}
