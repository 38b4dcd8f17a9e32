// The typed API client: request and response types come from src/api/schema.d.ts, generated from the
// gateway's OpenAPI schema (`npm run gen:api`); openapi-fetch checks every path, parameter and body
// against it at compile time. Tokens live here so every request carries the current one, and every
// write carries an Idempotency-Key of its own (one per action: a repeat of the same request would
// return its first result instead of acting twice).
import createClient from 'openapi-fetch';
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

/** Runs a typed request; on an expired access token refreshes once and retries; throws ApiError. */
export async function call<R extends Reply>(request: () => Promise<R>): Promise<NonNullable<R['data']>> {
  let reply = await request();
  if (reply.response.status === 401 && tokens) {
    refreshing ??= refresh().finally(() => (refreshing = null));
    if (await refreshing) reply = await request();
    else setTokens(null);
  }
  if (!reply.response.ok) throw new ApiError(problemFrom(reply.response.status, reply.error));
  return reply.data as NonNullable<R['data']>;
}

export function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
