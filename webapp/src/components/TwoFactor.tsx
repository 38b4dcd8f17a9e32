// The Security section of the settings: two-factor authentication's state, setting it up (QR code or the
// secret typed by hand, then a first code), the recovery codes (shown once), turning it off, and the order
// size above which a real order needs a fresh code. The step-up dialog (StepUp.tsx) asks for a code where
// an action here needs one.
import { useCallback, useEffect, useState, type FormEvent } from 'react';
import { call, confirmWithCode, errorText, http, reasonText, type Schemas } from '../api/client';
import { formatNumber, formatTime } from '../lib/format';
import { useAction, useInterval, useLoad } from '../lib/hooks';
import { codeProblem, groupedSecret, normaliseCode, parseServerTime, stepUpText } from '../lib/twoFactor';
import { ConfirmButton } from './Confirm';
import { RecoveryCodes } from './RecoveryCodes';
import { SECURITY_ID, useTwoFactorEvents } from './StepUp';
import { Card, ErrorNote } from './ui';

type Status = Schemas['TwoFactorStatusOut'];
type Setup = Schemas['TwoFactorSetupOut'];

export function TwoFactorCard() {
  const status = useLoad(() => call(() => http.GET('/api/auth/2fa')));
  const { steppedUpUntil, dismissEnrolNotice } = useTwoFactorEvents();
  const [codes, setCodes] = useState<string[] | null>(null);
  const [shown, setShown] = useState<Status | null>(null);
  const current = shown ?? status.data;

  // A step-up anywhere (the dialog) changes what this card says: read it again.
  const { reload: reloadStatus } = status;
  const reload = useCallback(() => {
    setShown(null);
    reloadStatus();
  }, [reloadStatus]);
  useEffect(() => {
    if (steppedUpUntil) reload();
  }, [steppedUpUntil, reload]);
  useEffect(() => {
    if (location.hash === `#${SECURITY_ID}`) document.getElementById(SECURITY_ID)?.scrollIntoView({ block: 'start' });
  }, []);

  return (
    <Card title="Two-factor authentication" id={SECURITY_ID}>
      {!current ? (
        status.error ? <ErrorNote message={status.error} /> : <p className="muted">Loading…</p>
      ) : (
        <div className="form" data-testid="two-factor" data-enabled={String(current.enabled)}>
          {codes ? <RecoveryCodes codes={codes} onDone={() => setCodes(null)} /> : null}
          {current.enabled ? (
            <Enabled status={current} onCodes={setCodes} onChanged={reload} onStatus={setShown} />
          ) : (
            <>
              <p>Two-factor authentication is <strong>off</strong>. With it on, logging in and actions on money and
                access (exchange keys, RED tuning approvals) take a code from an authenticator app on your phone.</p>
              {current.required ? (
                <p className="error">An administrator requires two-factor authentication for your account: set it up
                  to use the dashboard.</p>
              ) : null}
              <SetUp onEnabled={(fresh) => {
                setCodes(fresh);
                dismissEnrolNotice();
                reload();
              }} />
            </>
          )}
        </div>
      )}
    </Card>
  );
}

/** Setting up: a new secret (QR code, or typed by hand), then the app's first code turns it on. */
function SetUp({ onEnabled }: { onEnabled: (codes: string[]) => void }) {
  const [setup, setSetup] = useState<Setup | null>(null);
  const [code, setCode] = useState('');
  const starting = useAction();
  const enabling = useAction(reasonText);
  const error = enabling.error ?? starting.error;
  const busy = starting.busy || enabling.busy;

  const start = () => starting.run(async () => {
    setSetup(await call(() => http.POST('/api/auth/2fa/setup')));
  });

  const enable = async (e: FormEvent) => {
    e.preventDefault();
    const problem = codeProblem(code);
    if (problem) return enabling.setError(problem);
    await enabling.run(async () => {
      const done = await call(() => http.POST('/api/auth/2fa/enable', { body: { code: normaliseCode(code) } }));
      setSetup(null);
      setCode('');
      onEnabled(done.recovery_codes);
    });
  };

  if (!setup) {
    return (
      <>
        <ErrorNote message={error} />
        <div className="button-row">
          <button className="primary" disabled={busy} onClick={() => void start()}>Set up two-factor authentication</button>
        </div>
      </>
    );
  }
  return (
    <form className="form two-factor-setup" onSubmit={enable} noValidate aria-label="Set up two-factor authentication">
      <ol className="steps">
        <li>
          Scan this QR code with an authenticator app (Google Authenticator, Aegis, 1Password, …):
          <img className="qr" src={setup.qr_svg} alt="QR code for your authenticator app" width={200} height={200} />
        </li>
        <li>
          Or enter this key in the app by hand (time-based, 6 digits, 30 seconds):
          <code className="secret" data-testid="totp-secret">{groupedSecret(setup.secret)}</code>
          <a href={setup.provisioning_uri}>Open in an authenticator app on this device</a>
        </li>
        <li>
          <label>
            Then enter the 6-digit code the app shows
            <input autoComplete="one-time-code" inputMode="numeric" spellCheck={false} maxLength={7} value={code}
              aria-invalid={error ? true : undefined} onChange={(e) => setCode(e.target.value)} />
          </label>
        </li>
      </ol>
      <ErrorNote message={error} />
      <div className="button-row">
        <button type="submit" className="primary" disabled={busy}>Turn on two-factor authentication</button>
        <button type="button" onClick={() => setSetup(null)}>Cancel</button>
      </div>
    </form>
  );
}

function Enabled({ status, onCodes, onChanged, onStatus }: {
  status: Status;
  onCodes: (codes: string[]) => void;
  onChanged: () => void;
  onStatus: (status: Status) => void;
}) {
  const { steppedUpUntil } = useTwoFactorEvents();
  const [now, setNow] = useState(Date.now());
  useInterval(() => setNow(Date.now()), 15_000);
  const { busy, error, run } = useAction();
  const confirmed = stepUpText(latest(status.step_up_until, steppedUpUntil), now);

  const regenerate = () => run(async () => {
    onCodes((await call(() => http.POST('/api/auth/2fa/recovery-codes'))).recovery_codes);
    onChanged();
  });
  const disable = () => run(async () => {
    await call(() => http.POST('/api/auth/2fa/disable'));
    onChanged();
  });

  return (
    <>
      <div className="stats">
        <div className="stat">
          <div className="stat-label">Status</div>
          <div className="stat-value" data-testid="two-factor-status">
            On{status.enabled_at ? <span className="muted"> since {formatTime(parseServerTime(status.enabled_at))}</span> : null}
          </div>
        </div>
        <div className="stat">
          <div className="stat-label">Recovery codes left</div>
          <div className="stat-value" data-testid="recovery-codes-left">{status.recovery_codes_left}</div>
        </div>
        <div className="stat">
          <div className="stat-label">This session</div>
          <div className="stat-value" data-testid="step-up-state">{confirmed ?? 'Not confirmed: protected actions ask for a code'}</div>
        </div>
      </div>
      {status.recovery_codes_left <= 3 ? (
        <p className="error">Only {status.recovery_codes_left} recovery codes left: make new ones.</p>
      ) : null}
      <div className="button-row">
        <button disabled={busy} onClick={() => void confirmWithCode('Confirm now, and the next protected actions of the '
          + 'coming minutes will not ask again.')}>
          Confirm with a code now
        </button>
        <ConfirmButton disabled={busy} onConfirm={() => void regenerate()} confirm={() => ({
          title: 'Make new recovery codes?',
          body: <p>Ten new codes replace your current ones, which stop working at once.</p>,
          action: 'Make new codes',
        })}>
          Regenerate recovery codes
        </ConfirmButton>
        <ConfirmButton className="danger" disabled={busy || status.required} onConfirm={() => void disable()} confirm={() => ({
          title: 'Turn two-factor authentication off?',
          body: <p>Logging in will take only your password, and exchange keys and RED approvals will first ask you
            to set it up again.</p>,
          action: 'Turn it off',
        })}>
          Disable two-factor authentication
        </ConfirmButton>
      </div>
      {status.required ? <p className="muted">An administrator requires two-factor authentication: it stays on.</p> : null}
      <ErrorNote message={error} />
      <NotionalForm value={status.step_up_notional} onSaved={onStatus} />
    </>
  );
}

function latest(a: string | null | undefined, b: string | null | undefined): string | null {
  if (!a || !b) return a || b || null;
  return (parseServerTime(a) ?? 0) >= (parseServerTime(b) ?? 0) ? a : b;
}

/** The notional above which confirming a real order needs a fresh code. */
function NotionalForm({ value, onSaved }: { value: number; onSaved: (status: Status) => void }) {
  const [text, setText] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [saved, setSaved] = useState(false);
  const shown = text ?? String(value);

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    setSaved(false);
    const notional = Number(shown);
    if (shown.trim() === '' || !Number.isFinite(notional) || notional < 0) {
      setError('Enter an amount of 0 or more (0: every real order asks for a code).');
      return;
    }
    setError(null);
    try {
      onSaved(await call(() => http.PUT('/api/auth/2fa/step-up-notional', { body: { step_up_notional: notional } })));
      setText(null);
      setSaved(true);
    } catch (err) {
      setError(errorText(err));
    }
  };

  return (
    <form className="inline-form" onSubmit={submit} noValidate aria-label="Step-up threshold">
      <label>
        Ask for a code for real orders above (notional, quote currency)
        <input className="notional" type="number" min={0} step="any" value={shown} aria-invalid={error ? true : undefined}
          aria-describedby="step-up-notional-now" onChange={(e) => {
            setSaved(false);
            setText(e.target.value);
          }} />
      </label>
      <button type="submit">Save threshold</button>
      <span id="step-up-notional-now" className="muted">Now {formatNumber(value)}.</span>
      {saved ? <span className="ok" role="status">Saved.</span> : null}
      <ErrorNote message={error} />
    </form>
  );
}
