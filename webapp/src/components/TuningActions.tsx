// What the Tuning page proposes or switches: the config rules' suggestions (each turned into a proposal),
// the cooldowns and the auto-apply switch, and named snapshots of every setting (a restore is a proposal).
import { useState, type FormEvent } from 'react';
import { call, http, type Schemas } from '../api/client';
import { formatTime } from '../lib/format';
import { useAction } from '../lib/hooks';
import { changeText } from '../lib/tuning';
import { Countdown, TierBadge } from './ApprovalQueue';
import { ConfirmButton } from './Confirm';
import { ErrorNote } from './ui';

type Suggestion = Schemas['SuggestionOut'];
type Created = Schemas['ProposalCreatedOut'];
type Cooldown = Schemas['CooldownOut'];
type Snapshot = Schemas['SnapshotOut'];

export function Suggestions({ suggestions, labels, pending, onCreated }: {
  suggestions: Suggestion[];
  labels: Record<string, string>;
  /** parameter → the proposal awaiting approval */
  pending: Record<string, string>;
  onCreated: (created: Created) => void;
}) {
  const { busy, error, run } = useAction();
  const propose = (parameter: string) => run(async () => {
    onCreated(await call(() => http.POST('/api/tuning/proposals/from-suggestion', { body: { parameter } })));
  });
  return (
    <>
      {suggestions.length === 0 ? <p className="muted" data-testid="no-suggestions">No suggestions: no rule fires on this account's results.</p> : (
        <ul className="list" data-testid="tuning-suggestions">
          {suggestions.map((s) => {
            const waiting = s.parameter in pending;
            return (
              <li key={`${s.rule}-${s.parameter}`} className="signal" data-testid="tuning-suggestion" data-parameter={s.parameter}>
                <header>
                  <TierBadge tier={s.tier} />
                  <strong>{changeText({ path: s.parameter, current: s.current, proposed: s.proposed }, labels)}</strong>
                  <span className="muted">{s.rule}</span>
                </header>
                <p className="wrap-text">{s.reason}</p>
                <div className="button-row">
                  <button className="primary" disabled={busy || waiting} onClick={() => void propose(s.parameter)}
                    aria-label={`Propose ${labels[s.parameter] ?? s.parameter}`}>
                    Propose
                  </button>
                  {waiting ? <span className="muted">A proposal for it awaits approval.</span> : null}
                  {s.tier === 'NONE' || s.tier === 'GREEN' ? <span className="muted">Applies at once.</span> : null}
                </div>
              </li>
            );
          })}
        </ul>
      )}
      <ErrorNote message={error} />
    </>
  );
}

export function Cooldowns({ cooldowns, autoApply, offset, onChanged }: {
  cooldowns: Cooldown[];
  autoApply: boolean;
  offset: number;
  onChanged: () => void;
}) {
  const { busy, error, run } = useAction();
  const toggle = (enabled: boolean) => run(async () => {
    await call(() => http.PUT('/api/tuning/auto-apply', { body: { enabled } }));
    onChanged();
  });
  return (
    <>
      <label className="check">
        <input type="checkbox" checked={autoApply} disabled={busy} onChange={(e) => void toggle(e.target.checked)} />
        Apply GREEN suggestions of the config rules automatically
      </label>
      <ErrorNote message={error} />
      <h3>Cooldowns</h3>
      {cooldowns.length === 0 ? <p className="muted" data-testid="no-cooldowns">No parameter is cooling down.</p> : (
        <div className="table-wrap">
          <table data-testid="tuning-cooldowns">
            <thead><tr><th>Parameter</th><th>Until</th><th>Left</th></tr></thead>
            <tbody>
              {cooldowns.map((c) => (
                <tr key={c.path} data-path={c.path}>
                  <td>{c.label}</td><td>{formatTime(c.until_ms)}</td><td><Countdown until={c.until_ms} offset={offset} /></td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </>
  );
}

export function Snapshots({ snapshots, onTaken, onCreated }: {
  snapshots: Snapshot[];
  onTaken: () => void;
  onCreated: (created: Created) => void;
}) {
  const [name, setName] = useState('');
  const { busy, error, run } = useAction();
  const take = (e: FormEvent) => {
    e.preventDefault();
    void run(async () => {
      await call(() => http.POST('/api/tuning/snapshots', { body: { name: name.trim() } }));
      setName('');
      onTaken();
    });
  };
  const restore = (id: string) => void run(async () => {
    onCreated(await call(() => http.POST('/api/tuning/snapshots/{snapshot_id}/restore', { params: { path: { snapshot_id: id } } })));
  });
  return (
    <>
      <form className="inline-form" onSubmit={take} aria-label="Take a snapshot">
        <label>Snapshot name<input required maxLength={80} value={name} onChange={(e) => setName(e.target.value)} /></label>
        <button type="submit" disabled={busy || !name.trim()}>Take snapshot</button>
      </form>
      <ErrorNote message={error} />
      {snapshots.length === 0 ? <p className="muted">No snapshots yet.</p> : (
        <div className="table-wrap">
          <table data-testid="tuning-snapshots">
            <thead><tr><th>Name</th><th>Taken</th><th>Settings version</th><th>Kind</th><th /></tr></thead>
            <tbody>
              {snapshots.map((s) => (
                <tr key={s.snapshot_id} data-snapshot={s.snapshot_id}>
                  <td>{s.name}</td><td>{formatTime(s.taken_at_ms)}</td><td>{s.version ?? '—'}</td>
                  <td>{s.automatic ? 'before a change' : 'by hand'}</td>
                  <td>
                    <ConfirmButton className="small" disabled={busy} label={`Restore ${s.name}`} onConfirm={() => restore(s.snapshot_id)}
                      confirm={() => ({
                        title: `Restore snapshot “${s.name}”?`,
                        body: <p>This proposes returning every setting to the snapshot's values. What lowers risk or is GREEN applies at once; a YELLOW or RED change waits in the approval queue.</p>,
                        action: `Restore ${s.name}`,
                      })}>
                      Restore
                    </ConfirmButton>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </>
  );
}
