// Tuning: the approval queue of proposed settings changes, the config rules' suggestions to propose, the
// cooldowns and the auto-apply switch, recent proposals, the audit trail, snapshots and the bounds of
// every tunable parameter. Everything reloads on each TuningUpdate of the live connection and after each
// action here.
import { useMemo, useRef, useState } from 'react';
import { call, http, type Schemas } from '../api/client';
import { ApprovalQueue, type TokenStore } from '../components/ApprovalQueue';
import { useLiveEvents } from '../components/live';
import { Cooldowns, Snapshots, Suggestions } from '../components/TuningActions';
import { Bounds, History, RecentProposals } from '../components/TuningTables';
import { Card, ErrorNote } from '../components/ui';
import { useLoad } from '../lib/hooks';
import { clockOffset, outcomeText } from '../lib/tuning';

const FINAL_EVENTS = new Set(['applied', 'rejected', 'expired', 'failed']);

export function Tuning() {
  const summary = useLoad(() => call(() => http.GET('/api/tuning')));
  const proposals = useLoad(() => call(() => http.GET('/api/tuning/proposals', { params: { query: { limit: 20 } } })));
  const history = useLoad(() => call(() => http.GET('/api/tuning/history', { params: { query: { limit: 100 } } })));
  const suggestions = useLoad(() => call(() => http.GET('/api/paper-trading/config-suggestions')));
  const snapshots = useLoad(() => call(() => http.GET('/api/tuning/snapshots')));
  const parameters = useLoad(() => call(() => http.GET('/api/tuning/parameters')));
  // The one-time approval tokens the API showed this page: in memory only, gone with the page.
  const tokens = useRef<TokenStore>(new Map()).current;
  const [note, setNote] = useState<string | null>(null);

  const reload = () => {
    summary.reload();
    proposals.reload();
    history.reload();
    suggestions.reload();
    snapshots.reload();
  };
  useLiveEvents(['TuningUpdate'], (e) => {
    const number = Number(e.data.number);
    if (FINAL_EVENTS.has(String(e.data.event))) tokens.delete(number);
    reload();
  });
  useLiveEvents(['TradeExecuted'], suggestions.reload);

  // Expiries and cooldowns are server times: count down on the server's clock.
  const offset = useMemo(() => clockOffset(summary.data?.now_ms, Date.now()), [summary.data]);
  const labels = useMemo(() => Object.fromEntries((parameters.data ?? []).map((t) => [t.path, t.label])), [parameters.data]);
  const created = (made: Schemas['ProposalCreatedOut']) => {
    if (made.approval_token) tokens.set(made.proposal.number, made.approval_token);
    setNote(outcomeText(made.proposal));
    reload();
  };
  const done = (text: string | null) => {
    setNote(text);
    reload();
  };

  const s = summary.data;
  return (
    <div className="grid">
      <Card title="Approval queue" wide>
        {note ? <p className="ok" role="status" data-testid="tuning-note">{note}</p> : null}
        <ErrorNote message={summary.error} />
        {s ? <ApprovalQueue awaiting={s.awaiting} offset={offset} tokens={tokens} onDone={done} /> : null}
      </Card>
      <Card title="Config suggestions">
        <p className="muted">The documented rules over this account's recent results. Proposing one lets its tier decide:
          what lowers risk or is GREEN applies at once, YELLOW and RED wait in the queue above.</p>
        {suggestions.error ? <ErrorNote message={suggestions.error} /> : suggestions.data ? (
          <Suggestions suggestions={suggestions.data} labels={labels} pending={s?.pending ?? {}} onCreated={created} />
        ) : null}
      </Card>
      <Card title="Cooldowns and auto-apply">
        {s ? <Cooldowns cooldowns={s.cooldowns} autoApply={s.auto_apply_green} offset={offset} onChanged={summary.reload} /> : null}
      </Card>
      <Card title="Recent proposals" wide>
        <ErrorNote message={proposals.error} />
        <RecentProposals proposals={proposals.data ?? []} />
      </Card>
      <Card title="History" wide>
        <ErrorNote message={history.error} />
        <History entries={history.data ?? []} labels={labels} />
      </Card>
      <Card title="Snapshots" wide>
        <ErrorNote message={snapshots.error} />
        <Snapshots snapshots={snapshots.data ?? []} onTaken={snapshots.reload} onCreated={created} />
      </Card>
      <Card title="Parameter bounds" wide>
        <p className="muted">What tuning may set, and how far one change may move it. A change the other way than the one
          that raises risk applies at once and never cools down.</p>
        <ErrorNote message={parameters.error} />
        <Bounds parameters={parameters.data ?? []} />
      </Card>
    </div>
  );
}
