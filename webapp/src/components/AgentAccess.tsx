// Agent access (MCP): every agent token and OAuth app grant of the account, each revocable at once, and
// minting a new agent token (label, tier, lifetime). Minting needs a recent two-factor code (api/client.ts
// asks for one); the token is in the answer once — shown here with a copy button and the MCP URL, and gone
// when the person says they stored it (the server keeps only its hash).
import { useState, type FormEvent } from 'react';
import { ApiError, call, errorText, http, type Schemas } from '../api/client';
import {
  TIER_INFO, TIERS, clientConfig, daysText, defaultExpiry, expiryChoices, grantState, kindText, type Grant, type Tier,
} from '../lib/agentAccess';
import { formatTime } from '../lib/format';
import { useAction, useLoad } from '../lib/hooks';
import { parseServerTime } from '../lib/twoFactor';
import { ConfirmButton } from './Confirm';
import { Card, ErrorNote } from './ui';

type Minted = Schemas['MintedOut'];

// The default longest lifetime (DURABOT_AGENT_TOKEN_MAX_DAYS); a server set lower refuses more with its reason.
const MAX_DAYS = 90;

function timeText(iso: string | null | undefined): string {
  return formatTime(parseServerTime(iso));
}

export function AgentAccessCard() {
  const grants = useLoad(() => call(() => http.GET('/api/agent-tokens')));
  const { busy, error, run } = useAction();
  const now = Date.now();

  const revoke = (grant: Grant) => run(async () => {
    await call(() => http.DELETE('/api/agent-tokens/{grant_id}', { params: { path: { grant_id: grant.grant_id } } }));
    grants.reload();
  });

  return (
    <Card title="Agent access (MCP)" wide>
      <p className="muted">
        AI agents reach Durabot through its MCP server, each with a grant of yours: an agent token made here, or an
        app you approved on its consent page. A grant reaches tools up to its tier; revoking it stops it at once.
      </p>
      {grants.data === undefined ? (
        grants.error ? <ErrorNote message={grants.error} /> : <p className="muted">Loading…</p>
      ) : grants.data.length === 0 ? (
        <p className="muted" data-testid="no-agent-grants">No agent has access.</p>
      ) : (
        <div className="table-wrap">
          <table data-testid="agent-grants">
            <thead>
              <tr><th>Label</th><th>Kind</th><th>Tier</th><th>Created</th><th>Expires</th><th>Last used</th><th>State</th><th /></tr>
            </thead>
            <tbody>
              {grants.data.map((grant) => {
                const state = grantState(grant, now);
                return (
                  <tr key={grant.grant_id} data-grant-id={grant.grant_id} data-state={state}>
                    <td className="wrap">{grant.label}</td>
                    <td>{kindText(grant.kind)}</td>
                    <td>{TIER_INFO[grant.tier].title}</td>
                    <td>{timeText(grant.created_at)}</td>
                    <td>{timeText(grant.expires_at)}</td>
                    <td>{grant.last_used_at ? timeText(grant.last_used_at) : <span className="muted">never</span>}</td>
                    <td>{state === 'active' ? 'Active' : state === 'revoked' ? `Revoked ${timeText(grant.revoked_at)}` : 'Expired'}</td>
                    <td>
                      {state === 'active' ? (
                        <ConfirmButton className="small danger" disabled={busy} label={`Revoke ${grant.label}`}
                          onConfirm={() => void revoke(grant)} confirm={() => ({
                            title: `Revoke “${grant.label}”?`,
                            body: <p>The agent's token stops working from its next call. Nothing it did is undone.</p>,
                            action: `Revoke ${grant.label}`,
                          })}>
                          Revoke
                        </ConfirmButton>
                      ) : null}
                    </td>
                  </tr>
                );
              })}
            </tbody>
          </table>
        </div>
      )}
      <ErrorNote message={error} />
      <MintForm onMinted={grants.reload} />
    </Card>
  );
}

function mintError(err: unknown): string {
  if (!(err instanceof ApiError)) return errorText(err);
  const { field, message } = err.problem;
  const names: Record<string, string> = { label: 'Label', tier: 'Tier', expires_in_days: 'Lifetime' };
  return `Not created: ${field ? `${names[field] ?? field}: ` : ''}${message}`;
}

function MintForm({ onMinted }: { onMinted: () => void }) {
  const [label, setLabel] = useState('');
  const [tier, setTier] = useState<Tier>('authenticated');
  const [days, setDays] = useState(defaultExpiry(MAX_DAYS));
  const [minted, setMinted] = useState<Minted | null>(null);
  const { busy, error, run } = useAction(mintError);

  const submit = (e: FormEvent) => {
    e.preventDefault();
    void run(async () => {
      const answer = await call(() => http.POST('/api/agent-tokens', {
        body: { label: label.trim(), tier, expires_in_days: days },
      }));
      setMinted(answer);
      setLabel('');
      onMinted();
    });
  };

  if (minted) return <MintedToken minted={minted} onDone={() => setMinted(null)} />;
  return (
    <form className="form" onSubmit={submit} aria-label="Create an agent token" data-testid="mint-agent-token">
      <h3>Create an agent token</h3>
      <div className="fields">
        <label>
          Label
          <input required maxLength={80} placeholder="Claude Desktop on my laptop" value={label}
            onChange={(e) => setLabel(e.target.value)} />
        </label>
        <label>
          Highest tier
          <select value={tier} onChange={(e) => setTier(e.target.value as Tier)}>
            {TIERS.map((t) => <option key={t} value={t}>{TIER_INFO[t].title}</option>)}
          </select>
        </label>
        <label>
          Lifetime
          <select value={days} onChange={(e) => setDays(Number(e.target.value))}>
            {expiryChoices(MAX_DAYS).map((d) => <option key={d} value={d}>{daysText(d)}</option>)}
          </select>
        </label>
      </div>
      <p className="muted" data-testid="tier-reach">{TIER_INFO[tier].title}: {TIER_INFO[tier].reach}.</p>
      <ErrorNote message={error} />
      <div className="button-row">
        <button type="submit" className="primary" disabled={busy}>Create token</button>
      </div>
    </form>
  );
}

function MintedToken({ minted, onDone }: { minted: Minted; onDone: () => void }) {
  const [copied, setCopied] = useState<string | null>(null);
  const copy = async (text: string, what: string) => {
    try {
      await navigator.clipboard.writeText(text);
      setCopied(`${what} copied.`);
    } catch {
      // The clipboard needs a secure context (https or localhost): elsewhere the token is selectable text.
      setCopied('This browser did not allow copying: select the token and copy it.');
    }
  };
  return (
    <div className="recovery" data-testid="minted-agent-token">
      <h3>Token for “{minted.grant.label}”</h3>
      <p role="status">
        <strong>Copy this token now: it is shown only this once.</strong> Give it to the agent as its bearer token
        for the MCP server; it reaches {TIER_INFO[minted.grant.tier].title.toLowerCase()} tools until {timeText(minted.grant.expires_at)}.
      </p>
      <p>Token: <code className="secret" data-testid="agent-token">{minted.access_token}</code></p>
      <p>MCP server: <code data-testid="mcp-url">{minted.mcp_url}</code></p>
      <div className="button-row">
        <button onClick={() => void copy(minted.access_token, 'Token')}>Copy token</button>
        <button onClick={() => void copy(clientConfig(minted.mcp_url, minted.access_token), 'Client configuration')}>
          Copy client configuration
        </button>
        <button className="primary" onClick={onDone}>I have stored it</button>
      </div>
      {copied ? <p className="muted" aria-live="polite">{copied}</p> : null}
    </div>
  );
}
