// Turns the API's error bodies into one message a person can act on. The gateway answers in three
// shapes: a rejection {detail: {field, reason}} (422 from the paper-trading and backtest routes),
// FastAPI's validation list {detail: [{loc, msg}]}, and a plain {detail: "..."}. A 403 of the step-up
// protocol adds `step_up` ("code": confirm with a fresh code; "enrol": set up two-factor authentication).
import { stepUpNeed, type StepUpNeed } from './twoFactor';

export interface Problem {
  status: number;
  field: string | null;
  message: string;
  /** What a 403 asks for before it would succeed (see lib/twoFactor.ts). */
  stepUp?: StepUpNeed | null;
}

interface LocMsg {
  loc?: unknown[];
  msg?: string;
}

function fieldOfLoc(loc: unknown[] | undefined): string | null {
  if (!loc) return null;
  // FastAPI prefixes where the value came from; the field is what follows.
  const parts = loc.filter((p, i) => !(i === 0 && (p === 'body' || p === 'query' || p === 'path')));
  return parts.length ? parts.map(String).join('.') : null;
}

export function problemFrom(status: number, body: unknown): Problem {
  const stepUp = stepUpNeed(status, body);
  const problem = problemOfDetail(status, body);
  return stepUp ? { ...problem, stepUp } : problem;
}

function problemOfDetail(status: number, body: unknown): Problem {
  const detail = (body as { detail?: unknown } | null)?.detail;
  if (detail && typeof detail === 'object' && !Array.isArray(detail) && 'reason' in detail) {
    const d = detail as { field?: string | null; reason: string };
    return { status, field: d.field ?? null, message: d.reason };
  }
  if (Array.isArray(detail) && detail.length) {
    const first = detail[0] as LocMsg;
    const field = fieldOfLoc(first.loc);
    return { status, field, message: first.msg ?? 'invalid input' };
  }
  if (typeof detail === 'string' && detail) return { status, field: null, message: detail };
  return { status, field: null, message: fallback(status) };
}

function fallback(status: number): string {
  if (status === 401) return 'Your session has expired; log in again.';
  if (status === 403) return 'You are not allowed to do that.';
  if (status === 404) return 'Not found.';
  if (status === 429) return 'Too many attempts; wait a moment.';
  if (status >= 500) return `The server failed (${status}); try again.`;
  return `Request failed (${status}).`;
}

/** "leverage: must be between 1 and 125", or just the reason when no field is known. */
export function describe(problem: Problem): string {
  return problem.field ? `${problem.field}: ${problem.message}` : problem.message;
}

export interface SettingsCheck {
  valid: boolean;
  field?: string | null;
  reason?: string | null;
}

/** The settings dry run's verdict as a problem to show, or null when the session would accept it. */
export function problemFromCheck(check: SettingsCheck): Problem | null {
  if (check.valid) return null;
  return { status: 422, field: check.field ?? null, message: check.reason || 'the session would reject this change' };
}
