import { describe, expect, it } from 'vitest';
import { breakerText, chatHistory, defaultSymbol, fallbackText, MAX_HISTORY, usdText, type ChatExchange } from './ai';

const reply = (answer: string | null): ChatExchange['reply'] => ({ answer, cost_usd: 0, rounds: 1, tools_used: [] });

describe('AI page helpers', () => {
  it('analyses the session\'s first symbol, else BTCUSDT', () => {
    expect(defaultSymbol(['ltcbtc', 'ADABTC'])).toBe('LTCBTC');
    expect(defaultSymbol([])).toBe('BTCUSDT');
    expect(defaultSymbol(undefined)).toBe('BTCUSDT');
  });

  it('names the fallback\'s reason, then its detail', () => {
    expect(fallbackText({ reason: 'breaker_open', detail: 'open after 2 failures' })).toBe('Fallback: breaker_open — open after 2 failures');
    expect(fallbackText({ reason: 'unavailable', detail: null })).toBe('Fallback: unavailable');
    expect(fallbackText({})).toBe('Fallback: unknown');
  });

  it('writes a call\'s fraction of a cent with two significant digits', () => {
    expect(usdText(1)).toBe('$1.00');
    expect(usdText(25)).toBe('$25.00');
    expect(usdText(0.05)).toBe('$0.05');
    expect(usdText(0.0000847)).toBe('$0.000085');
    expect(usdText(0.0012)).toBe('$0.0012');
    expect(usdText(0)).toBe('$0.00');
    expect(usdText(null)).toBe('—');
  });

  it('says when an open breaker tries again and why it opened', () => {
    expect(breakerText({ state: 'closed', failures: 0, retry_at: null, last_error: null })).toBe('closed');
    expect(breakerText({ state: 'open', failures: 2, retry_at: '2025-03-01T12:00:05Z', last_error: 'HTTP 503' }))
      .toBe('open after 2 failure(s), next trial at 12:00:05 UTC (last error: HTTP 503)');
    expect(breakerText({ state: 'open', failures: 3, retry_at: '2025-03-01T12:00:05.5', last_error: null }))
      .toBe('open after 3 failure(s), next trial at 12:00:05 UTC');
    expect(breakerText({ state: 'open', failures: 3, retry_at: '2025-03-01T14:00:05+02:00', last_error: null }))
      .toBe('open after 3 failure(s), next trial at 12:00:05 UTC');
    expect(breakerText({ state: 'half_open', failures: 2, retry_at: null, last_error: null })).toBe('half-open: a trial call decides');
  });

  it('sends the answered turns, oldest first, at most the API\'s limit', () => {
    const exchanges = [
      { question: 'What is my balance?', reply: reply('Based on get_portfolio: cash=1000') },
      { question: 'And now?', reply: reply(null) },
      { question: 'Thanks', reply: reply('You are welcome') },
    ];
    expect(chatHistory(exchanges)).toEqual([
      { role: 'user', content: 'What is my balance?' },
      { role: 'assistant', content: 'Based on get_portfolio: cash=1000' },
      { role: 'user', content: 'Thanks' },
      { role: 'assistant', content: 'You are welcome' },
    ]);
    expect(chatHistory([])).toEqual([]);
    const many = Array.from({ length: 15 }, (_, i) => ({ question: `q${i}`, reply: reply(`a${i}`) }));
    const sent = chatHistory(many);
    expect(sent).toHaveLength(MAX_HISTORY);
    expect(sent[0]).toEqual({ role: 'user', content: 'q5' });
    expect(sent.at(-1)).toEqual({ role: 'assistant', content: 'a14' });
  });
});
