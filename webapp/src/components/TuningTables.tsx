// The Tuning page's read-only tables: recent proposals and how they ended, the audit trail, and the bounds
// every tunable parameter moves within.
import type { Schemas } from '../api/client';
import { formatTime } from '../lib/format';
import { auditRow, largestChangeText, rangeText, spanText, valueText } from '../lib/tuning';
import { ChangeList, TierBadge, type Proposal } from './ApprovalQueue';

type HistoryEntry = Schemas['HistoryEntryOut'];
type Tunable = Schemas['TunableOut'];

const RISKIER: Record<Tunable['riskier'], string> = { up: 'raising it', down: 'lowering it', any: 'any change' };

export function RecentProposals({ proposals }: { proposals: Proposal[] }) {
  if (!proposals.length) return <p className="muted">No proposals yet.</p>;
  return (
    <div className="table-wrap">
      <table data-testid="recent-proposals">
        <thead><tr><th>#</th><th>Tier</th><th>Status</th><th>Changes</th><th>Proposed by</th><th>Decided by</th><th>Created</th></tr></thead>
        <tbody>
          {proposals.map((p) => (
            <tr key={p.proposal_id} data-testid={`recent-${p.number}`} data-status={p.status}>
              <td>{p.number}</td><td><TierBadge tier={p.tier} /></td>
              <td><span className={`pill status-${p.status.toLowerCase()}`}>{p.status}</span></td>
              <td className="wrap"><ChangeList changes={p.changes} />{p.failure ? <span className="muted">{p.failure}</span> : null}</td>
              <td>{p.proposer.kind} {p.proposer.name}</td><td>{p.decided_by ?? '—'}</td>
              <td>{formatTime(p.created_at_ms)}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

export function History({ entries, labels }: { entries: HistoryEntry[]; labels: Record<string, string> }) {
  if (!entries.length) return <p className="muted" data-testid="history-empty">Nothing tuned yet.</p>;
  return (
    <div className="table-wrap">
      <table data-testid="tuning-history">
        <thead><tr><th>Time (UTC)</th><th>Action</th><th>Tier</th><th>Parameters (old → new)</th><th>Who</th><th>Proposed by</th><th>Reason</th></tr></thead>
        <tbody>
          {entries.map((e, i) => {
            const row = auditRow(e);
            return (
              <tr key={`${String(e.details.proposal_id)}-${e.action}-${i}`} data-action={row.action}
                data-proposal={String(e.details.proposal_id ?? '')}>
                <td>{formatTime(row.at)}</td><td>{row.action}</td><td>{row.tier ? <TierBadge tier={row.tier} /> : null}</td>
                <td className="wrap"><ChangeList changes={row.changes} labels={labels} /></td>
                <td>{row.who}</td><td>{row.proposer}</td><td className="wrap">{row.reason}</td>
              </tr>
            );
          })}
        </tbody>
      </table>
    </div>
  );
}

export function Bounds({ parameters }: { parameters: Tunable[] }) {
  return (
    <div className="table-wrap">
      <table data-testid="tuning-bounds">
        <thead><tr><th>Parameter</th><th>Tier</th><th>Range</th><th>Step</th><th>Largest change</th><th>Cooldown</th><th>Raises risk</th></tr></thead>
        <tbody>
          {parameters.map((t) => (
            <tr key={t.path} data-path={t.path}>
              <td>{t.label} <code className="muted">{t.path}</code></td><td><TierBadge tier={t.tier} /></td>
              <td>{rangeText(t.minimum, t.maximum, t.unit)}</td><td>{valueText(t.step)}</td><td>{largestChangeText(t.max_change, t.max_factor)}</td>
              <td>{spanText(t.cooldown_s)}</td><td>{RISKIER[t.riskier]}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}
