import { describe, expect, it } from 'vitest';
import { LiveSocket, type LiveEvent, type SocketLike } from './socket';

class FakeSocket implements SocketLike {
  readyState = 0;
  sent: string[] = [];
  closedWith: number | null = null;
  onopen: ((ev: unknown) => void) | null = null;
  onclose: ((ev: { code: number }) => void) | null = null;
  onmessage: ((ev: { data: unknown }) => void) | null = null;
  onerror: ((ev: unknown) => void) | null = null;
  readonly url: string;
  constructor(url: string) {
    this.url = url;
  }
  send(data: string) {
    this.sent.push(data);
  }
  close(code?: number) {
    this.closedWith = code ?? 1000;
  }
  open() {
    this.readyState = 1;
    this.onopen?.({});
  }
  drop(code = 1006) {
    this.readyState = 3;
    this.onclose?.({ code });
  }
  deliver(msg: object) {
    this.onmessage?.({ data: JSON.stringify(msg) });
  }
}

function harness() {
  const sockets: FakeSocket[] = [];
  const timers: { fn: () => void; ms: number }[] = [];
  const events: LiveEvent[] = [];
  const states: string[] = [];
  let resyncs = 0;
  const live = new LiveSocket({
    url: () => `ws://x/ws?token=t${sockets.length}`,
    channels: ['TradeExecuted'],
    open: (url) => {
      const s = new FakeSocket(url);
      sockets.push(s);
      return s;
    },
    setTimer: (fn, ms) => timers.push({ fn, ms }),
    clearTimer: () => undefined,
    onEvent: (e) => events.push(e),
    onState: (s, n) => states.push(`${s}:${n}`),
    onResync: () => (resyncs += 1),
  });
  return { live, sockets, timers, events, states, resyncs: () => resyncs };
}

const trade = (key: string, cursor: string) => ({ type: 'TradeExecuted', symbol: 'BTCUSDT', data: {}, event_key: key, cursor });

describe('LiveSocket', () => {
  it('subscribes on open, answers pings, delivers each event once', () => {
    const h = harness();
    h.live.start();
    h.sockets[0].open();
    expect(JSON.parse(h.sockets[0].sent[0])).toEqual({ type: 'Subscribe', channels: ['TradeExecuted'], symbols: ['*'] });
    h.sockets[0].deliver({ type: 'Ping', data: {} });
    expect(JSON.parse(h.sockets[0].sent[1])).toEqual({ type: 'Pong' });
    h.sockets[0].deliver(trade('k1', 'c1'));
    h.sockets[0].deliver(trade('k1', 'c1'));
    h.sockets[0].deliver({ type: 'Subscribed', data: {} });
    expect(h.events.map((e) => e.event_key)).toEqual(['k1']);
    expect(h.states).toEqual(['connecting:0', 'open:0']);
  });

  it('reconnects after a drop with a fresh URL and resumes from the last cursor', () => {
    const h = harness();
    h.live.start();
    h.sockets[0].open();
    h.sockets[0].deliver(trade('k1', 'c1'));
    h.sockets[0].drop();
    expect(h.live.state).toBe('reconnecting');
    expect(h.timers).toHaveLength(1);
    h.timers[0].fn();
    expect(h.sockets).toHaveLength(2);
    expect(h.sockets[1].url).toBe('ws://x/ws?token=t1');
    h.sockets[1].open();
    expect(JSON.parse(h.sockets[1].sent[0]).since).toBe('c1');
    // The replay repeats k1: it must not be delivered again.
    h.sockets[1].deliver(trade('k1', 'c1'));
    h.sockets[1].deliver(trade('k2', 'c2'));
    expect(h.events.map((e) => e.event_key)).toEqual(['k1', 'k2']);
    expect(h.states).toEqual(['connecting:0', 'open:0', 'reconnecting:1', 'connecting:1', 'open:0']);
  });

  it('asks for a resync and drops the cursor when the server cannot replay', () => {
    const h = harness();
    h.live.start();
    h.sockets[0].open();
    h.sockets[0].deliver(trade('k1', 'c1'));
    h.sockets[0].deliver({ type: 'Error', data: { code: 'invalid_cursor' } });
    expect(h.resyncs()).toBe(1);
    h.sockets[0].drop();
    h.timers[0].fn();
    h.sockets[1].open();
    expect(JSON.parse(h.sockets[1].sent[0]).since).toBeUndefined();
  });

  it('stops without reconnecting, and waits for a connecting socket to open before closing it', () => {
    const h = harness();
    h.live.start();
    h.live.stop();
    expect(h.sockets[0].closedWith).toBeNull();
    h.sockets[0].open();
    expect(h.sockets[0].closedWith).toBe(1000);
    expect(h.sockets[0].sent).toEqual([]);
    expect(h.timers).toHaveLength(0);
    expect(h.live.state).toBe('stopped');
  });
});
