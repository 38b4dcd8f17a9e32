// The step-up protocol's side in the dashboard, for every page at once: the dialog that asks for a fresh
// two-factor code when an action answers 403 `step_up: "code"` (api/client.ts retries the action after it),
// and the notice with a way to the Security section when one answers `step_up: "enrol"`. When an admin
// requires two-factor authentication of a user who has not set it up, the dashboard takes them there.
import { createContext, useContext, useEffect, useId, useRef, useState, type FormEvent, type ReactNode } from 'react';
import { call, http, onEnrolNeeded, reasonText, setStepUpHandler } from '../api/client';
import { navigate } from '../lib/router';
import { asSentence, codeProblem, normaliseCode } from '../lib/twoFactor';
import { ErrorNote } from './ui';

export const SECURITY_ID = 'security';
export const SECURITY_HREF = `/settings#${SECURITY_ID}`;

interface TwoFactorEvents {
  /** Until when this login session is confirmed, as the latest step-up answered (ISO), else null. */
  steppedUpUntil: string | null;
  /** The server's message of the latest refusal that asked to set up two-factor authentication. */
  enrolNotice: string | null;
  dismissEnrolNotice: () => void;
}

const TwoFactorContext = createContext<TwoFactorEvents>({
  steppedUpUntil: null, enrolNotice: null, dismissEnrolNotice: () => undefined,
});

export function useTwoFactorEvents(): TwoFactorEvents {
  return useContext(TwoFactorContext);
}

/** Opens the Security section of the settings and scrolls to it once it is there. */
export function showSecurity(): void {
  navigate(SECURITY_HREF);
  let tries = 0;
  const look = () => {
    const section = document.getElementById(SECURITY_ID);
    if (section) section.scrollIntoView({ block: 'start' });
    else if (++tries < 50) setTimeout(look, 100);
  };
  look();
}

export function SecurityLink({ children }: { children: ReactNode }) {
  return (
    <a href={SECURITY_HREF} onClick={(e) => {
      if (e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
      e.preventDefault();
      showSecurity();
    }}>
      {children}
    </a>
  );
}

let checking: Promise<void> | null = null;

/** Takes the user to the Security section when an admin requires 2FA of them and it is not on yet. */
function checkPolicy(): Promise<void> {
  checking ??= call(() => http.GET('/api/auth/2fa'), { stepUp: false })
    .then((status) => {
      if (status.required && !status.enabled) showSecurity();
    }, () => undefined)
    .finally(() => (checking = null));
  return checking;
}

interface Asking {
  reason: string;
  resolve: (confirmed: boolean) => void;
}

export function StepUpProvider({ children }: { children: ReactNode }) {
  const [asking, setAsking] = useState<Asking | null>(null);
  const [steppedUpUntil, setSteppedUpUntil] = useState<string | null>(null);
  const [enrolNotice, setEnrolNotice] = useState<string | null>(null);
  const pending = useRef<Asking | null>(null);

  useEffect(() => {
    const stop = setStepUpHandler((reason) => new Promise<boolean>((resolve) => {
      pending.current = { reason, resolve };
      setAsking(pending.current);
    }));
    return () => {
      stop();
      // Logged out while asking: the waiting action fails rather than waits for ever.
      pending.current?.resolve(false);
      pending.current = null;
    };
  }, []);
  useEffect(() => onEnrolNeeded((reason) => {
    setEnrolNotice(reason);
    void checkPolicy();
  }), []);
  useEffect(() => void checkPolicy(), []);

  const finish = (until: string | null) => {
    if (until) setSteppedUpUntil(until);
    pending.current?.resolve(until !== null);
    pending.current = null;
    setAsking(null);
  };

  return (
    <TwoFactorContext.Provider value={{ steppedUpUntil, enrolNotice, dismissEnrolNotice: () => setEnrolNotice(null) }}>
      {children}
      {asking ? <StepUpDialog reason={asking.reason} onDone={finish} /> : null}
    </TwoFactorContext.Provider>
  );
}

/** The banner under the header while the latest refusal asks the user to set up two-factor authentication. */
export function EnrolNotice() {
  const { enrolNotice, dismissEnrolNotice } = useTwoFactorEvents();
  if (!enrolNotice) return null;
  return (
    <div className="banner" role="alert" data-testid="enrol-notice">
      <span>{asSentence(enrolNotice)}</span>
      <SecurityLink>Set up two-factor authentication</SecurityLink>
      <button className="link" onClick={dismissEnrolNotice}>Dismiss</button>
    </div>
  );
}

/** Asks for a code until the server accepts one (``onDone(until)``) or the person cancels (``onDone(null)``). */
function StepUpDialog({ reason, onDone }: { reason: string; onDone: (until: string | null) => void }) {
  const dialog = useRef<HTMLDialogElement>(null);
  const input = useRef<HTMLInputElement>(null);
  const id = useId();
  const [code, setCode] = useState('');
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  useEffect(() => {
    const el = dialog.current;
    if (!el) return;
    el.showModal();
    return () => el.close();
  }, []);

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    const problem = codeProblem(code);
    if (problem) {
      setError(problem);
      input.current?.focus();
      return;
    }
    setBusy(true);
    setError(null);
    try {
      const done = await call(() => http.POST('/api/auth/2fa/step-up', { body: { code: normaliseCode(code) } }), { stepUp: false });
      onDone(done.step_up_until);
    } catch (err) {
      setError(reasonText(err));
      input.current?.select();
    } finally {
      setBusy(false);
    }
  };

  return (
    <dialog ref={dialog} className="confirm" aria-labelledby={`${id}-title`} aria-describedby={`${id}-reason`}
      onCancel={(e) => {
        e.preventDefault();
        onDone(null);
      }}>
      <h2 id={`${id}-title`}>Confirm with your authentication code</h2>
      <form className="form" onSubmit={submit} noValidate>
        <div id={`${id}-reason`} className="confirm-body">
          <p>{asSentence(reason)}</p>
          <p className="muted">Enter the 6-digit code from your authenticator app, or one of your recovery codes.</p>
        </div>
        <label>
          Authentication code
          <input ref={input} autoFocus autoComplete="one-time-code" spellCheck={false} maxLength={32} value={code}
            aria-invalid={error ? true : undefined} aria-describedby={error ? `${id}-error` : undefined}
            onChange={(e) => setCode(e.target.value)} />
        </label>
        <div id={`${id}-error`}><ErrorNote message={error} /></div>
        <div className="confirm-actions">
          <button type="button" onClick={() => onDone(null)}>Cancel</button>
          <button type="submit" className="primary" disabled={busy}>Confirm</button>
        </div>
      </form>
    </dialog>
  );
}
