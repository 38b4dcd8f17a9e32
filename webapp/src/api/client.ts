// The typed API client: request and response types come from src/api/schema.d.ts, generated from the
// gateway's OpenAPI schema (`npm run gen:api`); openapi-fetch checks every path, parameter and body
// against it at compile time. Tokens live here so every request carries the current one, and every
// write carries an Idempotency-Key of its own (one per action: a repeat of the same request would
// return its first result instead of acting twice). An action that needs a fresh two-factor code (403 with
// `step_up: "code"`) asks for one through the step-up dialog and is retried once, whatever page called it.
import createClient from 'openapi-fetch';
import { retryAfterText, stepUpNeed } from '../lib/twoFactor';
import { problemFrom, describe, type Problem } from '../lib/validation';
import type { components, paths } from './schema';

export type Schemas = components['schemas'];

const STORAGE_KEY = 'durabot.tokens';

export interface Tokens {
  access_token: string;
  refresh_token: string;
}

export class ApiError extends Error {
  readonly problem: Problem;
  constructor(problem: Problem) {
    super(describe(problem));
    this.problem = problem;
  }
}

function load(): Tokens | null {
  try {
    const raw = localStorage.getItem(STORAGE_KEY);
    return raw ? (JSON.parse(raw) as Tokens) : null;
  } catch {
    return null;
  }
}

let tokens: Tokens | null = load();
const listeners = new Set<(t: Tokens | null) => void>();

export function getTokens(): Tokens | null {
  return tokens;
}

export function setTokens(next: Tokens | null): void {
  tokens = next;
  if (next) localStorage.setItem(STORAGE_KEY, JSON.stringify(next));
  else localStorage.removeItem(STORAGE_KEY);
  listeners.forEach((fn) => fn(next));
}

export function onTokens(fn: (t: Tokens | null) => void): () => void {
  listeners.add(fn);
  return () => listeners.delete(fn);
}

const WRITES = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

/** 128 random bits, hex (getRandomValues works outside secure contexts too, unlike randomUUID). */
export function newIdempotencyKey(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return `web-${Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('')}`;
}

/** The bearer token on every request; a fresh Idempotency-Key on every write that has none. */
export function prepare(request: Request): Request {
  if (tokens && !request.headers.has('Authorization')) {
    request.headers.set('Authorization', `Bearer ${tokens.access_token}`);
  }
  if (WRITES.has(request.method) && !request.headers.has('Idempotency-Key')) {
    request.headers.set('Idempotency-Key', newIdempotencyKey());
  }
  return request;
}

export const http = createClient<paths>({ baseUrl: '' });
http.use({ onRequest: ({ request }) => prepare(request) });

let refreshing: Promise<boolean> | null = null;

async function refresh(): Promise<boolean> {
  const current = tokens;
  if (!current) return false;
  const { data } = await http.POST('/api/auth/refresh', { body: { refresh_token: current.refresh_token } });
  if (!data) return false;
  setTokens({ access_token: data.access_token, refresh_token: data.refresh_token });
  return true;
}

interface Reply {
  data?: unknown;
  error?: unknown;
  response: Response;
}

/** Asks the person for a code (the step-up dialog), says whether the session is now confirmed. */
export type AskForCode = (reason: string) => Promise<boolean>;

let askForCode: AskForCode | null = null;
let asking: Promise<boolean> | null = null;
const enrolListeners = new Set<(reason: string) => void>();

/** The dashboard's step-up dialog registers here; without one (the login page) such a refusal just fails. */
export function setStepUpHandler(ask: AskForCode): () => void {
  askForCode = ask;
  return () => {
    if (askForCode === ask) askForCode = null;
  };
}

/** Called with the server's message when an answer says the user has to set up two-factor authentication. */
export function onEnrolNeeded(fn: (reason: string) => void): () => void {
  enrolListeners.add(fn);
  return () => enrolListeners.delete(fn);
}

/** One dialog for every call that waits for a code: calls refused together are retried after one code. */
export function confirmWithCode(reason: string): Promise<boolean> {
  if (!askForCode) return Promise.resolve(false);
  asking ??= askForCode(reason).finally(() => (asking = null));
  return asking;
}

async function withFreshToken<R extends Reply>(request: () => Promise<R>): Promise<R> {
  const reply = await request();
  if (reply.response.status !== 401 || !tokens) return reply;
  refreshing ??= refresh().finally(() => (refreshing = null));
  if (await refreshing) return request();
  setTokens(null);
  return reply;
}

function problemOf(reply: Reply): Problem {
  const problem = problemFrom(reply.response.status, reply.error);
  const wait = reply.response.status === 429 ? retryAfterText(reply.response.headers.get('Retry-After'), Date.now()) : null;
  // "too many attempts; try again later (in 42 s)"
  return wait ? { ...problem, message: `${problem.message} (${wait})` } : problem;
}

/** Runs a typed request; on an expired access token refreshes once and retries; when the action needs a
 * fresh two-factor code asks for one and retries once (each attempt has an Idempotency-Key of its own: the
 * refused one did nothing); throws ApiError. ``stepUp: false`` for the calls of the step-up itself. */
export async function call<R extends Reply>(
  request: () => Promise<R>, { stepUp = true }: { stepUp?: boolean } = {},
): Promise<NonNullable<R['data']>> {
  let reply = await withFreshToken(request);
  if (stepUp && stepUpNeed(reply.response.status, reply.error) === 'code') {
    if (await confirmWithCode(problemOf(reply).message)) reply = await withFreshToken(request);
  }
  if (!reply.response.ok) {
    const problem = problemOf(reply);
    if (problem.stepUp === 'enrol') enrolListeners.forEach((fn) => fn(problem.message));
    throw new ApiError(problem);
  }
  return reply.data as NonNullable<R['data']>;
}

/** The server's reason alone, without the field it names: for forms of one field (a code). */
export function reasonText(err: unknown): string {
  return err instanceof ApiError ? err.problem.message : errorText(err);
}

export function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
