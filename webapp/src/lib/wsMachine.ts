// The /ws connection's state machine, kept pure so reconnect behaviour is testable without a socket.
// A dropped connection retries with capped exponential backoff; a rejected token (4001/4003) stops,
// since retrying with the same token cannot succeed; the cursor of the last event survives reconnects
// so the next Subscribe can ask for what was missed (`since`).

export type ConnState = 'idle' | 'connecting' | 'open' | 'reconnecting' | 'unauthorized' | 'stopped';

export interface Machine {
  state: ConnState;
  attempt: number; // failed connects since the last successful open
  cursor: string | null;
}

export type Input =
  | { kind: 'start' }
  | { kind: 'opened' }
  | { kind: 'closed'; code: number }
  | { kind: 'event'; cursor: string | null }
  | { kind: 'cursor_invalid' }
  | { kind: 'retry' }
  | { kind: 'stop' };

export type Effect =
  | { kind: 'none' }
  | { kind: 'connect' }
  | { kind: 'schedule'; delayMs: number }
  | { kind: 'disconnect' };

export const CLOSE_BAD_TOKEN = 4001;
export const CLOSE_OTHER_USER = 4003;
export const BASE_DELAY_MS = 500;
export const MAX_DELAY_MS = 15_000;

export const initial: Machine = { state: 'idle', attempt: 0, cursor: null };

export function backoff(attempt: number): number {
  return Math.min(MAX_DELAY_MS, BASE_DELAY_MS * 2 ** Math.max(0, attempt));
}

export function step(m: Machine, input: Input): [Machine, Effect] {
  switch (input.kind) {
    case 'start':
      if (m.state === 'connecting' || m.state === 'open') return [m, { kind: 'none' }];
      return [{ ...m, state: 'connecting', attempt: 0 }, { kind: 'connect' }];
    case 'opened':
      if (m.state !== 'connecting') return [m, { kind: 'none' }];
      return [{ ...m, state: 'open', attempt: 0 }, { kind: 'none' }];
    case 'closed':
      if (m.state === 'stopped' || m.state === 'idle' || m.state === 'unauthorized') return [m, { kind: 'none' }];
      if (input.code === CLOSE_BAD_TOKEN || input.code === CLOSE_OTHER_USER) {
        return [{ ...m, state: 'unauthorized' }, { kind: 'none' }];
      }
      return [{ ...m, state: 'reconnecting', attempt: m.attempt + 1 }, { kind: 'schedule', delayMs: backoff(m.attempt) }];
    case 'retry':
      if (m.state !== 'reconnecting') return [m, { kind: 'none' }];
      return [{ ...m, state: 'connecting' }, { kind: 'connect' }];
    case 'event':
      return [input.cursor ? { ...m, cursor: input.cursor } : m, { kind: 'none' }];
    case 'cursor_invalid':
      // The server cannot resume from it: drop it so the next connect does not ask again.
      return [{ ...m, cursor: null }, { kind: 'none' }];
    case 'stop':
      return [{ ...m, state: 'stopped' }, m.state === 'open' || m.state === 'connecting' ? { kind: 'disconnect' } : { kind: 'none' }];
  }
}

/** Remembers the last ``size`` event keys: the same happening can arrive twice across reconnects. */
export class Deduper {
  private readonly seen = new Set<string>();
  private readonly size: number;

  constructor(size = 2000) {
    this.size = size;
  }

  fresh(key: string | null | undefined): boolean {
    if (!key) return true;
    if (this.seen.has(key)) return false;
    this.seen.add(key);
    if (this.seen.size > this.size) this.seen.delete(this.seen.values().next().value as string);
    return true;
  }
}
