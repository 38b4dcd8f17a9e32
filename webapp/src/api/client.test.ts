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

const { ApiError, call, onEnrolNeeded, setStepUpHandler } = await import('./client');

interface Fake {
  data?: unknown;
  error?: unknown;
  response: Response;
}

const answer = (status: number, body: unknown, headers: Record<string, string> = {}): Fake => ({
  ...(status < 300 ? { data: body } : { error: body }),
  response: new Response(JSON.stringify(body), { status, headers }),
});
const NEEDS_CODE = { detail: 'saving an exchange key needs a two-factor code', step_up: 'code' };

/** A request that answers ``replies`` in turn, counting how often it was sent. */
function sequence(...replies: Fake[]): { send: () => Promise<Fake>; sent: () => number } {
  let sent = 0;
  return { send: async () => replies[Math.min(sent++, replies.length - 1)], sent: () => sent };
}

describe('the step-up protocol', () => {
  it('asks for a code once and retries the refused call once', async () => {
    const asked: string[] = [];
    const stop = setStepUpHandler(async (reason) => (asked.push(reason), true));
    const request = sequence(answer(403, NEEDS_CODE), answer(201, { key_id: 'k1' }));
    await expect(call(request.send)).resolves.toEqual({ key_id: 'k1' });
    expect(request.sent()).toBe(2);
    expect(asked).toEqual([NEEDS_CODE.detail]);
    stop();
  });
  it('fails with the server message when the person cancels, without sending again', async () => {
    const stop = setStepUpHandler(async () => false);
    const request = sequence(answer(403, NEEDS_CODE), answer(201, {}));
    const failure = await call(request.send).catch((e: unknown) => e);
    expect(failure).toBeInstanceOf(ApiError);
    expect((failure as InstanceType<typeof ApiError>).message).toBe(NEEDS_CODE.detail);
    expect((failure as InstanceType<typeof ApiError>).problem.stepUp).toBe('code');
    expect(request.sent()).toBe(1);
    stop();
  });
  it('never asks twice for one call: a second refusal is the answer', async () => {
    let asked = 0;
    const stop = setStepUpHandler(async () => (asked++, true));
    const request = sequence(answer(403, NEEDS_CODE), answer(403, NEEDS_CODE), answer(201, {}));
    await expect(call(request.send)).rejects.toThrow(NEEDS_CODE.detail);
    expect([asked, request.sent()]).toEqual([1, 2]);
    stop();
  });
  it('asks once for calls refused together, and retries each', async () => {
    let asked = 0;
    let confirm: (ok: boolean) => void = () => undefined;
    const stop = setStepUpHandler(() => (asked++, new Promise<boolean>((resolve) => (confirm = resolve))));
    const first = sequence(answer(403, NEEDS_CODE), answer(200, 'first'));
    const second = sequence(answer(403, NEEDS_CODE), answer(200, 'second'));
    const both = Promise.all([call(first.send), call(second.send)]);
    await new Promise((resolve) => setTimeout(resolve, 0));
    confirm(true);
    await expect(both).resolves.toEqual(['first', 'second']);
    expect(asked).toBe(1);
    stop();
  });
  it('does not ask without a dialog (the login page), nor for the step-up call itself', async () => {
    const request = sequence(answer(403, NEEDS_CODE), answer(200, {}));
    await expect(call(request.send)).rejects.toThrow(NEEDS_CODE.detail);
    let asked = 0;
    const stop = setStepUpHandler(async () => (asked++, true));
    await expect(call(sequence(answer(403, NEEDS_CODE)).send, { stepUp: false })).rejects.toThrow(NEEDS_CODE.detail);
    expect(asked).toBe(0);
    stop();
  });
  it('tells the listeners when the user has to set two-factor up, and asks for no code', async () => {
    const told: string[] = [];
    let asked = 0;
    const stopAsking = setStepUpHandler(async () => (asked++, true));
    const stopListening = onEnrolNeeded((reason) => told.push(reason));
    const enrol = { detail: 'set two-factor authentication up first', step_up: 'enrol' };
    const failure = await call(sequence(answer(403, enrol)).send).catch((e: unknown) => e);
    expect((failure as InstanceType<typeof ApiError>).problem).toMatchObject({ status: 403, stepUp: 'enrol', message: enrol.detail });
    expect(told).toEqual([enrol.detail]);
    expect(asked).toBe(0);
    // A plain 403 (not an admin, say) is neither.
    await expect(call(sequence(answer(403, { detail: 'admins only' })).send)).rejects.toThrow('admins only');
    expect([told.length, asked]).toEqual([1, 0]);
    stopListening();
    stopAsking();
  });
  it('says when to try again after too many attempts', async () => {
    const limited = answer(429, { detail: 'too many two-factor attempts; try again later' }, { 'Retry-After': '42' });
    await expect(call(sequence(limited).send)).rejects.toThrow('too many two-factor attempts; try again later (in 42 s)');
  });
});
