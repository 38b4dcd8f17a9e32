// The live connection: drives lib/wsMachine with a real WebSocket (or any look-alike, for tests).
import { Deduper, initial, step, type ConnState, type Effect, type Input, type Machine } from './wsMachine';

export interface LiveEvent {
  type: string;
  channel?: string;
  symbol: string | null;
  data: Record<string, unknown>;
  event_key?: string;
  cursor?: string;
  market_time?: number | null;
}

export interface SocketLike {
  readyState: number;
  onopen: ((ev: unknown) => void) | null;
  onclose: ((ev: { code: number }) => void) | null;
  onmessage: ((ev: { data: unknown }) => void) | null;
  onerror: ((ev: unknown) => void) | null;
  send(data: string): void;
  close(code?: number): void;
}

export interface SocketDeps {
  url: () => string;
  channels: readonly string[];
  open: (url: string) => SocketLike;
  setTimer: (fn: () => void, ms: number) => unknown;
  clearTimer: (handle: unknown) => void;
  onEvent: (event: LiveEvent) => void;
  onState: (state: ConnState, attempt: number) => void;
  /** The server could not replay what was missed: reload state over REST. */
  onResync: () => void;
}

const CONNECTING = 0;

export class LiveSocket {
  private machine: Machine = initial;
  private socket: SocketLike | null = null;
  private timer: unknown = null;
  private readonly dedupe = new Deduper();

  private readonly deps: SocketDeps;

  constructor(deps: SocketDeps) {
    this.deps = deps;
  }

  get state(): ConnState {
    return this.machine.state;
  }

  start(): void {
    this.send({ kind: 'start' });
  }

  stop(): void {
    this.send({ kind: 'stop' });
  }

  private send(input: Input): void {
    const [next, effect] = step(this.machine, input);
    const changed = next.state !== this.machine.state || next.attempt !== this.machine.attempt;
    this.machine = next;
    this.apply(effect);
    if (changed) this.deps.onState(next.state, next.attempt);
  }

  private apply(effect: Effect): void {
    if (effect.kind === 'connect') this.connect();
    else if (effect.kind === 'schedule') {
      this.timer = this.deps.setTimer(() => {
        this.timer = null;
        this.send({ kind: 'retry' });
      }, effect.delayMs);
    } else if (effect.kind === 'disconnect') this.disconnect();
    if (this.machine.state === 'stopped' && this.timer !== null) {
      this.deps.clearTimer(this.timer);
      this.timer = null;
    }
  }

  private connect(): void {
    const ws = this.deps.open(this.deps.url());
    this.socket = ws;
    ws.onopen = () => {
      if (this.socket !== ws) return;
      const subscribe: Record<string, unknown> = { type: 'Subscribe', channels: this.deps.channels, symbols: ['*'] };
      if (this.machine.cursor) subscribe.since = this.machine.cursor;
      ws.send(JSON.stringify(subscribe));
      this.send({ kind: 'opened' });
    };
    ws.onclose = (ev) => {
      if (this.socket !== ws) return;
      this.socket = null;
      this.send({ kind: 'closed', code: ev.code });
    };
    ws.onmessage = (ev) => this.receive(ws, ev.data);
    ws.onerror = () => undefined; // a close always follows; the machine reacts to that
  }

  private disconnect(): void {
    const ws = this.socket;
    this.socket = null;
    if (!ws) return;
    // Closing a socket that is still connecting makes the browser log an error; let it open first.
    if (ws.readyState === CONNECTING) ws.onopen = () => ws.close(1000);
    else ws.close(1000);
    ws.onclose = null;
    ws.onmessage = null;
  }

  private receive(ws: SocketLike, raw: unknown): void {
    if (this.socket !== ws || typeof raw !== 'string') return;
    let message: LiveEvent;
    try {
      message = JSON.parse(raw) as LiveEvent;
    } catch {
      return;
    }
    if (message.type === 'Ping') {
      ws.send(JSON.stringify({ type: 'Pong' }));
      return;
    }
    if (message.type === 'Error') {
      const code = (message.data as { code?: string }).code;
      if (code === 'invalid_cursor') this.send({ kind: 'cursor_invalid' });
      if (code === 'invalid_cursor' || code === 'replay_truncated') this.deps.onResync();
      return;
    }
    if (!message.event_key) return; // Connected, Subscribed, Replayed, Pong, Authenticated
    this.send({ kind: 'event', cursor: message.cursor ?? null });
    if (this.dedupe.fresh(message.event_key)) this.deps.onEvent(message);
  }
}
