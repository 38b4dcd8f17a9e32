import { describe, expect, it } from 'vitest';
import { BASE_DELAY_MS, Deduper, MAX_DELAY_MS, backoff, initial, step, type Input, type Machine } from './wsMachine';

function run(inputs: Input[], from: Machine = initial) {
  let m = from;
  const effects = [];
  for (const input of inputs) {
    const [next, effect] = step(m, input);
    m = next;
    effects.push(effect);
  }
  return { m, effects };
}

describe('ws state machine', () => {
  it('connects, opens and resets the attempt count', () => {
    const { m, effects } = run([{ kind: 'start' }, { kind: 'opened' }]);
    expect(m.state).toBe('open');
    expect(m.attempt).toBe(0);
    expect(effects[0]).toEqual({ kind: 'connect' });
  });

  it('backs off exponentially on drops, capped, and reconnects on retry', () => {
    const { m, effects } = run([
      { kind: 'start' }, { kind: 'opened' }, { kind: 'closed', code: 1006 }, { kind: 'retry' }, { kind: 'closed', code: 1006 },
      { kind: 'retry' }, { kind: 'closed', code: 1006 },
    ]);
    expect(m.state).toBe('reconnecting');
    expect(m.attempt).toBe(3);
    const delays = effects.filter((e) => e.kind === 'schedule').map((e) => (e as { delayMs: number }).delayMs);
    expect(delays).toEqual([BASE_DELAY_MS, BASE_DELAY_MS * 2, BASE_DELAY_MS * 4]);
    expect(effects[3]).toEqual({ kind: 'connect' });
    expect(backoff(50)).toBe(MAX_DELAY_MS);
  });

  it('stops retrying when the token is rejected', () => {
    const { m, effects } = run([{ kind: 'start' }, { kind: 'opened' }, { kind: 'closed', code: 4001 }, { kind: 'retry' }]);
    expect(m.state).toBe('unauthorized');
    expect(effects.slice(2)).toEqual([{ kind: 'none' }, { kind: 'none' }]);
  });

  it('keeps the last cursor across reconnects and forgets an invalid one', () => {
    let { m } = run([{ kind: 'start' }, { kind: 'opened' }, { kind: 'event', cursor: 'c1' }, { kind: 'event', cursor: null },
      { kind: 'closed', code: 1006 }, { kind: 'retry' }]);
    expect(m.cursor).toBe('c1');
    ({ m } = run([{ kind: 'cursor_invalid' }], m));
    expect(m.cursor).toBeNull();
  });

  it('a stop disconnects and ignores the close that follows', () => {
    const { m, effects } = run([{ kind: 'start' }, { kind: 'opened' }, { kind: 'stop' }, { kind: 'closed', code: 1000 }]);
    expect(m.state).toBe('stopped');
    expect(effects.slice(2)).toEqual([{ kind: 'disconnect' }, { kind: 'none' }]);
  });

  it('dedupes event keys within its window', () => {
    const d = new Deduper(2);
    expect([d.fresh('a'), d.fresh('a'), d.fresh('b'), d.fresh('c'), d.fresh('a'), d.fresh(undefined)]).toEqual([true, false, true, true, true, true]);
  });
});
