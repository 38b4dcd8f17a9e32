// What the AI page works out from the API's answers: the symbol it analyses by default, the fallback's
// wording, small dollar amounts, the breaker's state, and the earlier turns a chat message carries.
import type { Schemas } from '../api/client';

type Grok = Schemas['AiGrokOutcomeOut'];
type Breaker = Schemas['AiBreakerOut'];
type ChatReply = Schemas['AiChatOut'];
type ChatTurnIn = Schemas['AiChatTurnIn'];

export const INTERVALS = ['1m', '3m', '5m', '15m', '30m', '1h', '2h', '4h', '6h', '8h', '12h', '1d'] as const;
export const DEFAULT_SYMBOL = 'BTCUSDT';
/** The most earlier turns the chat takes (the API refuses more). */
export const MAX_HISTORY = 20;

/** The session's first symbol, else BTCUSDT. */
export function defaultSymbol(sessionSymbols: readonly string[] | null | undefined): string {
  return sessionSymbols?.find((s) => s.trim())?.trim().toUpperCase() ?? DEFAULT_SYMBOL;
}

/** Why the technical consensus stands alone: "Fallback: breaker_open — open after 2 failures; …". */
export function fallbackText(grok: { reason?: Grok['reason'] | string; detail?: string | null }): string {
  const reason = grok.reason ?? 'unknown';
  return grok.detail ? `Fallback: ${reason} — ${grok.detail}` : `Fallback: ${reason}`;
}

/** Dollars as small as one Grok call costs: "$1.00", "$0.05", "$0.000085", "$0.00". */
export function usdText(value: number | null | undefined): string {
  if (value == null || !Number.isFinite(value)) return '—';
  const abs = Math.abs(value);
  if (abs === 0 || abs >= 0.01) return `$${value.toFixed(2)}`;
  return `$${Number(value.toPrecision(2)).toFixed(Math.min(10, 1 - Math.floor(Math.log10(abs))))}`;
}

/** An ISO time's clock time in UTC; a time without a zone is UTC (as the API stores them). */
function utcTime(iso: string): string {
  const zoned = /(Z|[+-]\d\d:?\d\d)$/i.test(iso) ? iso : `${iso}Z`;
  return new Date(zoned).toISOString().slice(11, 19);
}

/** "closed", "open after 2 failure(s), next trial at 12:00:00 UTC (last error: HTTP 503)", "half-open: …". */
export function breakerText(breaker: Breaker): string {
  if (breaker.state === 'closed') return breaker.failures ? `closed (${breaker.failures} failure(s) in a row)` : 'closed';
  const error = breaker.last_error ? ` (last error: ${breaker.last_error})` : '';
  if (breaker.state === 'half_open') return `half-open: a trial call decides${error}`;
  const at = breaker.retry_at ? `, next trial at ${utcTime(breaker.retry_at)} UTC` : '';
  return `open after ${breaker.failures} failure(s)${at}${error}`;
}

export interface ChatExchange {
  question: string;
  reply: ChatReply;
}

/** The conversation so far as the API takes it: each answered question and its answer, oldest first, the
 * newest MAX_HISTORY turns. A question Grok did not answer is left out: the next one stands on its own. */
export function chatHistory(exchanges: readonly ChatExchange[]): ChatTurnIn[] {
  const turns = exchanges.flatMap((e): ChatTurnIn[] => (e.reply.answer == null ? [] : [
    { role: 'user', content: e.question },
    { role: 'assistant', content: e.reply.answer },
  ]));
  return turns.slice(-MAX_HISTORY);
}
