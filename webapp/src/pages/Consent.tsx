// The OAuth consent page (/oauth/consent?request=…), where /oauth/authorize sends the browser: which app asks,
// where its code would go, and the tiers it asked for. The logged-in person picks the highest tier (at most
// what was asked) and the lifetime, and approves — after a fresh two-factor code, asked by the step-up dialog
// (api/client.ts) — or denies; either way the browser goes back to the app with the answer.
import { useState } from 'react';
import { call, http } from '../api/client';
import { Card, ErrorNote } from '../components/ui';
import {
  TIER_INFO, consentRequestId, daysText, defaultExpiry, defaultTier, expiryChoices, type Tier,
} from '../lib/agentAccess';
import { useAction, useLoad } from '../lib/hooks';

export function Consent() {
  const [requestId] = useState(() => consentRequestId(location.search));
  if (!requestId) {
    return <Card title="Authorize an app"><ErrorNote message="This link names no authorization request: start again from the app." /></Card>;
  }
  return <ConsentForm requestId={requestId} />;
}

function ConsentForm({ requestId }: { requestId: string }) {
  const request = useLoad(() => call(() => http.GET('/api/oauth/consent/{request_id}', {
    params: { path: { request_id: requestId } },
  })));
  const [tier, setTier] = useState<Tier | null>(null);
  const [days, setDays] = useState<number | null>(null);
  const [leaving, setLeaving] = useState(false);
  const { busy, error, run } = useAction();

  const shown = request.data;
  if (!shown) {
    return (
      <Card title="Authorize an app">
        {request.error ? <ErrorNote message={request.error} /> : <p className="muted">Loading…</p>}
      </Card>
    );
  }
  const pickedTier = tier ?? defaultTier(shown.tiers);
  const pickedDays = days ?? defaultExpiry(shown.max_days);

  const answer = (decision: 'approve' | 'deny') => run(async () => {
    const body = decision === 'approve' ? { decision, tier: pickedTier, expires_in_days: pickedDays } : { decision };
    const done = await call(() => http.POST('/api/oauth/consent/{request_id}', {
      params: { path: { request_id: requestId } }, body,
    }));
    setLeaving(true);
    window.location.assign(done.redirect_to);
  });

  return (
    <Card title={`Authorize ${shown.client_name}`}>
      <div data-testid="consent" data-request-id={shown.request_id}>
        <p>
          <strong data-testid="consent-client">{shown.client_name}</strong> asks to use Durabot's MCP tools for you, up to
          the <strong>{TIER_INFO[shown.requested_tier].title.toLowerCase()}</strong> tier.
        </p>
        <p>
          Its authorization goes to <code data-testid="consent-redirect">{shown.redirect_host}</code>
          {shown.redirect_is_local ? ' (on this device).' : '.'}
        </p>
        {shown.redirect_is_local ? null : (
          <p className="error" role="note">Approve only if you started this from that app yourself: the app named above
            names itself, and whoever receives this authorization acts as you.</p>
        )}
        <form className="form" onSubmit={(e) => { e.preventDefault(); void answer('approve'); }} aria-label="Grant access">
          <fieldset className="checks" aria-describedby="consent-tier-help">
            <legend>Highest tier it may reach</legend>
            {shown.tiers.map((t) => (
              <label key={t}>
                <input type="radio" name="tier" value={t} checked={pickedTier === t} onChange={() => setTier(t)} />
                {' '}{TIER_INFO[t].title}
              </label>
            ))}
          </fieldset>
          <p className="muted" id="consent-tier-help" data-testid="tier-reach">{TIER_INFO[pickedTier].title}: {TIER_INFO[pickedTier].reach}.</p>
          <label>
            Access lasts
            <select value={pickedDays} onChange={(e) => setDays(Number(e.target.value))}>
              {expiryChoices(shown.max_days).map((d) => <option key={d} value={d}>{daysText(d)}</option>)}
            </select>
          </label>
          <p className="muted">You can revoke it at any time in Settings → Agent access. Approving asks for your
            authentication code.</p>
          <ErrorNote message={error} />
          {leaving ? <p className="muted" role="status">Returning to {shown.client_name}…</p> : null}
          <div className="button-row">
            <button type="button" disabled={busy || leaving} onClick={() => void answer('deny')}>Deny</button>
            <button type="submit" className="primary" disabled={busy || leaving}>Approve</button>
          </div>
        </form>
      </div>
    </Card>
  );
}
