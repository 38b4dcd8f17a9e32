import { describe, expect, it, vi } from 'vitest';

// client.ts reads localStorage at import: give the test environment one.
const store = new Map<string, string>();
vi.stubGlobal('localStorage', {
  getItem: (k: string) => store.get(k) ?? null,
  setItem: (k: string, v: string) => void store.set(k, v),
  removeItem: (k: string) => void store.delete(k),
});

const { newIdempotencyKey, prepare, setTokens } = await import('./client');

const request = (method: string, headers: Record<string, string> = {}) =>
  prepare(new Request('http://127.0.0.1:8080/api/paper-trading/stop', { method, headers }));

describe('idempotency keys', () => {
  it('are fresh and fit the gateway pattern', () => {
    const keys = new Set(Array.from({ length: 1000 }, () => newIdempotencyKey()));
    expect(keys.size).toBe(1000);
    for (const key of keys) expect(key).toMatch(/^[A-Za-z0-9_.:-]{8,128}$/);
  });
  it('go with every write, one per request, and never with a read', () => {
    const keys = ['POST', 'POST', 'PUT', 'DELETE', 'PATCH'].map((m) => request(m).headers.get('Idempotency-Key'));
    expect(keys.every(Boolean)).toBe(true);
    expect(new Set(keys).size).toBe(keys.length);
    expect(request('GET').headers.get('Idempotency-Key')).toBeNull();
  });
  it('keep a key the caller chose, and carry the bearer token', () => {
    setTokens({ access_token: 'a.b.c', refresh_token: 'r' });
    const chosen = request('POST', { 'Idempotency-Key': 'mine-12345678' });
    expect(chosen.headers.get('Idempotency-Key')).toBe('mine-12345678');
    expect(chosen.headers.get('Authorization')).toBe('Bearer a.b.c');
    setTokens(null);
  });
});
