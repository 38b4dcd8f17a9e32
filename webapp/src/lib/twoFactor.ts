// What two-factor authentication needs without the API: which refusals ask for a fresh code (the step-up
// protocol: 403 with `step_up` "code" or "enrol"), the shape of a typed code, and the texts of a step-up
// window and of stored recovery codes.

export type StepUpNeed = 'code' | 'enrol';

/** A login's answer when the account has 2FA on: no tokens yet, a challenge to answer with a code. */
export interface LoginChallenge {
  two_factor_required: true;
  challenge: string;
  expires_in: number;
}

/** What a refusal asks for: a fresh code ("code"), enrolment first ("enrol"), or nothing of 2FA (null). */
export function stepUpNeed(status: number, body: unknown): StepUpNeed | null {
  if (status !== 403 || !body || typeof body !== 'object') return null;
  const need = (body as { step_up?: unknown }).step_up;
  return need === 'code' || need === 'enrol' ? need : null;
}

export function isLoginChallenge(reply: unknown): reply is LoginChallenge {
  return !!reply && typeof reply === 'object' && (reply as { two_factor_required?: unknown }).two_factor_required === true
    && typeof (reply as { challenge?: unknown }).challenge === 'string';
}

const TOTP = /^\d{6}$/;
// The server's codes read xxxxx-xxxxx; it ignores the dash and the case, so the form does too.
const RECOVERY = /^[a-z0-9]{5}-?[a-z0-9]{5}$/i;

/** A typed code as sent: without the spaces an app shows ("123 456") or a paste brings along. */
export function normaliseCode(typed: string): string {
  return typed.replace(/\s+/g, '');
}

/** Why a typed code cannot be one, before it costs an attempt; null when it may be. */
export function codeProblem(typed: string): string | null {
  const code = normaliseCode(typed);
  if (!code) return 'Enter the 6-digit code from your authenticator app, or a recovery code.';
  if (TOTP.test(code) || RECOVERY.test(code)) return null;
  if (/^\d+$/.test(code)) return `The code from your app has 6 digits; this has ${code.length}.`;
  return 'Enter the 6-digit code from your authenticator app, or a recovery code such as abcde-12345.';
}

/** The account's recovery codes as a text file (one a line), for the person to keep offline. */
export function recoveryCodesText(codes: readonly string[], account: string | null, nowMs: number): string {
  const when = new Date(nowMs).toISOString().slice(0, 16).replace('T', ' ');
  const head = [`Durabot recovery codes${account ? ` for ${account}` : ''}, made ${when} UTC.`,
    'Each code signs you in once instead of the code from your authenticator app. Keep them offline.', ''];
  return [...head, ...codes, ''].join('\n');
}

/** "09:41" in the browser's time zone (the step-up window is minutes long: the day goes without saying). */
export function clockText(ms: number): string {
  const d = new Date(ms);
  return `${String(d.getHours()).padStart(2, '0')}:${String(d.getMinutes()).padStart(2, '0')}`;
}

/** A server time in ms. Times read back from the database come without a zone but are UTC: never local. */
export function parseServerTime(iso: string | null | undefined): number | null {
  if (!iso) return null;
  const zoned = /(Z|[+-]\d\d:?\d\d)$/i.test(iso) ? iso : `${iso}Z`;
  const ms = Date.parse(zoned);
  return Number.isFinite(ms) ? ms : null;
}

/** "Confirmed until 09:41" while this login session's step-up lasts, null once it has passed (or never was). */
export function stepUpText(until: string | null | undefined, nowMs: number): string | null {
  const ms = parseServerTime(until);
  if (ms === null || ms <= nowMs) return null;
  return `Confirmed until ${clockText(ms)}`;
}

/** "in 30 s" from a Retry-After header (seconds or an HTTP date), or null when it says nothing. */
export function retryAfterText(header: string | null | undefined, nowMs: number): string | null {
  if (!header) return null;
  const seconds = /^\d+$/.test(header.trim()) ? Number(header) : Math.ceil((Date.parse(header) - nowMs) / 1000);
  if (!Number.isFinite(seconds) || seconds <= 0) return null;
  return seconds >= 120 ? `in ${Math.ceil(seconds / 60)} min` : `in ${seconds} s`;
}

/** A server message standing alone, as a sentence: "Saving an exchange API key needs …". */
export function asSentence(message: string): string {
  const text = message.trim();
  if (!text) return text;
  const capital = text[0].toUpperCase() + text.slice(1);
  return /[.!?]$/.test(capital) ? capital : `${capital}.`;
}

/** The secret as a person types it: groups of 4 (apps ignore the spaces). */
export function groupedSecret(secret: string): string {
  return secret.replace(/\s+/g, '').replace(/(.{4})(?=.)/g, '$1 ');
}
